/**
 * The audit log's line format, shared by its writer (writer.ts) and its checker (verify.ts); see
 * docs/evidence.md.
 *
 * Every entry is `{seq, time, type, station, operator?, case?, batchId?, card?, file?, ...data,
 * prev, hash}` written as canonical JSON on one line; `hash` is the hex SHA-256 of the canonical
 * JSON of the entry without `hash` (a custody record's lines are checked by the same rule, seal's
 * `lineHash`); `prev` is the previous entry's `hash` (64 zeros for
 * the first entry). Times are ISO 8601 UTC with `Z`. A `checkpoint` entry carries an ed25519
 * signature by the station key over `checkpointMessage` of the head before it.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonical-json.js';

export const AUDIT_EVENT_TYPES = [
  'card-seen',
  'card-writable',
  'card-safe-to-remove',
  'file-acquired',
  'file-rejected',
  'file-sanitized',
  'file-sanitize-failed',
  'file-sealed',
  'file-held',
  'file-withheld',
  'delivered',
  'delivery-failed',
  'verified',
  'verify-failed',
  'refused',
  'batch-secured',
  'batch-partial',
  'wiped',
  'config-changed',
  'config-refused',
  'key-used',
  'export',
  'recovered',
  'checkpoint',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export const ZERO_HASH = '0'.repeat(64);

export interface AuditEntry {
  seq: number;
  time: string;
  type: AuditEventType;
  station: string;
  operator?: string;
  case?: string;
  batchId?: string;
  card?: string;
  file?: string;
  prev: string;
  hash: string;
  [key: string]: unknown;
}

/** Fields the log owns; `data` may not set them. */
export const RESERVED = new Set(['seq', 'time', 'type', 'station', 'prev', 'hash']);

/** The hex SHA-256 of the canonical JSON of an entry without its `hash`. */
export function entryHash(entryWithoutHash: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(entryWithoutHash), 'utf8').digest('hex');
}

/** The bytes a checkpoint signs: domain, station, the sequence number and hash of the head. */
export function checkpointMessage(station: string, headSeq: number, head: string): Uint8Array {
  return new TextEncoder().encode(`kluis-audit-checkpoint-v1\n${station}\n${headSeq}\n${head}`);
}
