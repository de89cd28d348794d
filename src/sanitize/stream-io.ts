/**
 * Byte plumbing for sanitizeStream: reading a whole (bounded) input from a ByteSource, handing an
 * output to a ByteSink in order, and short-lived scratch files. Promises: a source that gives
 * fewer bytes than asked is E_SANITIZE_TRUNCATED, never a short picture; scratch files are created
 * new (never over an existing file), 0600, under an absolute path, and `dispose` removes every one
 * it made, whatever happened in between. It never writes outside the scratch folder it is given.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import type { ByteSink, ByteSource } from './types.js';

/** Reads are asked in pieces of at most this size; a whole picture fits one read below it. */
const READ_PIECE = 64 << 20;
/** Output is handed to the sink in pieces of at most this size (views, not copies). */
const WRITE_PIECE = 4 << 20;

function shortRead(position: number, want: number, got: number): KluisError {
  return new KluisError('E_SANITIZE_TRUNCATED', `the input gave ${got} bytes at ${position} where ${want} were asked`, {
    hint: 'the spool copy of the file is shorter than acquired; the file is withheld and the sealed original keeps it',
  });
}

function outside(position: number, length: number, size: number): KluisError {
  return new KluisError('E_SANITIZE_TRUNCATED', `a read of ${length} bytes at ${position} goes past the end of the input (${size} bytes)`, {
    hint: 'the file is cut short or its structure points outside it',
  });
}

/**
 * All of `src` in one buffer; `tooLarge` is thrown when it is over `max` bytes. With `into`, the
 * bytes are read into the buffer it gives for the size (util/reuse.ts), where the source can.
 */
export async function readWhole(src: ByteSource, max: number, tooLarge: () => KluisError, into?: (size: number) => Buffer): Promise<Buffer> {
  if (src.size > max) throw tooLarge();
  if (into && src.readInto && src.size > 0) {
    const all = into(src.size);
    await src.readInto(0, all);
    return all;
  }
  if (src.size <= READ_PIECE) {
    const b = src.size === 0 ? Buffer.alloc(0) : await src.read(0, src.size);
    if (b.length !== src.size) throw shortRead(0, src.size, b.length);
    return b;
  }
  const all = Buffer.allocUnsafe(src.size);
  for (let at = 0; at < src.size; at += READ_PIECE) {
    const want = Math.min(READ_PIECE, src.size - at);
    const b = await src.read(at, want);
    if (b.length !== want) throw shortRead(at, want, b.length);
    b.copy(all, at);
  }
  return all;
}

/** Hands `bytes` to `sink` in order, in pieces that are views of `bytes`. */
export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < buf.length; at += WRITE_PIECE) await sink.write(buf.subarray(at, Math.min(buf.length, at + WRITE_PIECE)));
}

/** Short-lived files in one scratch folder; `dispose` removes them all. */
export class Scratch {
  private readonly dir: string;
  private readonly made: string[] = [];

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** A new absolute path in the folder (registered for removal; nothing is created yet). */
  path(tag: string): string {
    const p = path.join(this.dir, `kluis-${randomBytes(8).toString('hex')}.${tag}`);
    this.made.push(p);
    return p;
  }

  /** A new 0600 file holding `bytes`. */
  async write(tag: string, bytes: Uint8Array): Promise<string> {
    const p = this.path(tag);
    await fsp.writeFile(p, bytes, { flag: 'wx', mode: 0o600 });
    return p;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.made.map((p) => fsp.rm(p, { force: true })));
    this.made.length = 0;
  }
}

/** A file as a ByteSource (sanitizeFile, the pipeline's working copy), with `readInto` and its `path`; close it when done. */
export async function openFileSource(file: string): Promise<ByteSource & { readonly path: string; readInto(position: number, target: Buffer): Promise<void>; close(): Promise<void> }> {
  const fh = await fsp.open(file, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (err) {
    await fh.close();
    throw err;
  }
  const readInto = async (position: number, target: Buffer): Promise<void> => {
    // A structure pointing outside the file is refused before any memory is taken for it.
    if (!Number.isSafeInteger(position) || position < 0 || position + target.length > size) throw outside(position, target.length, size);
    let got = 0;
    while (got < target.length) {
      const { bytesRead } = await fh.read(target, got, target.length - got, position + got);
      if (bytesRead === 0) throw shortRead(position, target.length, got);
      got += bytesRead;
    }
  };
  return {
    size,
    path: file,
    async read(position: number, length: number): Promise<Buffer> {
      if (!Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(position) || position < 0 || position + length > size) throw outside(position, length, size);
      const b = Buffer.allocUnsafe(length);
      await readInto(position, b);
      return b;
    },
    readInto,
    close: () => fh.close(),
  };
}

/** A new 0600 file as a ByteSink; close it when done (the caller fsyncs and renames). */
export async function openFileSink(file: string): Promise<ByteSink & { close(): Promise<void> }> {
  const fh = await fsp.open(file, 'wx', 0o600);
  return {
    async write(chunk: Buffer): Promise<void> {
      let done = 0;
      while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
    },
    close: () => fh.close(),
  };
}

/** Copies all of `src` into `file` (a new 0600 file), in pieces. */
export async function copySourceToFile(src: ByteSource, file: string): Promise<void> {
  const sink = await openFileSink(file);
  try {
    for (let at = 0; at < src.size; at += WRITE_PIECE) {
      const want = Math.min(WRITE_PIECE, src.size - at);
      const b = await src.read(at, want);
      if (b.length !== want) throw shortRead(at, want, b.length);
      await sink.write(b);
    }
  } finally {
    await sink.close();
  }
}
