/**
 * Public surface of the sanitize stage (the pipeline calls exactly these). `sanitizeStream`
 * sanitizes a ByteSource into a ByteSink and resolves only when its proof holds (else throws
 * E_SANITIZE_*; the caller discards what reached the sink). `sanitizeFile` does the same file to
 * file, leaving no output on failure; `openFileSource` is the ByteSource of a file (the pipeline's
 * working copy). `recomputeEssence` recomputes a recorded essence `after`
 * value from a sanitized file (for verify; `essenceLabel` names an entry in words); `decodeFully` decodes it in full (`kluis verify --deep`).
 */
export { sniff, sniffFile, sanitizeFile, sanitizeStream } from './registry.js';
export { openFileSource } from './stream-io.js';
export { decodeFully, type FullDecode } from './deep.js';
export { recomputeEssence } from './essence.js';
export {
  essenceMethodOf, essenceLabel, parseEssenceMethod, ESSENCE_METHOD_IDS,
  type EssenceMethodId, type ParsedEssenceMethod, type RecordedEssence,
} from './essence-method.js';
export type {
  MediaFormat, SanitizePolicy, SanitizeResult, RemovedItem, EssenceProof, EssenceMethod, EssenceAbout, IndependentCheck,
  ByteSource, ByteSink, StreamSanitizeOptions, StreamSanitizeResult,
} from './types.js';
