/**
 * Public API of the sealed format (docs/format.md). The pipeline and evidence code call exactly
 * these functions; everything else in src/seal is internal. Sealing never needs a secret key and
 * never keeps the file key; opening never releases plaintext that did not verify.
 */
import { defaultImplName, type ImplName } from './primitives.js';

export { sealFile, sealBytes, openBytes, openStream, openToFile, createSealWriter, type SealWriter, type SealOptions, type OpenOptions } from './stream.js';
export { CHUNK_SIZE, sealedSize } from './format.js';
export type { PublicKey, SecretKey, KeyKind } from './keys.js';
export type { ImplName } from './primitives.js';

/** Which implementation is used when none is asked for: sodium-native, or tweetnacl as fallback. */
export function sealImplementation(): ImplName {
  return defaultImplName();
}
