/**
 * Streaming seal and open on top of format.ts. Memory stays bounded by a few chunks whatever the
 * input size. Opening emits each chunk only after its own tag verified and errors (KluisError)
 * on any failure, including a cut at a chunk boundary; files reach their final name only after
 * the last chunk verified (temp file beside the destination, fsync, rename, fsync directory).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { KluisError, asKluisError } from '../errors.js';
import { fsyncDir } from '../util/fsx.js';
import { partName, trackTemp } from '../util/plain-temp.js';
import type { PublicKey, SecretKey } from './keys.js';
import {
  CHUNK_CT_SIZE,
  CHUNK_SIZE,
  FIXED_HEAD,
  Opener,
  Sealer,
  checkIdentities,
  parseFixedHead,
  type RandomFn,
} from './format.js';
import { getPrimitives, type ImplName } from './primitives.js';

export interface SealOptions {
  random?: RandomFn;
  impl?: ImplName;
}

export interface OpenOptions {
  impl?: ImplName;
}

/** Bytes per read/write system call: whole chunks, so that few awaits carry many chunks. */
const IO_BATCH = 16 * CHUNK_SIZE;
/** The sealed form of IO_BATCH: what a SealWriter writes per system call. */
const CT_BATCH = 16 * CHUNK_CT_SIZE;

async function writeAll(fh: fsp.FileHandle, bufs: Uint8Array[]): Promise<void> {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  const { bytesWritten } = await fh.writev(bufs);
  if (bytesWritten < total) {
    const rest = Buffer.concat(bufs).subarray(bytesWritten);
    let off = 0;
    while (off < rest.length) off += (await fh.write(rest, off, rest.length - off)).bytesWritten;
  }
}

const defaultRandom: RandomFn = (n) => new Uint8Array(randomBytes(n));

/**
 * A temp name in the destination's folder. It never carries the destination's own name: a
 * card name may already be the longest a file system allows (255 bytes), and a longer temp name
 * failed with ENAMETOOLONG (an export stopped on one such file).
 */
