/**
 * Files as the streaming contract's ByteSource and ByteSink, for callers that hold paths (the
 * file-based `sanitizeFile`, tests, tools). A source read returns exactly the bytes asked for or
 * throws E_SANITIZE_TRUNCATED; a sink writes in order to a new file (never over an existing one).
 * Both must be closed by their owner.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../errors.js';
import type { ByteSink, ByteSource } from './types.js';

export interface ClosableSource extends ByteSource {
  close(): Promise<void>;
}

export interface ClosableSink extends ByteSink {
  /** Bytes written so far. */
  readonly written: number;
  close(): Promise<void>;
}

export function truncatedError(position: number, length: number, size: number): KluisError {
  return new KluisError('E_SANITIZE_TRUNCATED', `the file ends at byte ${size}, before the ${length} byte(s) at ${position} it should hold`, {
    hint: 'the file is shorter than its own structure says (cut short, or changed while it was read); it is not sanitized',
  });
}

/** A file opened read-only, its size taken once at opening. */
export async function openFileSource(file: string): Promise<ClosableSource> {
  const fh = await fsp.open(file, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (err) {
    await fh.close();
    throw err;
  }
  const readInto = async (position: number, target: Buffer): Promise<void> => {
    const length = target.length;
    if (position < 0 || position + length > size) throw truncatedError(position, length, size);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(target, got, length - got, position + got);
      if (bytesRead === 0) throw truncatedError(position + got, length - got, size);
      got += bytesRead;
    }
  };
  return {
    size,
    async read(position: number, length: number): Promise<Buffer> {
      if (length < 0) throw truncatedError(position, length, size);
      const buf = Buffer.allocUnsafe(length);
      await readInto(position, buf);
      return buf;
    },
    readInto,
    close: () => fh.close(),
  };
}

/** A new file (created exclusively, mode 0600) that receives the bytes in order. */
export async function createFileSink(file: string): Promise<ClosableSink> {
  const fh = await fsp.open(file, 'wx', 0o600);
  let written = 0;
  return {
    get written() {
      return written;
    },
    async write(chunk: Buffer): Promise<void> {
      let done = 0;
      while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done, written + done)).bytesWritten;
      written += chunk.length;
    },
    close: () => fh.close(),
  };
}
