/**
 * Opening sealed data on top of format.ts: in memory (openBytes), as a stream (openStream) and
 * into a file (openToFile). It emits each chunk only after its own tag verified and errors
 * (KluisError) on any failure, including a cut at a chunk boundary; a file reaches its final
 * name only after the last chunk verified. Memory stays bounded by a few chunks.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { KluisError, asKluisError } from '../errors.js';
import { fsyncDir } from '../util/fsx.js';
import { partName, trackTemp } from '../util/plain-temp.js';
import type { SecretKey } from './keys.js';
import { CHUNK_CT_SIZE, CHUNK_SIZE, FIXED_HEAD, Opener, checkIdentities, parseFixedHead } from './format.js';
import { IO_BATCH, writeAll } from './file-io.js';
import { getPrimitives, type ImplName } from './primitives.js';

export interface OpenOptions {
  impl?: ImplName;
}

/** Opens a whole in-memory sealed file. */
export function openBytes(sealed: Uint8Array, identities: SecretKey[], opts: OpenOptions = {}): Uint8Array {
  checkIdentities(identities);
  const total = parseFixedHead(sealed.subarray(0, FIXED_HEAD));
  if (sealed.length < total) throw new KluisError('E_SEAL_HEADER', 'kluis sealed header is cut short');
  const opener = Opener.fromHeader(sealed.subarray(0, total), identities, getPrimitives(opts.impl));
  const parts: Uint8Array[] = [];
  let off = total;
  while (sealed.length - off > CHUNK_CT_SIZE) {
    parts.push(opener.openMiddle(sealed.subarray(off, off + CHUNK_CT_SIZE)));
    off += CHUNK_CT_SIZE;
  }
  parts.push(opener.openLast(sealed.subarray(off)));
  return new Uint8Array(Buffer.concat(parts));
}

/** A FIFO of byte buffers that hands out exact-length slices without re-copying everything. */
class ByteQueue {
  private bufs: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.bufs.push(b);
    this.length += b.length;
  }

  /** A copy of the first min(n, length) bytes, leaving them queued. */
  peek(n: number): Buffer {
    const m = Math.min(n, this.length);
    const out = this.take(m);
    this.bufs.unshift(out);
    this.length += m;
    return Buffer.from(out);
  }

  take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const head = this.bufs[0]!;
      const want = n - got;
      if (head.length <= want) {
        head.copy(out, got);
        got += head.length;
        this.bufs.shift();
      } else {
        head.copy(out, got, 0, want);
        this.bufs[0] = head.subarray(want);
        got += want;
      }
    }
    this.length -= n;
    return out;
  }
}

async function* openChunks(src: Readable, identities: SecretKey[], opts: OpenOptions): AsyncGenerator<Buffer> {
  const prim = getPrimitives(opts.impl);
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const q = new ByteQueue();
  let eof = false;
  const fill = async (n: number): Promise<void> => {
    while (!eof && q.length < n) {
      const r = await it.next();
      if (r.done) eof = true;
      else q.push(typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
    }
  };
  try {
    await fill(FIXED_HEAD);
    const headLen = parseFixedHead(q.peek(FIXED_HEAD));
    await fill(headLen);
    if (q.length < headLen) throw new KluisError('E_SEAL_HEADER', 'kluis sealed header is cut short');
    const opener = Opener.fromHeader(q.take(headLen), identities, prim);
    for (;;) {
      await fill(CHUNK_CT_SIZE + 1);
      if (q.length > CHUNK_CT_SIZE) {
        yield Buffer.from(opener.openMiddle(q.take(CHUNK_CT_SIZE)));
      } else {
        yield Buffer.from(opener.openLast(q.take(q.length)));
        return;
      }
    }
  } finally {
    if (!eof) await it.return?.();
  }
}

/**
 * A stream of verified plaintext chunks. Bad identities (none, or not recipient keys) throw at
 * once; every failure of the sealed data itself arrives as a KluisError 'error' event.
 */
export function openStream(src: Readable, identities: SecretKey[], opts: OpenOptions = {}): Readable {
  checkIdentities(identities);
  return Readable.from(openChunks(src, identities, opts), { objectMode: false, highWaterMark: CHUNK_SIZE });
}

/**
 * Opens a sealed file or stream into `dst`: a plaintext temp file (mode 0600, created with
 * O_EXCL, a recognisable name from util/plain-temp.ts) beside it or in `tempDir` (a folder on
 * the same file system), renamed only after the last chunk verified; on any failure, and on
 * SIGINT/SIGTERM, the temp is removed and `dst` is left untouched. Returns SHA-256 (hex) and size
 * of the plaintext. An existing `dst` is replaced (rename replaces a link, never follows it).
 */
export async function openToFile(
  src: string | Readable,
  dst: string,
  identities: SecretKey[],
  opts: OpenOptions & { tempDir?: string } = {},
): Promise<{ sha256: string; size: number }> {
  checkIdentities(identities);
  const input = typeof src === 'string' ? createReadStream(src, { highWaterMark: IO_BATCH }) : src;
  const tmp = path.join(opts.tempDir ?? path.dirname(dst), partName());
  const untrack = trackTemp(tmp);
  const hash = createHash('sha256');
  let size = 0;
  let out: fsp.FileHandle | undefined;
  let pendingWrite: Promise<void> = Promise.resolve();
  try {
    out = await fsp.open(tmp, 'wx', 0o600);
    const fh = out;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for await (const chunk of openStream(input, identities, opts)) {
      const b = chunk as Buffer;
      hash.update(b);
      size += b.length;
      batch.push(b);
      batchBytes += b.length;
      if (batchBytes >= IO_BATCH) {
        await pendingWrite;
        pendingWrite = writeAll(fh, batch);
        batch = [];
        batchBytes = 0;
      }
    }
    await pendingWrite;
    if (batch.length > 0) await writeAll(fh, batch);
    await out.sync();
    await out.close();
    out = undefined;
    await fsp.rename(tmp, dst);
    untrack();
    await fsyncDir(path.dirname(dst));
  } catch (err) {
    await pendingWrite.catch(() => undefined);
    await out?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    untrack();
    if (typeof src === 'string') input.destroy();
    const e = err as NodeJS.ErrnoException;
    if (e && e.code === 'ENOENT' && typeof src === 'string' && e.path === src) {
      throw new KluisError('E_INPUT_MISSING', `cannot read sealed file ${src}`, { hint: 'check the path', cause: err });
    }
    throw asKluisError(err, 'E_SEAL_IO');
  }
  return { sha256: hash.digest('hex'), size };
}