function tempBeside(dst: string): string {
  return path.join(path.dirname(dst), `.kluis-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

async function readFull(fh: fsp.FileHandle, buf: Buffer): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** Seals a whole in-memory plaintext. */
export function sealBytes(plain: Uint8Array, recipients: PublicKey[], opts: SealOptions = {}): Uint8Array {
  const sealer = new Sealer(recipients, getPrimitives(opts.impl), opts.random ?? defaultRandom);
  const parts: Uint8Array[] = [sealer.header];
  if (plain.length === 0) parts.push(sealer.seal(plain, true));
  for (let off = 0; off < plain.length; off += CHUNK_SIZE) {
    const end = Math.min(off + CHUNK_SIZE, plain.length);
    parts.push(sealer.seal(plain.subarray(off, end), end === plain.length));
  }
  return new Uint8Array(Buffer.concat(parts));
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

/**
 * Streams `src` to `dst` sealed; returns SHA-256 (hex) and size of the ciphertext. The next batch
 * is read while this one is sealed and written (createSealWriter, reusing its buffers).
 */
export async function sealFile(
  src: string,
  dst: string,
  recipients: PublicKey[],
  opts: SealOptions = {},
): Promise<{ sha256: string; size: number }> {
  let input: fsp.FileHandle;
  try {
    input = await fsp.open(src, 'r');
  } catch (err) {
    throw asKluisError(err, 'E_SEAL_IO');
  }
  let writer: SealWriter | undefined;
  try {
    writer = await createSealWriter(dst, recipients, opts);
    const bufs = [Buffer.allocUnsafe(IO_BATCH), Buffer.allocUnsafe(IO_BATCH)];
    let idx = 0;
    let next = readFull(input, bufs[0]!);
    for (;;) {
      const n = await next;
      if (n === 0) break;
      const cur = bufs[idx]!;
      idx ^= 1;
      next = readFull(input, bufs[idx]!);
      // Never left unhandled: awaited on the next turn, or caught below when write throws first.
      next.catch(() => undefined);
      await writer.write(cur.subarray(0, n));
    }
    const r = await writer.finish();
    writer = undefined;
    return r;
  } catch (err) {
    await writer?.abort();
    throw asKluisError(err, 'E_SEAL_IO');
  } finally {
    await input.close().catch(() => undefined);
  }
}

/**
 * The file loop of sealFile, parameterised by the chunk function so the benchmark can run other
 * ciphers through exactly the same I/O. Writes `header` then `sealChunk` of each 64 KiB chunk
 * (the last flagged) to a temp file beside `dst`, fsyncs it, renames it to `dst`, fsyncs the
 * folder. On failure the temp file is removed and `dst` is untouched.
 */
export async function sealChunkedFile(
  src: string,
  dst: string,
  header: Uint8Array,
  sealChunk: (plain: Uint8Array, last: boolean) => Uint8Array,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const tmp = tempBeside(dst);
  let input: fsp.FileHandle | undefined;
  let output: fsp.FileHandle | undefined;
  let pendingWrite: Promise<void> = Promise.resolve();
  try {
    input = await fsp.open(src, 'r');
    output = await fsp.open(tmp, 'wx', 0o644);
    const out = output;
    const emit = (bufs: Uint8Array[]): Promise<void> => {
      for (const b of bufs) {
        hash.update(b);
        size += b.length;
      }
      return writeAll(out, bufs);
    };
    pendingWrite = emit([header]);
    // Reads come in batches of whole chunks, so chunk boundaries line up with batch boundaries.
    // The next batch is read while this one is sealed and the previous one written; whether the
    // last chunk of a full batch is the file's last chunk is known once the next read returns.
    const bufs = [Buffer.allocUnsafe(IO_BATCH), Buffer.allocUnsafe(IO_BATCH)];
    let idx = 0;
    let curLen = await readFull(input, bufs[0]!);
    for (;;) {
      const cur = bufs[idx]!;
      const nextRead = curLen === IO_BATCH ? readFull(input, bufs[idx ^ 1]!) : Promise.resolve(0);
      const chunks = curLen === 0 ? 1 : Math.ceil(curLen / CHUNK_SIZE);
      const outs: Uint8Array[] = [];
      for (let c = 0; c < chunks - 1; c++) outs.push(sealChunk(cur.subarray(c * CHUNK_SIZE, (c + 1) * CHUNK_SIZE), false));
      const nextLen = await nextRead;
      const last = nextLen === 0;
      outs.push(sealChunk(cur.subarray((chunks - 1) * CHUNK_SIZE, curLen), last));
      await pendingWrite;
      pendingWrite = emit(outs);
      if (last) break;
      idx ^= 1;
      curLen = nextLen;
    }
    await pendingWrite;
    await output.sync();
    await output.close();
    output = undefined;
    await fsp.rename(tmp, dst);
    await fsyncDir(path.dirname(dst));
  } catch (err) {
    await pendingWrite.catch(() => undefined);
    await output?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw asKluisError(err, 'E_SEAL_IO');
  } finally {
    await input?.close().catch(() => undefined);
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * A sealed file written as its plaintext arrives: the sink the pipeline hands to the card reader
 * (the original) and to the sanitizer (the sanitized stream), so no plaintext file has to be read
 * again to seal it. Memory stays bounded and fixed: one 64 KiB chunk held back (the last chunk is
 * known only at `finish`) and two ciphertext batches of 16 chunks, one filled while the other is
 * written.
 * The ciphertext SHA-256 is computed on the bytes as they are written. `finish` fsyncs the temp
 * file beside `dst`, renames it to `dst` and fsyncs the folder; `abort` removes the temp file and
 * never touches `dst`. Calls must not overlap (await each write before the next).
 */
export interface SealWriter {
  /** Seals `chunk` (any length). The caller may reuse `chunk` once the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<{ sha256: string; size: number }>;
  abort(): Promise<void>;
}

export async function createSealWriter(dst: string, recipients: PublicKey[], opts: SealOptions = {}): Promise<SealWriter> {
  const sealer = new Sealer(recipients, getPrimitives(opts.impl), opts.random ?? defaultRandom);
  const tmp = tempBeside(dst);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', 0o644);
  } catch (err) {
    throw asKluisError(err, 'E_SEAL_IO');
  }
  const out = fh;
  const hash = createHash('sha256');
  let size = 0;
  const stage = Buffer.allocUnsafe(CHUNK_SIZE);
  let staged = 0;
  // Ciphertext is sealed straight into one of two batch buffers: one being filled while the
  // other is written. Reusing them (instead of a new buffer per chunk) keeps the memory and the
  // page faults of a multi-gigabyte file at those of one batch.
  const batches = [Buffer.allocUnsafe(CT_BATCH), Buffer.allocUnsafe(CT_BATCH)];
  let cur = 0;
  let used = 0;
  let head: Uint8Array | null = sealer.header;
  let inflight: Promise<void> = Promise.resolve();
  let writeError: unknown;
  let closed = false;

  const flush = async (): Promise<void> => {
    await inflight;
    if (writeError) throw writeError;
    const bufs: Uint8Array[] = [];
    if (head) bufs.push(head);
    if (used > 0) bufs.push(batches[cur]!.subarray(0, used));
    head = null;
    cur ^= 1;
    used = 0;
    if (bufs.length === 0) return;
    // Not awaited: the next chunks are sealed (into the other buffer) while this batch is
    // written. A failed write is kept and thrown at the next flush, never left unhandled.
    inflight = writeAll(out, bufs).catch((err: unknown) => {
      writeError = err;
    });
  };
  const sealChunk = async (plain: Uint8Array, last: boolean): Promise<void> => {
    const n = plain.length + CHUNK_CT_SIZE - CHUNK_SIZE;
    if (used + n > CT_BATCH) await flush();
    const ct = batches[cur]!.subarray(used, used + n);
    sealer.sealInto(ct, plain, last);
    hash.update(ct);
    size += n;
    used += n;
  };
  const cleanup = async (): Promise<void> => {
    await inflight;
    if (!closed) {
      closed = true;
      await out.close().catch(() => undefined);
    }
    await fsp.rm(tmp, { force: true });
  };
  hash.update(sealer.header);
  size += sealer.header.length;

  return {
    async write(chunk: Uint8Array): Promise<void> {
      try {
        let off = 0;
        while (off < chunk.length) {
          if (staged === CHUNK_SIZE) {
            // More bytes follow, so the held-back chunk was not the last one.
            await sealChunk(stage, false);
            staged = 0;
          }
          if (staged === 0 && chunk.length - off > CHUNK_SIZE) {
            // A whole chunk with more after it in this write: seal it in place, without a copy.
            await sealChunk(chunk.subarray(off, off + CHUNK_SIZE), false);
            off += CHUNK_SIZE;
            continue;
          }
          const n = Math.min(CHUNK_SIZE - staged, chunk.length - off);
          stage.set(chunk.subarray(off, off + n), staged);
          staged += n;
          off += n;
        }
      } catch (err) {
        throw asKluisError(err, 'E_SEAL_IO');
      }
    },
    async finish(): Promise<{ sha256: string; size: number }> {
      try {
        await sealChunk(stage.subarray(0, staged), true);
        await flush();
        await inflight;
        if (writeError) throw writeError;
        await out.sync();
        closed = true;
        await out.close();
        await fsp.rename(tmp, dst);
        await fsyncDir(path.dirname(dst));
      } catch (err) {
        await cleanup().catch(() => undefined);
        throw asKluisError(err, 'E_SEAL_IO');
      }
      return { sha256: hash.digest('hex'), size };
    },
    async abort(): Promise<void> {
      await cleanup().catch(() => undefined);
    },
  };
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
