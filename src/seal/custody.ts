/**
 * The custody record (`kluis-custody/1`, docs/format.md): a batch's own lines of the station's
 * audit log (who, which card, when, every hash, what was removed, deliveries so far), signed by
 * the station key and tied to the log's head at that moment, then sealed whole to the evidence
 * recipients. It names people, places and files, so nothing of it is readable without a
 * recipient key; the signed manifest lists the sealed object like any other (size and SHA-256),
 * and carries the same audit head in its outer part.
 *
 * Opening checks, in this order, and trusts no field before the check that covers it: the seal
 * (every chunk authenticated), the shape, the station signature (with the key the caller
 * expects), the batch, and then every line on its own: its hash over its own body, seq rising,
 * nothing past the head, and the head line (when the record holds it) hashing to the head.
 * Errors are E_CUSTODY_* with a hint; a key that opens nothing stays E_SEAL_NO_RECIPIENT.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { KluisError, type ErrorCode } from '../errors.js';
import { canonicalJson } from '../util/canonical-json.js';
import { formatPublicKey, sign, verifySignature, type PublicKey, type SecretKey } from './keys.js';
import { openBytes } from './open.js';
import { sealBytes, type SealOptions } from './stream.js';

export const CUSTODY_FORMAT = 'kluis-custody/1';
const SIGN_CONTEXT = 'kluis-custody-v1\n';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex characters (SHA-256)');

export const AuditHeadSchema = z.object({ seq: z.number().int().nonnegative(), head: hex64 }).strict();
export type AuditHead = z.infer<typeof AuditHeadSchema>;

/** One audit log line as the station wrote it (src/audit/writer.ts), kept whole. */
export const CustodyLineSchema = z
  .object({
    seq: z.number().int().nonnegative(),
    time: z.string().min(1),
    type: z.string().min(1),
    station: z.string().min(1),
    batchId: z.string().min(1),
    prev: hex64,
    hash: hex64,
  })
  .passthrough();
export type CustodyLine = z.infer<typeof CustodyLineSchema>;

export const CustodyRecordSchema = z
  .object({
    format: z.literal(CUSTODY_FORMAT),
    batchId: z.string().min(1),
    station: z.object({ name: z.string().min(1), key: z.string().startsWith('kluisstation1') }).strict(),
    createdAt: z.string().min(1),
    audit: AuditHeadSchema,
    lines: z.array(CustodyLineSchema),
  })
  .strict();
export type CustodyRecord = z.infer<typeof CustodyRecordSchema>;

export const SignedCustodySchema = z
  .object({
    record: CustodyRecordSchema,
    signature: z.object({ alg: z.literal('ed25519'), key: z.string(), value: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/) }).strict(),
  })
  .strict();
export type SignedCustody = z.infer<typeof SignedCustodySchema>;

function signedBytes(record: CustodyRecord): Uint8Array {
  return Buffer.from(SIGN_CONTEXT + canonicalJson(record), 'utf8');
}

/** The hash of an audit line over its own body (the same rule as the audit log's). */
export function lineHash(line: Record<string, unknown>): string {
  const { hash: _hash, ...body } = line;
  return createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex');
}

function custodyError(code: ErrorCode, message: string, hint: string, cause?: unknown): KluisError {
  return new KluisError(code, message, { hint, ...(cause !== undefined ? { cause } : {}) });
}

