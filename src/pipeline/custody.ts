/**
 * Makes a batch's custody record (src/seal/custody.ts) when the batch is closed: the log's head
 * is read under the log's lock, the batch's own lines up to that head are gathered from the end
 * of the log backwards, and the record is signed, sealed to the evidence recipients and written
 * into the batch's sealed spool folder, from where the outbox delivers it like the manifest.
 *
 * The lines are the log's lines exactly as written (their chain hashes included), so a reader
 * holding the station log can find each one in it. The backward read stops at the batch's first
 * `card-seen` line (one that is not a resume); without one it reads to the start of the log.
 * Never: writes to the audit log, or keeps plaintext of the record anywhere.
 */
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { KluisError } from '../errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { linesBackward } from '../util/lines-backward.js';
import { CUSTODY_FORMAT, sealCustodyRecord, type AuditHead, type CustodyLine, type CustodyRecord } from '../seal/index.js';
import type { Station } from './station.js';

/** The object id of a batch's custody record on every target (`<batchId>/custody`). */
export const CUSTODY_ID = 'custody';

/** The lines of `batchId` in the log `file` with seq at most `headSeq`, oldest first. */
export async function batchLines(file: string, batchId: string, headSeq: number): Promise<CustodyLine[]> {
  const out: CustodyLine[] = [];
  for await (const text of linesBackward(file)) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      continue; // a torn or damaged line: `kluis audit verify` names it; it belongs to no record
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) continue;
    const e = v as Partial<CustodyLine> & Record<string, unknown>;
    if (typeof e.seq !== 'number' || e.seq > headSeq || e.batchId !== batchId) continue;
    out.push(e as CustodyLine);
    if (e.type === 'card-seen' && e.resumed === false) break;
  }
  return out.reverse();
}

export interface SealedCustody {
  id: string;
  file: string;
  size: number;
  sha256: string;
  audit: AuditHead;
  lines: number;
}

/** Builds, signs and seals the batch's custody record into `sealedDir` (0600, atomically). */
export async function sealCustody(station: Station, batchId: string, sealedDir: string): Promise<SealedCustody> {
  const head = await station.audit.head();
  if (head.seq < 0) {
    throw new KluisError('E_INTERNAL', `the audit log is empty while batch ${batchId} is closed`, { hint: 'this is a bug: every batch starts with a card-seen line' });
  }
  const lines = await batchLines(station.audit.file, batchId, head.seq);
  const record: CustodyRecord = {
    format: CUSTODY_FORMAT,
    batchId,
    station: { name: station.config.station, key: station.config.stationKey },
    createdAt: new Date().toISOString(),
    audit: { seq: head.seq, head: head.hash },
    lines,
  };
  const sealed = sealCustodyRecord(record, station.recipients, station.stationKey);
  const file = path.join(sealedDir, CUSTODY_ID);
  await writeFileAtomic(file, sealed, 0o600);
  return { id: CUSTODY_ID, file, size: sealed.length, sha256: createHash('sha256').update(sealed).digest('hex'), audit: record.audit, lines: lines.length };
}
