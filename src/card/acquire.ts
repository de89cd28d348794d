/**
 * Acquire: reads a card file once, sequentially, in large chunks, and does everything that needs
 * the card's bytes on those bytes while they are in memory: SHA-256 and xxh128 (ASC MHL), the
 * sealed original (kluis-sealed/1 to the evidence recipients, through seal/'s streaming writer,
 * which also hashes the ciphertext), and the plaintext working copy in the private spool that the
 * sanitizer reads next. The card file is opened read-only with O_NOFOLLOW; nothing is ever written
 * to the card.
 *
 * A file that changes while it is read (size, mtime or inode before and after differ, or more or
 * fewer bytes than its size) is read again from the start, a few times with a growing pause,
 * until one whole read saw it unchanged; a file that never settles is E_CARD_CHANGED. What a
 * failed or changed read wrote is removed.
 *
 * Durability: the sealed original is fsynced and renamed into place (with its folder fsynced)
 * before the result is returned, so the journal may call the card "safe to remove" on it; with
 * `seal.defer` it is left closed under its temporary name (`sealed.pending`) and the caller does
 * that step (publishSealed) before it journals the file. The
 * working copy is NOT fsynced (unless asked): it usually lives only in the page cache until it is
 * sanitized and removed, and a process that picks it up later checks it against the card hash
 * first (the pipeline's `checkCopy`), so a copy lost in a power cut is found, not trusted.
 */
