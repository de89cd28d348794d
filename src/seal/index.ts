/**
 * Public API of the sealed format (docs/format.md) and of kluis keys. Other folders import exactly
 * these; everything else in src/seal is internal (the dependency check, .dependency-cruiser.cjs,
 * holds other folders to this file). Sealing never needs a secret key and
 * never keeps the file key; opening never releases plaintext that did not verify.
 */
import { defaultImplName, type ImplName } from './primitives.js';

export { sealFile, sealBytes, createSealWriter, publishSealed, type SealWriter, type SealOptions, type SealedFile } from './stream.js';
export { openBytes, openStream, openToFile, type OpenOptions } from './open.js';
export { CHUNK_SIZE, sealedSize } from './format.js';
export type { PublicKey, SecretKey, KeyKind } from './keys.js';
// Keys and their text forms (kluis1…, KLUIS-SECRET-KEY-1…), and station/admin signatures.
export {
  formatPublicKey, formatSecretKey, parsePublicKey, parseSecretKey, generateKey, readPublicKey, readSecretKeyFile,
  writeSecretKeyFile, sign, verifySignature,
} from './keys.js';
export type { ImplName } from './primitives.js';
// The benchmark's seal stage (each implementation on its own, `kluis bench`).
export { benchSeal, type BenchImpl } from './bench.js';
// The signed batch manifest and the sealed custody record (docs/format.md).
export {
  MANIFEST_FORMAT, createManifest, verifyManifest, openManifestInner,
  type ManifestOuter, type ManifestInner, type ManifestFile, type ManifestObject, type SignedManifest,
} from './manifest.js';
export {
  CUSTODY_FORMAT, sealCustodyRecord, openCustodyRecord, verifyCustodyDocument, lineHash, lineProblems,
  type CustodyRecord, type CustodyLine, type SignedCustody, type AuditHead,
} from './custody.js';

/** Which implementation is used when none is asked for: sodium-native, or tweetnacl as fallback. */
export function sealImplementation(): ImplName {
  return defaultImplName();
}
