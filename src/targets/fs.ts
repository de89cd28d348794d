/**
 * Filesystem / NAS-mount target. Objects live under the configured folder (relative to the
 * config folder); keys may contain '/' (batch folders).
 *
 * Promises: a put writes to a hidden temp file in the destination folder, fsyncs it, then
 * link()s it to the final name (link fails if the name exists: E_TARGET_EXISTS, never an
 * overwrite), removes the temp name and fsyncs the folder. So an object is visible only when
 * complete and durable. Temp files (".kluis-tmp-<host>-<pid>-*") are never listed; one left by a
 * writer that died (kill -9, power loss) is removed by the next put into the same folder from the
 * same host, once its pid is no longer alive. Another host's temp files are never touched.
 *
 * The store folder itself is created on first put when missing (a fresh `kluis init` layout). A
 * folder that disappears during a put (a NAS unmounted) is E_TARGET_UNREACHABLE, retryable.
 * Never: follows a key outside the folder (keys are validated), overwrites, or reads into memory.
 *
 * Without another full copy (issue 14): when the put names the local file that holds the body
 * (PutOptions.localPath, the sealed object in the spool) and the store is on the same file
 * system, the object is a hard link to it when it has the mode a stored object gets (0644 less the
 * umask) (link() refuses an existing name, so still never an overwrite; the spool only ever
 * unlinks its name, so the object's bytes stay as they are). On
 * another file system it is cloned where the file system can (COPYFILE_FICLONE; otherwise the
 * kernel copies it, copy_file_range/sendfile, without the bytes passing through kluis) to a temp
 * name, fsynced and linked into place. Either way the size is checked, and the caller's read-back
 * still verifies every byte.
 */
import { createReadStream, createWriteStream, readFileSync, promises as fsp, constants as C } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { KluisError } from '../errors.js';
import { fsyncDir } from '../util/fsx.js';
import { give, take } from '../util/reuse.js';
import { checkedBody, isDeadTemp, tempName, validateKey, validatePrefix } from './common.js';
import { againstCursor, pageLimit, takePage, treeCursor } from './paging.js';
import type { ListPage, ObjectInfo, ProbeResult, PutOptions, Target, TargetCapabilities } from './types.js';

/** The mode a put asks for; the process umask applies (the service runs with UMask=0077). */
const OBJECT_MODE = 0o644;
/** The read-back's one buffer (reused across objects, util/reuse.ts): never a new buffer per chunk. */
const READ_BACK_CHUNK = 1 << 20;

let effectiveMode: number | undefined;
/** The mode a stored object really gets: OBJECT_MODE less the process umask (read from /proc). */
function objectMode(): number {
  if (effectiveMode === undefined) {
    let umask = 0o022;
    try {
      const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
      if (m) umask = parseInt(m[1]!, 8);
    } catch {
      // not Linux: assume the usual 022
    }
    effectiveMode = OBJECT_MODE & ~umask;
  }
  return effectiveMode;
}

/** Removes temp files in `dir` that this host's dead writers left behind (best effort). */
async function sweepDeadTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (isDeadTemp(n)) await fsp.unlink(path.join(dir, n)).catch(() => undefined);
  }
}

export class FsTarget implements Target {
  readonly type = 'fs' as const;
  readonly capabilities: TargetCapabilities = { objectLock: false, versioning: false, multipart: false, serverHash: false };

  constructor(
    readonly name: string,
    readonly root: string,
  ) {}

