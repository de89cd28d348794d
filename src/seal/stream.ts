/**
 * Streaming seal on top of format.ts: in-memory (sealBytes), file to file (sealFile) and as the
 * plaintext arrives (createSealWriter). Memory stays bounded by a few chunks whatever the input
 * size; a sealed file reaches its final name only when complete (temp file beside the
 * destination, fsync, rename, fsync directory). Opening is open.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { asKluisError } from '../errors.js';
import { fsyncDir, fsyncFile } from '../util/fsx.js';
import { give, take } from '../util/reuse.js';
import type { PublicKey } from './keys.js';
import { CHUNK_CT_SIZE, CHUNK_SIZE, Sealer, type RandomFn } from './format.js';
import { IO_BATCH, readFull, tempBeside, writeAll } from './file-io.js';
import { getPrimitives, type ImplName } from './primitives.js';

export interface SealOptions {
  random?: RandomFn;
  impl?: ImplName;
  /**
   * SealWriter only: `finish` writes and closes the sealed file but leaves it under its temporary
   * name beside `dst`, not yet fsynced, and says where (`pending`); the caller makes it durable and
   * puts it in place with `publishSealed(pending, dst)`.
   */
  defer?: boolean;
}

/** What a SealWriter's finish gives: the sealed file's SHA-256 and size (and where it waits, when deferred). */
export interface SealedFile {
  sha256: string;
  size: number;
  /** With `defer`: the temporary file holding the sealed bytes, for publishSealed. */
  pending?: string;
}

/** The sealed form of IO_BATCH: what a SealWriter writes per system call. */
const CT_BATCH = 16 * CHUNK_CT_SIZE;

const defaultRandom: RandomFn = (n) => new Uint8Array(randomBytes(n));

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
 * The ciphertext SHA-256 is computed on the bytes as they are written. `finish` (unless `defer`) fsyncs the temp
 * file beside `dst`, renames it to `dst` and fsyncs the folder; `abort` removes the temp file and
 * never touches `dst`. Calls must not overlap (await each write before the next).
 */
export interface SealWriter {
  /** Seals `chunk` (any length). The caller may reuse `chunk` once the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<SealedFile>;
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
  const stage = take(CHUNK_SIZE);
  let staged = 0;
  // Ciphertext is sealed straight into one of two batch buffers: one being filled while the
  // other is written. Reusing them (instead of a new buffer per chunk) keeps the memory and the
  // page faults of a multi-gigabyte file at those of one batch.
  const batches = [take(CT_BATCH), take(CT_BATCH)];
  let released = false;
  // Back for the next file once no write can still read them (util/reuse.ts).
  const release = (): void => {
    if (released) return;
    released = true;
    for (const b of [stage, ...batches]) give(b);
  };
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
    release();
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
    async finish(): Promise<SealedFile> {
      try {
        await sealChunk(stage.subarray(0, staged), true);
        await flush();
        await inflight;
        release();
        if (writeError) throw writeError;
        if (opts.defer) {
          closed = true;
          await out.close();
          return { sha256: hash.digest('hex'), size, pending: tmp };
        }
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

/**
 * Makes a deferred sealed file (SealOptions.defer) durable and puts it in place: fsyncs `pending`,
 * renames it to `dst` and fsyncs the folder. On a failure `pending` is removed and `dst` untouched.
 */
export async function publishSealed(pending: string, dst: string): Promise<void> {
  try {
    await fsyncFile(pending);
    await fsp.rename(pending, dst);
    await fsyncDir(path.dirname(dst));
  } catch (err) {
    await fsp.rm(pending, { force: true }).catch(() => undefined);
    throw asKluisError(err, 'E_SEAL_IO');
  }
}
