/**
 * Public surface of the sanitize stage (the pipeline calls exactly these). `sanitizeFile` either
 * returns a SanitizeResult whose proof holds or throws E_SANITIZE_* and leaves no output file.
 */
export { sniff, sniffFile, sanitizeFile } from './registry.js';
export type { MediaFormat, SanitizePolicy, SanitizeResult, RemovedItem, EssenceProof, IndependentCheck } from './types.js';
