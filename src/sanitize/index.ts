/**
 * Public surface of the sanitize stage (the pipeline calls exactly these). `sanitizeFile` either
 * returns a SanitizeResult whose proof holds or throws E_SANITIZE_* and leaves no output file.
 * `recomputeEssence` recomputes a recorded essence `after` value from a sanitized file (for verify).
 */
export { sniff, sniffFile, sanitizeFile } from './registry.js';
export { recomputeEssence, parseEssenceMethod, ESSENCE_METHOD_IDS, type EssenceMethodId, type ParsedEssenceMethod } from './essence.js';
export type { MediaFormat, SanitizePolicy, SanitizeResult, RemovedItem, EssenceProof, IndependentCheck } from './types.js';