  private pathOf(key: string): string {
    validateKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  private ioError(err: unknown, what: string): KluisError {
    if (err instanceof KluisError) return err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT') {
      return new KluisError('E_TARGET_FULL', `target ${this.name}: no space left while ${what}`, {
        hint: 'free space on the store; queued uploads are retried later',
        cause: err,
        details: { retryable: true },
      });
    }
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'EIO' || e.code === 'ESTALE' || e.code === 'ENODEV') {
      return new KluisError('E_TARGET_UNREACHABLE', `target ${this.name}: store folder ${this.root} is not there (${e.code}) while ${what}`, {
        hint: 'mount the NAS / create the store folder; queued uploads are retried later',
        cause: err,
        details: { retryable: true },
      });
    }
    if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') {
      return new KluisError('E_TARGET_AUTH', `target ${this.name}: no permission (${e.code}) while ${what}`, {
        hint: `give the kluis user write access to ${this.root}`,
        cause: err,
        details: { retryable: false },
      });
    }
    return new KluisError('E_TARGET_IO', `target ${this.name}: ${e.message} while ${what}`, { cause: err, details: { retryable: true } });
  }

  private exists(key: string): KluisError {
    return new KluisError('E_TARGET_EXISTS', `target ${this.name}: object ${key} already exists`, { details: { retryable: false } });
  }

  /** Gives the fsynced temp file `tmp` its object name (never over an existing one), then drops the temp name. */
  private async publish(tmp: string, final: string, key: string): Promise<void> {
    try {
      await fsp.link(tmp, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw this.exists(key);
      throw err;
    }
    await fsp.unlink(tmp);
    await fsyncDir(path.dirname(final));
  }

  async put(key: string, body: () => Readable, opts: PutOptions): Promise<void> {
    const final = this.pathOf(key);
    const dir = path.dirname(final);
    try {
      await fsp.mkdir(this.root, { recursive: true });
      await fsp.mkdir(dir, { recursive: true });
    } catch (err) {
      throw this.ioError(err, 'creating folders');
    }
    if (await this.head(key)) throw this.exists(key);
    await sweepDeadTemps(dir);
    if (opts.localPath && (await this.putLocal(key, final, opts.localPath, opts.size))) return;
    const tmp = path.join(dir, tempName());
    try {
      const out = createWriteStream(tmp, { flags: 'wx', mode: OBJECT_MODE });
      await pipeline(checkedBody(body(), opts.size, opts.sha256, this.name), out);
      const fh = await fsp.open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.publish(tmp, final, key);
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined); // the temp name may already be gone (folder vanished)
      throw this.ioError(err, `writing ${key}`);
    }
  }

  /**
   * The object from a local file holding its body: a hard link, else a clone or kernel copy.
   * False when the local file cannot be used (gone, another size): the caller streams the body.
   */
  private async putLocal(key: string, final: string, local: string, size: number): Promise<boolean> {
    const st = await fsp.stat(local).catch(() => null);
    if (!st?.isFile() || st.size !== size) return false;
    const dir = path.dirname(final);
    // A link shares the file's mode: only a file with the mode a stored object gets is linked.
    if ((st.mode & 0o777) === objectMode()) {
      try {
        await fsp.link(local, final);
        await fsyncDir(dir);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw this.exists(key);
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw this.ioError(err, `linking ${key}`);
      }
    }
    const tmp = path.join(dir, tempName());
    try {
      await fsp.copyFile(local, tmp, C.COPYFILE_EXCL | C.COPYFILE_FICLONE);
      const fh = await fsp.open(tmp, 'r');
      try {
        if ((await fh.stat()).size !== size) throw new KluisError('E_TARGET_BODY', `target ${this.name}: the copy of ${key} does not have the ${size} bytes of its source`, { details: { retryable: true } });
        await fh.chmod(objectMode());
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.publish(tmp, final, key);
      return true;
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw this.ioError(err, `writing ${key}`);
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const p = this.pathOf(key);
    try {
      const st = await fsp.lstat(p);
      if (!st.isFile()) return null;
      return { key, size: st.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw this.ioError(err, `reading ${key}`);
    }
  }

  async get(key: string): Promise<Readable> {
    const p = this.pathOf(key);
    const info = await this.head(key);
    if (!info) throw new KluisError('E_TARGET_MISSING', `target ${this.name}: object ${key} does not exist`, { details: { retryable: false } });
    const s = createReadStream(p, { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      s.once('open', () => resolve());
      s.once('error', (err) => reject(this.ioError(err, `opening ${key}`)));
    });
    return s;
  }

  async readBackSha256(key: string): Promise<{ sha256: string; size: number }> {
    const p = this.pathOf(key);
    if (!(await this.head(key))) throw new KluisError('E_TARGET_MISSING', `target ${this.name}: object ${key} does not exist`, { details: { retryable: false } });
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(p, C.O_RDONLY | C.O_NOFOLLOW);
    } catch (err) {
      throw this.ioError(err, `opening ${key}`);
    }
    const buf = take(READ_BACK_CHUNK);
    try {
      const h = createHash('sha256');
      let size = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, size);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        size += bytesRead;
      }
      return { sha256: h.digest('hex'), size };
    } catch (err) {
      throw this.ioError(err, `reading ${key}`);
    } finally {
      await fh.close().catch(() => undefined);
      give(buf); // no read into it is under way any more
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    yield* this.walk(this.startOf(prefix), prefix, undefined);
  }

  async listPage(prefix: string, cursor?: string, limit?: number): Promise<ListPage> {
    validatePrefix(prefix);
    const n = pageLimit(limit);
    return takePage(this.walk(this.startOf(prefix), prefix, treeCursor(cursor)), n);
  }

  private startOf(prefix: string): string {
    const slash = prefix.lastIndexOf('/');
    return slash >= 0 ? prefix.slice(0, slash) : '';
  }

  /** Tree order (names sorted within each folder); with `after`, only what follows that key. */
  private async *walk(rel: string, prefix: string, after: string[] | undefined): AsyncGenerator<ObjectInfo> {
    const dir = rel ? path.join(this.root, ...rel.split('/')) : this.root;
    let entries;
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && rel !== '') return;
      if (code === 'ENOENT') return; // an empty, never-written store
      throw this.ioError(err, `listing ${rel || '/'}`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue; // temp files and anything hidden
      const key = rel ? `${rel}/${e.name}` : e.name;
      const where = againstCursor(key.split('/'), after, e.isDirectory());
      if (where === 'before') continue;
      if (e.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || `${key}/`.startsWith(prefix) || key.startsWith(prefix)) yield* this.walk(key, prefix, where === 'on-path' ? after : undefined);
      } else if (e.isFile() && key.startsWith(prefix)) {
        const st = await fsp.lstat(path.join(dir, e.name));
        yield { key, size: st.size };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await fsp.unlink(this.pathOf(key));
      await fsyncDir(path.dirname(this.pathOf(key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.ioError(err, `deleting ${key}`);
    }
  }

  async probe(): Promise<ProbeResult> {
    try {
      await fsp.mkdir(this.root, { recursive: true });
      await fsp.access(this.root, C.W_OK | C.R_OK);
      return { ok: true, addresses: [{ address: this.root, allowed: true, reason: 'local folder (no network)' }] };
    } catch (err) {
      const e = this.ioError(err, 'checking the folder');
      return { ok: false, addresses: [{ address: this.root, allowed: true, reason: 'local folder (no network)' }], error: { code: e.code, message: e.message } };
    }
  }

  async close(): Promise<void> {}
}