import { promises as fsp, constants as C, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { createXXHash128 } from 'hash-wasm';
import { fsyncDir } from '../util/fsx.js';
import { give, take } from '../util/reuse.js';
import { KluisError, asKluisError } from '../errors.js';
import { createSealWriter, type PublicKey, type SealWriter } from '../seal/index.js';

export interface AcquireResult {
  sha256: string;
  xxh128: string;
  size: number;
}

export interface CardReadResult extends AcquireResult {
  /** The mtime of the file as it was read (ms). */
  mtimeMs: number;
  /** How many reads it took until one saw the file unchanged (1 when it never changed). */
  attempts: number;
  /** SHA-256 and size of the sealed original, when one was asked for (`pending`: see seal.defer). */
  sealed?: { sha256: string; size: number; pending?: string };
}

export interface CardReadOptions {
  /** The size the inventory listed; only for progress (a stable read of another size is taken). */
  expectSize: number;
  /** Where to write the plaintext working copy (mode 0600), if anywhere. */
  workingCopy?: string | null;
  /** fsync the working copy and its folder before returning (default false, see the module comment). */
  fsyncCopy?: boolean;
  /**
   * Seal the card's bytes to `recipients` into `dst` as they are read; `open` may supply the writer
   * (a sealing thread of its own, pipeline/seal-thread.ts), else it is seal/'s, on this thread.
   */
  seal?: { dst: string; recipients: PublicKey[]; open?: () => SealWriter; defer?: boolean } | null;
  /** Bytes of this file read so far in the current attempt (starts again at 0 on a re-read). */
  onProgress?: (bytesOfFile: number) => void;
  /** Called after each chunk was hashed, sealed and handed to the writes (crash points, tests). */
  onChunk?: (attempt: number) => void;
  /** Whole reads before the file is E_CARD_CHANGED (default 5). */
  maxAttempts?: number;
  /** Pause before the first re-read, doubled for each next one (default 100 ms). */
  retryDelayMs?: number;
  /**
   * Pause before the file is opened (ms), so a test can pull the card or fill the disk between two
   * files; a test seam the pipeline passes on (pipeline/seams.ts), never set in production.
   */
  delayMs?: number;
}

/** Bytes per card read: large sequential reads, as a card reader wants them. */
export const READ_CHUNK = 1 << 20;

/**
 * Reads `src` until one read saw it unchanged, writing what `opts` asks for on the way. Throws
 * KluisError E_CARD_READ / E_CARD_SYMLINK (the card), E_CARD_CHANGED (never settled), E_SPOOL /
 * E_SEAL_IO / ENOSPC-caused errors (the station's disk).
 */
export async function readCardFile(src: string | Buffer, opts: CardReadOptions): Promise<CardReadResult> {
  if (opts.delayMs !== undefined && opts.delayMs > 0) await sleep(opts.delayMs);
  const max = Math.max(1, opts.maxAttempts ?? 5);
  let pause = opts.retryDelayMs ?? 100;
  let why = '';
  for (let attempt = 1; attempt <= max; attempt++) {
    const r = await readOnce(src, opts, attempt);
    if (!('changed' in r)) return { ...r, attempts: attempt };
    why = r.changed;
    if (attempt < max) {
      await sleep(pause);
      pause *= 2;
    }
  }
  throw new KluisError('E_CARD_CHANGED', `${src} kept changing while it was read (${max} reads, the last: ${why})`, {
    hint: 'the camera or a copy may still be writing it; wait until it has finished, then insert the card again (the card is not safe to remove)',
  });
}

type Once = Omit<CardReadResult, 'attempts'> | { changed: string };

function same(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev;
}

async function readOnce(src: string | Buffer, opts: CardReadOptions, attempt: number): Promise<Once> {
  let input: fsp.FileHandle;
  try {
    input = await fsp.open(src, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    throw cardReadError(src, err);
  }
  let out: fsp.FileHandle | null = null;
  let writer: SealWriter | null = null;
  // Three buffers: while chunk k is hashed and sealed, chunk k+1 is being read from the card and
  // chunk k-1's plaintext is being written; a buffer is read into again only after its write ended.
  const bufs = [take(READ_CHUNK), take(READ_CHUNK), take(READ_CHUNK)];
  // Neither a read nor a write in flight ever rejects (its error is kept), so one that fails while
  // the other is awaited is never an unhandled rejection.
  let pendingRead: Promise<{ n: number } | { err: unknown }> | null = null;
  let plainWrite: Promise<void> = Promise.resolve();
  let writeError: unknown;
  const readAt = (buf: Buffer, pos: number): Promise<{ n: number } | { err: unknown }> =>
    input.read(buf, 0, buf.length, pos).then(
      (r) => ({ n: r.bytesRead }),
      (err: unknown) => ({ err }),
    );
  const discard = async (): Promise<void> => {
    if (pendingRead) await pendingRead;
    await plainWrite;
    await writer?.abort();
    writer = null;
    if (out) {
      await out.close().catch(() => undefined);
      out = null;
      await fsp.rm(opts.workingCopy!, { force: true });
    }
  };
  try {
    try {
      out = opts.workingCopy ? await fsp.open(opts.workingCopy, 'w', 0o600) : null;
    } catch (err) {
      throw asKluisError(err, 'E_SPOOL', 'check that the spool folder exists and is writable by the station user');
    }
    if (opts.seal) writer = opts.seal.open ? opts.seal.open() : await createSealWriter(opts.seal.dst, opts.seal.recipients, { defer: opts.seal.defer === true });
    const before = await input.stat();
    const sha = createHash('sha256');
    const xxh = await createXXHash128();
    xxh.init();
    let pos = 0;
    let i = 0;
    pendingRead = readAt(bufs[0]!, 0);
    for (;;) {
      const r = await pendingRead;
      pendingRead = null;
      if ('err' in r) throw cardReadError(src, r.err);
      if (r.n === 0) break;
      if (pos + r.n > before.size) {
        // Longer than when it was opened: this read is already a changed one. Stop here, or a file
        // written faster than it can be read would keep this read going for ever.
        pos += r.n;
        break;
      }
      const chunk = bufs[i]!.subarray(0, r.n);
      const at = pos;
      pos += r.n;
      i = (i + 1) % bufs.length;
      pendingRead = readAt(bufs[i]!, pos);
      sha.update(chunk);
      xxh.update(chunk);
      if (writer) await writer.write(chunk);
      if (out) {
        await plainWrite;
        if (writeError) throw writeError;
        const fh = out;
        plainWrite = writeAt(fh, chunk, at).catch((err: unknown) => {
          writeError = err;
        });
      }
      opts.onProgress?.(pos);
      opts.onChunk?.(attempt);
    }
    await plainWrite;
    if (writeError) throw writeError;
    const after = await input.stat();
    let now: Stats;
    try {
      now = await fsp.lstat(src);
    } catch (err) {
      throw cardReadError(src, err);
    }
    if (pos !== before.size || !same(before, after) || !same(before, now)) {
      const changed =
        pos !== before.size
          ? `${before.size} bytes listed when opened, ${pos} read`
          : now.ino !== before.ino
            ? 'replaced by another file'
            : `size ${before.size} -> ${now.size}, mtime ${new Date(before.mtimeMs).toISOString()} -> ${new Date(now.mtimeMs).toISOString()}`;
      await discard();
      return { changed };
    }
    const sealed = writer ? await writer.finish() : undefined;
    writer = null;
    if (out) {
      const fh: fsp.FileHandle = out;
      if (opts.fsyncCopy) await fh.sync();
      out = null;
      await fh.close();
      if (opts.fsyncCopy) await fsyncDir(path.dirname(opts.workingCopy!));
    }
    return { sha256: sha.digest('hex'), xxh128: xxh.digest('hex'), size: pos, mtimeMs: before.mtimeMs, ...(sealed ? { sealed } : {}) };
  } catch (err) {
    await discard().catch(() => undefined);
    throw asKluisError(err, 'E_CARD_READ');
  } finally {
    await input.close().catch(() => undefined);
    // No read or write into them is under way here (the loop and discard() awaited them).
    for (const b of bufs) give(b);
  }
}

/** Writes all of `chunk` at `position` (a short write continues where it stopped). */
async function writeAt(fh: fsp.FileHandle, chunk: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Copies `src` to `dst` (when given, fsynced) while hashing: one read, which must see exactly
 * `expectSize` bytes (E_CARD_CHANGED otherwise). `onBytes` reports progress in increments.
 * (The benchmark's acquire stage and hashFile; ingest uses readCardFile.)
 */
export async function acquireFile(src: string | Buffer, dst: string | null, expectSize: number, onBytes?: (n: number) => void): Promise<AcquireResult> {
  let last = 0;
  const r = await readCardFile(src, {
    expectSize,
    workingCopy: dst,
    fsyncCopy: true,
    maxAttempts: 1,
    onProgress: (n) => {
      onBytes?.(n - last);
      last = n;
    },
  }).catch((err: unknown) => {
    throw err instanceof KluisError && err.code === 'E_CARD_CHANGED'
      ? new KluisError('E_CARD_CHANGED', `${src} changed while it was read`, { hint: 'wait until the camera or copy has finished, then run again', cause: err })
      : err;
  });
  if (r.size !== expectSize) {
    if (dst) await fsp.rm(dst, { force: true });
    throw new KluisError('E_CARD_CHANGED', `${src} changed while it was read (${expectSize} bytes listed, ${r.size} read)`, {
      hint: 'the file was still being written, or the card was pulled; re-insert the card and run again',
    });
  }
  return { sha256: r.sha256, xxh128: r.xxh128, size: r.size };
}

/** Re-hashes a file without copying it (used by verify --card and wipe). */
export function hashFile(src: string | Buffer, expectSize: number, onBytes?: (n: number) => void): Promise<AcquireResult> {
  return acquireFile(src, null, expectSize, onBytes);
}

function cardReadError(src: string | Buffer, err: unknown): KluisError {
  if (err instanceof KluisError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ELOOP') {
    return new KluisError('E_CARD_SYMLINK', `${src} is a symbolic link; links are never followed`, { cause: err });
  }
  if (code === 'ENOENT') {
    return new KluisError('E_CARD_READ', `${src} disappeared before it could be read`, {
      hint: 'was the card pulled? re-insert it and run again; files already read are kept',
      cause: err,
    });
  }
  return new KluisError('E_CARD_READ', `cannot read ${src} (${code ?? 'error'})`, {
    hint: code === 'EACCES' ? 'the station user may not read this file; check its permissions' : 'check the card and the reader; re-insert and run again',
    cause: err,
  });
}
