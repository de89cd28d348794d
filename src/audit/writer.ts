/**
 * The station's audit log, written: one JSON line per event (format.ts), append-only,
 * hash-chained, with periodic ed25519-signed checkpoints.
 *
 * Promises:
 * - `append` returns only after the line is written with O_APPEND and fsync'ed.
 * - several processes may append to the same file: each append holds the kernel lock on
 *   `<file>.lock.db` (util/kernel-lock.ts: released when its holder dies, never judged by pid) and
 *   re-reads the tail when the file changed under it, so seq and prev stay a single chain.
 * - a torn final line (a crash mid-write) is never silently dropped: on open it is moved into
 *   `<file>.torn-<time>` and a `recovered` entry records its size and SHA-256.
 * - with a station key, a `checkpoint` entry signs the chain head every `checkpointEvery`
 *   entries and at close.
 * - `head` is the chain head on disk (read under the lock): what a batch is tied to.
 *
 * Never: rewrites or deletes a complete line; logs secret key material; reads the log to check it
 * (verify.ts does).
 */
import { promises as fsp, constants as C } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonical-json.js';
import { KluisError } from '../errors.js';
import { fsyncDir, writeNewFileSynced } from '../util/fsx.js';
import { KernelLock } from '../util/kernel-lock.js';
import { formatPublicKey, sign, type SecretKey } from '../seal/index.js';
import { AUDIT_EVENT_TYPES, RESERVED, ZERO_HASH, checkpointMessage, entryHash, type AuditEntry, type AuditEventType } from './format.js';

export interface AuditOpenOptions {
  station: string;
  /** Station signing key; without it no checkpoints are written. */
  stationKey?: SecretKey;
  /** Write a signed checkpoint after this many entries (default 100). 0 turns them off. */
  checkpointEvery?: number;
  /** How long to wait for another process's lock before giving up (ms, default 30000). */
  lockTimeoutMs?: number;
}

interface Tail {
  size: number;
  seq: number; // seq of the last entry, -1 for none
  hash: string;
}

export class AuditLog {
  private fh: fsp.FileHandle | null = null;
  private tail: Tail = { size: 0, seq: -1, hash: ZERO_HASH };
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private lastTypeOnDisk: AuditEventType | null = null;

  private constructor(
    readonly file: string,
    private readonly opts: Required<Pick<AuditOpenOptions, 'station' | 'checkpointEvery' | 'lockTimeoutMs'>> & {
      stationKey?: SecretKey;
    },
  ) {}

  static async open(file: string, opts: AuditOpenOptions): Promise<AuditLog> {
    if (!opts.station) throw new KluisError('E_AUDIT_USAGE', 'the audit log needs a station name');
    if (opts.stationKey && opts.stationKey.kind !== 'station') {
      throw new KluisError('E_KEY_KIND', `audit checkpoints are signed with the station key, not a ${opts.stationKey.kind} key`);
    }
    const log = new AuditLog(path.resolve(file), {
      station: opts.station,
      checkpointEvery: opts.checkpointEvery ?? 100,
      lockTimeoutMs: opts.lockTimeoutMs ?? 30_000,
      ...(opts.stationKey ? { stationKey: opts.stationKey } : {}),
    });
    await fsp.mkdir(path.dirname(log.file), { recursive: true });
    try {
      log.fh = await fsp.open(log.file, C.O_WRONLY | C.O_APPEND | C.O_CREAT, 0o640);
    } catch (err) {
      throw new KluisError('E_AUDIT_OPEN', `cannot open audit log ${log.file}: ${(err as Error).message}`, {
        hint: 'check that the station state folder exists and is writable by this user',
        cause: err,
      });
    }
    await fsyncDir(path.dirname(log.file));
    try {
      await log.withLock(async () => {
        await log.recoverTornTail();
      });
    } catch (err) {
      await log.fh?.close();
      throw err;
    }
    return log;
  }

