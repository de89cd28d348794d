/**
 * Signed batch manifest (`kluis-manifest/1`, docs/format.md). The outer part lists ciphertext
 * facts only (object ids, sizes, SHA-256) and is signed by the station with Ed25519, so a storage
 * operator can check it without any secret. Everything about the plaintext (names, card hashes,
 * essence hashes, what was removed, who and where) is in the inner part, sealed to the evidence
 * recipients. Verification never trusts a field before the schema and the signature passed.
 */
import { z } from 'zod';
import { KluisError } from '../errors.js';
import { canonicalJson } from '../util/canonical-json.js';
import { formatPublicKey, parsePublicKey, sign, verifySignature, type PublicKey, type SecretKey } from './keys.js';
import { openBytes } from './open.js';
import { sealBytes, type SealOptions } from './stream.js';

export const MANIFEST_FORMAT = 'kluis-manifest/1';
const SIGN_CONTEXT = 'kluis-manifest-v1\n';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex characters (SHA-256)');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

export const ManifestObjectSchema = z
  .object({ id: z.string().min(1), size: z.number().int().nonnegative(), sha256: hex64 })
  .strict();
export type ManifestObject = z.infer<typeof ManifestObjectSchema>;

export const ManifestOuterSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    batchId: z.string().min(1),
    createdAt: z.string().min(1),
    station: z.string().startsWith('kluisstation1'),
    objects: z.array(ManifestObjectSchema),
    inner: base64.min(1),
    /**
     * The station audit log's head (seq and hash of its last line) when the batch was closed:
     * outside the sealed part on purpose, so the station (which cannot decrypt) can compare its
     * log with it (`kluis audit verify`). Absent in manifests of stations before custody records.
     */
    audit: z.object({ seq: z.number().int().nonnegative(), head: hex64 }).strict().optional(),
  })
  .strict();
export type ManifestOuter = z.infer<typeof ManifestOuterSchema>;

export const SignedManifestSchema = z
  .object({
    outer: ManifestOuterSchema,
    signature: z.object({ alg: z.literal('ed25519'), key: z.string(), value: base64 }).strict(),
  })
  .strict();
export type SignedManifest = z.infer<typeof SignedManifestSchema>;

export const ManifestFileSchema = z
  .object({
    path: z.string().min(1),
    class: z.enum(['footage', 'sidecar', 'other']),
    status: z.string().min(1),
    objectId: z.string().min(1).optional(),
    cardSha256: hex64.optional(),
    cardXxh128: z.string().regex(/^[0-9a-f]{32}$/).optional(),
    size: z.number().int().nonnegative(),
    format: z.string().optional(),
    sanitizedSha256: hex64.optional(),
    sanitizedSize: z.number().int().nonnegative().optional(),
    essence: z.array(z.object({ method: z.string(), before: z.string(), after: z.string() }).passthrough()).optional(),
    removed: z.array(z.object({ where: z.string(), what: z.string(), bytes: z.number().int().nonnegative() }).passthrough()).optional(),
    kept: z.array(z.string()).optional(),
    error: z.object({ code: z.string(), message: z.string() }).passthrough().optional(),
  })
  .passthrough();
export type ManifestFile = z.infer<typeof ManifestFileSchema>;

export const ManifestInnerSchema = z.object({
  batchId: z.string().min(1),
  station: z.object({ name: z.string(), key: z.string().startsWith('kluisstation1') }),
  createdAt: z.string().min(1),
  operator: z.string().optional(),
  case: z.string().optional(),
  card: z.object({ label: z.string().optional(), uuid: z.string().optional(), fingerprint: z.string(), root: z.string() }),
  tool: z.object({ name: z.literal('kluis'), version: z.string() }),
  files: z.array(ManifestFileSchema),
  extra: z.record(z.unknown()).optional(),
});
export type ManifestInner = z.infer<typeof ManifestInnerSchema>;

function shapeError(what: string, err: z.ZodError): KluisError {
  const first = err.issues[0];
  const where = first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid';
  return new KluisError('E_MANIFEST_SHAPE', `${what} is not a valid kluis manifest (${where})`, {
    hint: 'the manifest was damaged or is not a kluis-manifest/1 document; fetch it again from another target',
    details: { issues: err.issues.slice(0, 5) },
  });
}

