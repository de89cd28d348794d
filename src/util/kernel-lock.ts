/**
 * A lock the kernel holds for this process.
 *
 * Promises:
 * - `KernelLock` is an exclusive lock on a file that the kernel releases when the holding process
 *   ends, however it ends: exit, crash, kill -9 of its whole process group, a power cut. It is
 *   SQLite's own locking (POSIX fcntl record locks on a small, otherwise empty lock database),
 *   held by an open `BEGIN EXCLUSIVE` transaction. A dead process holds no fcntl lock, and that
 *   includes a zombie: the kernel closes a process's files before it waits to be reaped.
 * - no decision ever rests on a pid: a pid that stays (a zombie whose parent does not reap it) or
 *   comes back (reused after a reboot) changes nothing.
 *
 * Never: deletes a lock database (a process may be waiting on that very file; deleting it would
 * let a third process lock a new file of the same name, and two would hold); opens or closes the
 * lock database other than through SQLite (closing ANY descriptor of a file drops this process's
 * fcntl locks on it; SQLite keeps track of that itself); waits for a lock inside a synchronous
 * call (the event loop keeps running: polling is the caller's, see `KernelLock.acquire`).
 *
 * SQLite here is node:sqlite, like the journal's, but through its own connections only (a lock
 * must not share a connection with anything that commits). One connection per lock file per
 * process is opened once and kept, so none is ever collected while it might hold; it is reopened
 * only when the file at the path is no longer the one it has open (the state folder was removed).
 * Lock files on NFS are as good as the server's lockd. Used by the station lock
 * (pipeline/lock.ts) and the audit log's writer (audit/writer.ts).
 */
import { chmodSync, chownSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { KluisError } from '../errors.js';

/** SQLITE_BUSY (5) or SQLITE_LOCKED (6): another connection holds the lock. */
function isBusy(err: unknown): boolean {
  const e = err as { errcode?: unknown; code?: unknown };
  return e.errcode === 5 || e.errcode === 6 || e.code === 'SQLITE_BUSY';
}

/** The one connection this process keeps to a lock file, and which KernelLock holds it now. */
interface Connection {
  db: DatabaseSync;
  ino: number;
  configured: boolean;
  holder: KernelLock | null;
}
const connections = new Map<string, Connection>();

function inodeOf(file: string): number | undefined {
  try {
    return statSync(file).ino; // by path: opening the file ourselves could drop our locks on it
  } catch {
    return undefined;
  }
}

/**
 * A lock file this process just created gets `mode`, and, made by root in a folder someone else
 * owns (an admin command run with sudo on a station), that owner: the station's own user must
 * be able to open it for writing, or it could never lock again. By path only (see above).
 */
function settle(file: string, mode: number): void {
  chmodSync(file, mode);
  if (process.getuid?.() === 0) {
    const dir = statSync(path.dirname(file));
    if (dir.uid !== 0) chownSync(file, dir.uid, dir.gid);
  }
}

function connect(file: string, mode: number): Connection {
  const isNew = inodeOf(file) === undefined;
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file);
    if (isNew) settle(file, mode);
  } catch (err) {
    throw new KluisError('E_LOCK_OPEN', `cannot open the lock file ${file}: ${(err as Error).message}`, {
      hint: 'check that the station state folder exists and is writable by this user',
      cause: err,
    });
  }
  return { db, ino: inodeOf(file) ?? -1, configured: false, holder: null };
}

export class KernelLock {
  private closed = false;

  private constructor(
    readonly file: string,
    private readonly mode: number,
  ) {}

  /** A handle on the lock file `file` (created with `mode` if needed); takes nothing yet. */
  static open(file: string, mode = 0o600): KernelLock {
    const abs = path.resolve(file);
    if (!connections.has(abs)) connections.set(abs, connect(abs, mode));
    return new KernelLock(abs, mode);
  }

  get held(): boolean {
    return connections.get(this.file)?.holder === this;
  }

  /** Takes the lock if nobody (no process, no other KernelLock in this one) holds it; never waits. */
  tryAcquire(): boolean {
    if (this.closed) throw new KluisError('E_INTERNAL', `lock ${this.file} is closed`);
    let c = connections.get(this.file);
    if (c?.holder) return false;
    if (!c || inodeOf(this.file) !== c.ino) {
      // The file we had open was removed or replaced: lock the one that is there now.
      c?.db.close();
      c = connect(this.file, this.mode);
      connections.set(this.file, c);
    }
    try {
      if (!c.configured) {
        // No journal file beside the lock database: the transaction never writes a page.
        c.db.exec('PRAGMA journal_mode = MEMORY');
        c.configured = true;
      }
      c.db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      if (isBusy(err)) return false;
      throw new KluisError('E_LOCK_OPEN', `cannot take the lock ${this.file}: ${(err as Error).message}`, {
        hint: `if ${path.basename(this.file)} is not a kluis lock file, move it away (no kluis process needs it then)`,
        cause: err,
      });
    }
    c.holder = this;
    return true;
  }

  /** Polls `tryAcquire` (5-25 ms apart, the event loop runs meanwhile) until it succeeds or `timeoutMs` passed. */
  async acquire(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.tryAcquire()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
  }

  /** Lets the lock go; the file stays, and so does the connection, for the next taker. */
  release(): void {
    const c = connections.get(this.file);
    if (!c || c.holder !== this) return;
    c.holder = null;
    try {
      c.db.exec('ROLLBACK');
    } catch {
      // Nothing was written. Should the rollback fail, dropping the connection drops the lock.
      connections.delete(this.file);
      c.db.close();
    }
  }

  /** Releases (if held); the handle cannot be used again. */
  close(): void {
    this.release();
    this.closed = true;
  }
}