  /** Appends one event; resolves with the entry once it is on disk. */
  append(type: AuditEventType, data: Record<string, unknown> = {}): Promise<AuditEntry> {
    const run = this.queue.then(() => this.appendNow(type, data));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * The chain head as it is on disk now: seq and hash of the last line (read under the lock, so
   * another process's append is seen). What a batch's custody record and manifest are tied to.
   */
  head(): Promise<{ seq: number; hash: string }> {
    const run = this.queue.then(() => {
      if (this.closed || !this.fh) throw new KluisError('E_AUDIT_CLOSED', 'the audit log is closed');
      return this.withLock(async () => {
        await this.refreshTail();
        return { seq: this.tail.seq, hash: this.tail.hash };
      });
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Writes a final checkpoint (with a station key) and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    try {
      if (this.opts.stationKey) {
        await this.withLock(async () => {
          await this.refreshTail();
          if (this.tail.seq >= 0 && this.lastTypeOnDisk !== 'checkpoint') await this.writeCheckpoint();
        });
      }
    } finally {
      this.closed = true;
      await this.fh?.close();
      this.fh = null;
    }
  }

  private async appendNow(type: AuditEventType, data: Record<string, unknown>): Promise<AuditEntry> {
    if (this.closed || !this.fh) throw new KluisError('E_AUDIT_CLOSED', 'the audit log is closed');
    if (!(AUDIT_EVENT_TYPES as readonly string[]).includes(type)) {
      throw new KluisError('E_AUDIT_USAGE', `unknown audit event type '${type}'`);
    }
    for (const k of Object.keys(data)) {
      if (RESERVED.has(k)) throw new KluisError('E_AUDIT_USAGE', `audit data may not set the reserved field '${k}'`);
    }
    return this.withLock(async () => {
      await this.refreshTail();
      const entry = await this.writeEntry(type, data);
      const every = this.opts.checkpointEvery;
      if (this.opts.stationKey && every > 0 && (entry.seq + 1) % every === 0) await this.writeCheckpoint();
      return entry;
    });
  }

  private async writeEntry(type: AuditEventType, data: Record<string, unknown>): Promise<AuditEntry> {
    const fh = this.fh;
    if (!fh) throw new KluisError('E_AUDIT_CLOSED', 'the audit log is closed');
    const body: Record<string, unknown> = {
      ...data,
      seq: this.tail.seq + 1,
      time: new Date().toISOString(),
      type,
      station: this.opts.station,
      prev: this.tail.hash,
    };
    const hash = entryHash(body);
    const entry = { ...body, hash } as AuditEntry;
    const line = Buffer.from(`${canonicalJson(entry)}\n`, 'utf8');
    try {
      let off = 0;
      while (off < line.length) {
        const { bytesWritten } = await fh.write(line, off, line.length - off);
        off += bytesWritten;
      }
      await fh.sync();
    } catch (err) {
      throw new KluisError('E_AUDIT_WRITE', `cannot write the audit log ${this.file}: ${(err as Error).message}`, {
        hint: 'the station stops rather than work without an audit trail; free disk space or fix permissions',
        cause: err,
      });
    }
    this.tail = { size: this.tail.size + line.length, seq: entry.seq, hash };
    this.lastTypeOnDisk = type;
    return entry;
  }

  private async writeCheckpoint(): Promise<AuditEntry> {
    const key = this.opts.stationKey;
    if (!key) throw new KluisError('E_INTERNAL', 'checkpoint without a station key');
    const headSeq = this.tail.seq;
    const head = this.tail.hash;
    const signature = Buffer.from(sign(key, checkpointMessage(this.opts.station, headSeq, head))).toString('base64');
    return this.writeEntry('checkpoint', { headSeq, head, key: formatPublicKey(key.publicKey), signature });
  }

  /** Re-reads the last line when the file changed since we last looked (another process). */
  private async refreshTail(): Promise<void> {
    const st = await fsp.stat(this.file);
    if (st.size === this.tail.size && this.lastTypeOnDisk !== null) return;
    if (st.size === 0) {
      this.tail = { size: 0, seq: -1, hash: ZERO_HASH };
      this.lastTypeOnDisk = null;
      return;
    }
    const last = await readLastLine(this.file, st.size);
    if (last.torn) {
      // Another writer crashed mid-line after we opened: recover now, never append after it.
      await this.recoverTornTail();
      return;
    }
    let parsed: AuditEntry;
    try {
      parsed = JSON.parse(last.line) as AuditEntry;
    } catch (err) {
      throw new KluisError('E_AUDIT_CORRUPT', `the last line of the audit log ${this.file} is not JSON`, {
        hint: 'run `kluis audit verify` and keep the file as it is for investigation; do not edit it',
        cause: err,
      });
    }
    if (typeof parsed.seq !== 'number' || typeof parsed.hash !== 'string') {
      throw new KluisError('E_AUDIT_CORRUPT', `the last line of the audit log ${this.file} is not an audit entry`, {
        hint: 'run `kluis audit verify` and keep the file as it is for investigation',
      });
    }
    this.tail = { size: st.size, seq: parsed.seq, hash: parsed.hash };
    this.lastTypeOnDisk = parsed.type;
  }

  /** Moves a torn final line aside into its own file and records that in the chain. */
  private async recoverTornTail(): Promise<void> {
    const st = await fsp.stat(this.file);
    if (st.size === 0) {
      await this.refreshTail();
      return;
    }
    const last = await readLastLine(this.file, st.size);
    if (!last.torn) {
      this.tail.size = -1; // force a re-read
      await this.refreshTail();
      return;
    }
    const tornBytes = last.raw;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const tornFile = `${this.file}.torn-${stamp}`;
    await writeNewFileSynced(tornFile, tornBytes, 0o640);
    await fsyncDir(path.dirname(this.file));
    const keep = st.size - tornBytes.length;
    const wfh = await fsp.open(this.file, 'r+');
    try {
      await wfh.truncate(keep);
      await wfh.sync();
    } finally {
      await wfh.close();
    }
    this.tail.size = -1;
    await this.refreshTail();
    await this.writeEntry('recovered', {
      reason: 'torn final line after a crash, moved aside',
      tornFile: path.basename(tornFile),
      tornBytes: tornBytes.length,
      tornSha256: createHash('sha256').update(tornBytes).digest('hex'),
    });
  }

  /**
   * Runs `fn` holding the writer lock. The lock database is opened for this call only, so no
   * SQLite connection outlives an append (an AuditLog that is never closed leaks nothing).
   */
  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = KernelLock.open(`${this.file}.lock.db`, 0o640);
    try {
      if (!(await lock.acquire(this.opts.lockTimeoutMs))) {
        throw new KluisError('E_AUDIT_LOCKED', `the audit log ${this.file} stayed locked by another process`, {
          hint: 'another kluis process is writing to it; the lock goes with that process, so wait or stop it',
        });
      }
      return await fn();
    } finally {
      lock.close();
    }
  }
}

/** Reads the last line of `file` (reading backwards in chunks). `torn` when it lacks its newline. */
async function readLastLine(file: string, size: number): Promise<{ line: string; raw: Buffer; torn: boolean }> {
  const fh = await fsp.open(file, 'r');
  try {
    const chunk = 64 * 1024;
    const parts: Buffer[] = [];
    let pos = size;
    let endsWithNewline: boolean | null = null;
    let collected = 0;
    for (;;) {
      const start = Math.max(0, pos - chunk);
      const buf = Buffer.alloc(pos - start);
      await fh.read(buf, 0, buf.length, start);
      if (endsWithNewline === null) endsWithNewline = buf.length > 0 && buf[buf.length - 1] === 0x0a;
      // Search for the newline that ends the previous line (skipping our own trailing one).
      const searchEnd = collected === 0 && endsWithNewline ? buf.length - 2 : buf.length - 1;
      let nl = -1;
      for (let i = searchEnd; i >= 0; i--) {
        if (buf[i] === 0x0a) {
          nl = i;
          break;
        }
      }
      if (nl >= 0) {
        parts.unshift(buf.subarray(nl + 1));
        break;
      }
      parts.unshift(buf);
      collected += buf.length;
      pos = start;
      if (start === 0) break;
    }
    const raw = Buffer.concat(parts);
    const torn = !endsWithNewline;
    const line = (torn ? raw : raw.subarray(0, raw.length - 1)).toString('utf8');
    return { line, raw, torn };
  } finally {
    await fh.close();
  }
}