function signedBytes(outer: ManifestOuter): Uint8Array {
  return Buffer.from(SIGN_CONTEXT + canonicalJson(outer), 'utf8');
}

/** Builds and signs a manifest; the inner part is sealed to `recipients`. */
export function createManifest(
  args: { batchId: string; createdAt: string; objects: ManifestObject[]; inner: ManifestInner; audit?: { seq: number; head: string } },
  recipients: PublicKey[],
  stationKey: SecretKey,
  opts: SealOptions = {},
): SignedManifest {
  if (stationKey.kind !== 'station') {
    throw new KluisError('E_KEY_KIND', `manifests are signed with the station key, not a ${stationKey.kind} key`, {
      hint: 'use the station key (station.key) from the station set-up',
    });
  }
  const inner = ManifestInnerSchema.safeParse(args.inner);
  if (!inner.success) throw shapeError('inner manifest', inner.error);
  const station = formatPublicKey(stationKey.publicKey);
  if (inner.data.batchId !== args.batchId || inner.data.station.key !== station) {
    throw new KluisError('E_MANIFEST_INNER', 'inner manifest names another batch or station than the outer one', {
      hint: 'this is a bug in the caller: batchId and station key must agree',
    });
  }
  const sealedInner = sealBytes(Buffer.from(canonicalJson(inner.data), 'utf8'), recipients, opts);
  const outerDraft: ManifestOuter = {
    format: MANIFEST_FORMAT,
    batchId: args.batchId,
    createdAt: args.createdAt,
    station,
    objects: args.objects.map((o) => ({ id: o.id, size: o.size, sha256: o.sha256 })),
    inner: Buffer.from(sealedInner).toString('base64'),
    ...(args.audit ? { audit: { seq: args.audit.seq, head: args.audit.head } } : {}),
  };
  const outer = ManifestOuterSchema.safeParse(outerDraft);
  if (!outer.success) throw shapeError('outer manifest', outer.error);
  const value = Buffer.from(sign(stationKey, signedBytes(outer.data))).toString('base64');
  return { outer: outer.data, signature: { alg: 'ed25519', key: station, value } };
}

/** Checks shape and signature (and, when given, the expected station); returns the outer part. */
export function verifyManifest(doc: unknown, expectedStation?: PublicKey): ManifestOuter {
  const parsed = SignedManifestSchema.safeParse(doc);
  if (!parsed.success) throw shapeError('document', parsed.error);
  const { outer, signature } = parsed.data;
  const bad = (why: string): KluisError =>
    new KluisError('E_MANIFEST_SIGNATURE', `manifest signature does not verify (${why})`, {
      hint: 'the manifest was altered after the station signed it, or was not made by a kluis station; do not trust its contents',
    });
  if (signature.key !== outer.station) throw bad('signing key differs from the station named in the manifest');
  let stationKey: PublicKey;
  try {
    stationKey = parsePublicKey(outer.station, 'station');
  } catch (err) {
    throw new KluisError('E_MANIFEST_SHAPE', 'manifest names an invalid station key', { cause: err });
  }
  const sig = Buffer.from(signature.value, 'base64');
  if (!verifySignature(stationKey, signedBytes(outer), sig)) throw bad('Ed25519 check failed');
  if (expectedStation && formatPublicKey(expectedStation) !== outer.station) {
    throw new KluisError('E_MANIFEST_STATION', `manifest is signed by another station (${outer.station})`, {
      hint: `expected ${formatPublicKey(expectedStation)}; check that the batch belongs to this station or pin the right station key`,
    });
  }
  return outer;
}

/** Decrypts and validates the inner part; it must agree with the outer part. */
export function openManifestInner(outer: ManifestOuter, identities: SecretKey[]): ManifestInner {
  const plain = openBytes(Buffer.from(outer.inner, 'base64'), identities);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(plain).toString('utf8'));
  } catch (err) {
    throw new KluisError('E_MANIFEST_SHAPE', 'inner manifest is not JSON', { cause: err });
  }
  const inner = ManifestInnerSchema.safeParse(json);
  if (!inner.success) throw shapeError('inner manifest', inner.error);
  if (inner.data.batchId !== outer.batchId || inner.data.station.key !== outer.station) {
    throw new KluisError('E_MANIFEST_INNER', 'inner manifest names another batch or station than its outer part', {
      hint: 'do not trust this manifest; compare with the copy on another target',
    });
  }
  return inner.data;
}