/** Signs a custody record with the station key and seals it whole to `recipients`. */
export function sealCustodyRecord(record: CustodyRecord, recipients: PublicKey[], stationKey: SecretKey, opts: SealOptions = {}): Uint8Array {
  if (stationKey.kind !== 'station') {
    throw new KluisError('E_KEY_KIND', `custody records are signed with the station key, not a ${stationKey.kind} key`);
  }
  const parsed = CustodyRecordSchema.safeParse(record);
  if (!parsed.success) {
    throw new KluisError('E_CUSTODY_SHAPE', `custody record is not valid: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { hint: 'this is a bug in the station' });
  }
  const key = formatPublicKey(stationKey.publicKey);
  if (parsed.data.station.key !== key) throw new KluisError('E_CUSTODY_SHAPE', 'custody record names another station key than the one signing it', { hint: 'this is a bug in the station' });
  const value = Buffer.from(sign(stationKey, signedBytes(parsed.data))).toString('base64');
  const signed: SignedCustody = { record: parsed.data, signature: { alg: 'ed25519', key, value } };
  return sealBytes(Buffer.from(canonicalJson(signed), 'utf8'), recipients, opts);
}

/** Checks a signed custody document (already decrypted): shape, signature, batch, lines. */
export function verifyCustodyDocument(doc: unknown, expect: { batchId: string; station: PublicKey }): SignedCustody {
  const parsed = SignedCustodySchema.safeParse(doc);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw custodyError(
      'E_CUSTODY_SHAPE',
      `the custody record is not a ${CUSTODY_FORMAT} document (${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid'})`,
      'the record was damaged or replaced; take the copy from another target and keep this one for investigation',
    );
  }
  const { record, signature } = parsed.data;
  const want = formatPublicKey(expect.station);
  if (signature.key !== want || record.station.key !== want) {
    throw custodyError('E_CUSTODY_SIGNATURE', `the custody record is signed by ${signature.key}, not by the batch's station ${want}`, 'do not trust this record; compare with the copy on another target');
  }
  if (!verifySignature(expect.station, signedBytes(record), Buffer.from(signature.value, 'base64'))) {
    throw custodyError(
      'E_CUSTODY_SIGNATURE',
      'the custody record was changed after the station signed it (signature does not verify)',
      'do not trust this record; take the copy from another target, and keep this one for investigation',
    );
  }
  if (record.batchId !== expect.batchId) {
    throw custodyError('E_CUSTODY_MISMATCH', `the custody record is for batch ${record.batchId}, not ${expect.batchId}`, 'the record was put under another batch; compare with the copy on another target');
  }
  const problems = lineProblems(record);
  if (problems.length > 0) {
    throw custodyError('E_CUSTODY_MISMATCH', `the custody record does not hold together: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`, 'the station signed lines that do not match their own hashes: keep the record and the station log for investigation');
  }
  return parsed.data;
}

/** What is wrong with the lines themselves (each line's hash, order, batch, station, head). */
export function lineProblems(record: CustodyRecord): string[] {
  const out: string[] = [];
  let prevSeq = -1;
  for (const l of record.lines) {
    if (lineHash(l) !== l.hash) out.push(`line seq ${l.seq} (${l.type}) does not hash to its own hash`);
    if (l.seq <= prevSeq) out.push(`line seq ${l.seq} follows seq ${prevSeq}`);
    if (l.seq > record.audit.seq) out.push(`line seq ${l.seq} lies past the record's audit head (seq ${record.audit.seq})`);
    if (l.seq === record.audit.seq && l.hash !== record.audit.head) out.push(`line seq ${l.seq} is the head but does not hash to it`);
    if (l.batchId !== record.batchId) out.push(`line seq ${l.seq} belongs to batch ${l.batchId}`);
    if (l.station !== record.station.name) out.push(`line seq ${l.seq} names station ${l.station}`);
    prevSeq = l.seq;
  }
  return out;
}

/** Decrypts and checks a sealed custody record. A wrong key stays E_SEAL_NO_RECIPIENT. */
export function openCustodyRecord(sealed: Uint8Array, identities: SecretKey[], expect: { batchId: string; station: PublicKey }): SignedCustody {
  let plain: Uint8Array;
  try {
    plain = openBytes(sealed, identities);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'E_SEAL_NO_RECIPIENT' || code.startsWith('E_KEY')) throw err;
    throw custodyError('E_CUSTODY_SEAL', `the sealed custody record does not open: ${(err as Error).message}${code ? ` [${code}]` : ''}`, 'the record was altered or cut on the target; take the copy from another target', err);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(plain).toString('utf8'));
  } catch (err) {
    throw custodyError('E_CUSTODY_SHAPE', 'the custody record is not JSON', 'the record was damaged; take the copy from another target', err);
  }
  return verifyCustodyDocument(doc, expect);
}
