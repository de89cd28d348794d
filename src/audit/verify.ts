/**
 * The station's audit log, read and checked: `readAuditLog` streams its lines (bounded memory per
 * line); `verifyAuditLog` follows the whole chain and checks every checkpoint's signature with
 * the station's public key. Each problem names its line.
 *
 * What a hash chain cannot show on its own: lines cut off at the end after the last checkpoint
 * the reader trusts. `verifyAuditLog` reports the count after the last checkpoint so a reader can
 * compare it with an external record (e.g. the batch manifest's audit head, pipeline/anchors.ts).
 *
 * Never: writes to the log, or moves a torn line aside (opening it for writing does).
 */
import { promises as fsp, createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { canonicalJson } from '../util/canonical-json.js';
import { KluisError } from '../errors.js';
import { verifySignature, type PublicKey } from '../seal/index.js';
import { ZERO_HASH, checkpointMessage, entryHash, type AuditEntry } from './format.js';

export interface AuditProblem {
  line: number;
  code: string;
  message: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  entries: number;
  checkpoints: number;
  /** Entries after the last valid checkpoint (not covered by a signature). */
  unsignedTail: number;
  /** False when no station public key was given: checkpoint signatures were not checked. */
  signaturesChecked: boolean;
  /** Hash of the last entry (the chain head), or 64 zeros for an empty log. */
  head: string;
  problems: AuditProblem[];
}

/** Streams the entries of an audit log, one parsed line at a time (bounded memory per line). */
export async function* readAuditLog(file: string): AsyncGenerator<{ line: number; text: string; entry: AuditEntry | null }> {
  let stream;
  try {
    await fsp.access(file);
    stream = createReadStream(file, { encoding: 'utf8' });
  } catch (err) {
    throw new KluisError('E_AUDIT_MISSING', `no audit log at ${file}`, {
      hint: 'the station writes it under state/audit.jsonl next to its config; check --config',
      cause: err,
    });
  }
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  for await (const text of rl) {
    n++;
    let entry: AuditEntry | null = null;
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) entry = v as AuditEntry;
    } catch {
      entry = null;
    }
    yield { line: n, text, entry };
  }
}

/**
 * Checks the whole chain: every line parses, is canonical, has the next seq, points at the
 * previous line's hash and hashes to its own `hash`; every checkpoint signs the head before it
 * with the station key. Each problem names its line (1-based).
 */
export async function verifyAuditLog(file: string, stationPub?: PublicKey): Promise<AuditVerifyResult> {
  const problems: AuditProblem[] = [];
  let entries = 0;
  let checkpoints = 0;
  let prevHash = ZERO_HASH;
  let prevSeq = -1;
  let sinceCheckpoint = 0;

  const st = await fsp.stat(file).catch((err) => {
    throw new KluisError('E_AUDIT_MISSING', `no audit log at ${file}`, {
      hint: 'the station writes it under state/audit.jsonl next to its config; check --config',
      cause: err,
    });
  });
  if (st.size > 0) {
    const fh = await fsp.open(file, 'r');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, st.size - 1);
    await fh.close();
    if (b[0] !== 0x0a) {
      problems.push({ line: -1, code: 'torn', message: 'the last line is incomplete (a crash mid-write; opening the log moves it aside)' });
    }
  }

  for await (const { line, text, entry } of readAuditLog(file)) {
    if (!entry) {
      problems.push({ line, code: 'unparseable', message: `line ${line} is not a JSON object` });
      // The chain cannot be followed through this line; resynchronise on the next one.
      prevHash = '';
      prevSeq = -2;
      continue;
    }
    entries++;
    const { hash, ...body } = entry;
    if (typeof entry.seq !== 'number' || typeof hash !== 'string' || typeof entry.prev !== 'string') {
      problems.push({ line, code: 'malformed', message: `line ${line} lacks seq, prev or hash` });
      prevHash = typeof hash === 'string' ? hash : '';
      prevSeq = typeof entry.seq === 'number' ? entry.seq : -2;
      continue;
    }
    if (prevSeq !== -2 && entry.seq !== prevSeq + 1) {
      const what =
        entry.seq > prevSeq + 1
          ? `${entry.seq - prevSeq - 1} entr${entry.seq - prevSeq - 1 === 1 ? 'y' : 'ies'} (seq ${prevSeq + 1}${entry.seq - prevSeq - 1 > 1 ? `..${entry.seq - 1}` : ''}) missing before line ${line}: a line was removed`
          : `line ${line} has seq ${entry.seq} after seq ${prevSeq}: lines were reordered or duplicated`;
      problems.push({ line, code: entry.seq > prevSeq + 1 ? 'gap' : 'order', message: what });
    }
    if (prevHash !== '' && entry.prev !== prevHash) {
      problems.push({
        line,
        code: 'broken-chain',
        message: `line ${line} (seq ${entry.seq}) does not point at the line before it: the previous line was changed, removed or moved`,
      });
    }
    const computed = entryHash(body);
    if (computed !== hash) {
      problems.push({ line, code: 'hash-mismatch', message: `line ${line} (seq ${entry.seq}, ${String(entry.type)}) was changed after it was written` });
    } else if (canonicalJson(entry) !== text) {
      problems.push({ line, code: 'not-canonical', message: `line ${line} is not in the canonical form the station writes (edited by hand?)` });
    }
    if (entry.type === 'checkpoint') {
      const ok = checkCheckpoint(entry, prevHash, prevSeq, stationPub);
      if (ok === true) {
        checkpoints++;
        sinceCheckpoint = 0;
      } else {
        problems.push({ line, code: ok.code, message: `line ${line}: ${ok.message}` });
        sinceCheckpoint++;
      }
    } else {
      sinceCheckpoint++;
    }
    prevHash = hash;
    prevSeq = entry.seq;
  }
  return {
    ok: problems.length === 0,
    entries,
    checkpoints,
    unsignedTail: sinceCheckpoint,
    signaturesChecked: stationPub !== undefined,
    head: prevHash || ZERO_HASH,
    problems,
  };
}

function checkCheckpoint(
  entry: AuditEntry,
  prevHash: string,
  prevSeq: number,
  stationPub: PublicKey | undefined,
): true | { code: string; message: string } {
  const { headSeq, head, signature, station } = entry as AuditEntry & { headSeq?: unknown; head?: unknown; signature?: unknown };
  if (typeof headSeq !== 'number' || typeof head !== 'string' || typeof signature !== 'string') {
    return { code: 'bad-checkpoint', message: 'checkpoint lacks headSeq, head or signature' };
  }
  if (prevHash !== '' && (head !== prevHash || headSeq !== prevSeq)) {
    return { code: 'bad-checkpoint', message: `checkpoint signs seq ${headSeq}, but the line before it is seq ${prevSeq}` };
  }
  if (!stationPub) return true; // shape and position checked; the caller reports signaturesChecked: false
  const ok = verifySignature(stationPub, checkpointMessage(station, headSeq, head), Buffer.from(signature, 'base64'));
  if (!ok) return { code: 'bad-signature', message: `checkpoint signature over seq ${headSeq} does not verify with the station key` };
  return true;
}
