/**
 * Acquire: reads a card file exactly once, hashing it (SHA-256, and xxh128 for ASC MHL) while
 * copying it into the station's private spool. The card file is opened read-only with
 * O_NOFOLLOW; nothing is ever written to the card. The copy is fsynced before the result is
 * returned, so a journal entry written after it can trust the spool file.
 *
 * A file that changes size while being read (still being written, truncated, card pulled) is a
 * failure with E_CARD_READ / E_CARD_CHANGED, and the partial copy is removed.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { createXXHash128 } from 'hash-wasm';
import { fsyncDir } from '../util/fsx.js';
import { KluisError, asKluisError } from '../errors.js';

export interface AcquireResult {
  sha256: string;
  xxh128: string;
  size: number;
}

const BUF = 1 << 20;

/**
 * Copies `src` to `dst` (when given) while hashing. `expectSize` is the size the inventory saw.
 * `onBytes` reports progress.
 */
export async function acquireFile(
  src: string | Buffer,
  dst: string | null,
  expectSize: number,
  onBytes?: (n: number) => void,
): Promise<AcquireResult> {
  // TEST ONLY: KLUIS_TEST_ACQUIRE_DELAY_MS pauses before each file is opened, so tests can pull
  // the card or fill the disk between two files. Unset in production (the unit file never sets it).
  const delay = Number(process.env.KLUIS_TEST_ACQUIRE_DELAY_MS ?? 0);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  let input;
  try {
    input = await fsp.open(src, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    throw cardReadError(src, err);
  }
  let out: Awaited<ReturnType<typeof fsp.open>> | null = null;
  try {
    out = dst ? await fsp.open(dst, 'w', 0o600) : null;
  } catch (err) {
    await input.close().catch(() => undefined);
    throw asKluisError(err, 'E_SPOOL', 'check that the spool folder exists and is writable by the station user');
  }
  const sha = createHash('sha256');
  const xxh = await createXXHash128();
  xxh.init();
  let size = 0;
  // Two buffers: the spool write of one chunk runs while the next is read from the card (the card
  // read and the spool write overlap instead of taking turns). A buffer is refilled only after
  // its own write finished: each write is awaited before the next one starts.
  const bufs = [Buffer.allocUnsafe(BUF), Buffer.allocUnsafe(BUF)];
  let idx = 0;
  // A pending write never rejects (its error is kept and thrown when it is awaited), so a write
  // that fails during the next read is not an unhandled rejection.
  let pending: Promise<void> | null = null;
  let writeError: unknown = null;
  const settle = async (): Promise<void> => {
    if (pending) await pending;
    pending = null;
    if (writeError) throw writeError;
  };
  try {
    for (;;) {
      const buf = bufs[idx]!;
      let n: number;
      try {
        ({ bytesRead: n } = await input.read(buf, 0, BUF, size));
      } catch (err) {
        throw cardReadError(src, err);
      }
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      sha.update(chunk);
      xxh.update(chunk);
      if (out) {
        await settle();
        pending = writeAt(out, chunk, size).catch((err: unknown) => {
          writeError = err;
        });
      }
      size += n;
      idx ^= 1;
      onBytes?.(n);
    }
    await settle();
    if (size !== expectSize) {
      throw new KluisError('E_CARD_CHANGED', `${src} changed while it was read (${expectSize} bytes listed, ${size} read)`, {
        hint: 'the file was still being written, or the card was pulled; re-insert the card and run again',
      });
    }
    const st = await input.stat();
    if (st.size !== size) {
      throw new KluisError('E_CARD_CHANGED', `${src} changed size while it was read`, {
        hint: 'wait until the camera or copy has finished, then run again',
      });
    }
    if (out) {
      await out.sync();
      // The name must be durable too, or a power cut could lose a copy the journal calls acquired.
      await fsyncDir(path.dirname(dst!));
    }
  } catch (err) {
    if (pending) await pending;
    if (out) {
      await out.close().catch(() => undefined);
      await fsp.rm(dst!, { force: true });
    }
    await input.close().catch(() => undefined);
    throw asKluisError(err, 'E_CARD_READ');
  }
  if (out) await out.close();
  await input.close();
  return { sha256: sha.digest('hex'), xxh128: xxh.digest('hex'), size };
}

/** Writes all of `chunk` at `position` (a short write continues where it stopped). */
async function writeAt(fh: fsp.FileHandle, chunk: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

/** Re-hashes a file without copying it (used by verify --card and for withheld sidecars). */
export function hashFile(src: string | Buffer, expectSize: number, onBytes?: (n: number) => void): Promise<AcquireResult> {
  return acquireFile(src, null, expectSize, onBytes);
}

function cardReadError(src: string | Buffer, err: unknown): KluisError {
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
