/**
 * File helpers shared by sealing (stream.ts) and opening (open.ts): batched reads and writes of
 * whole chunks, and the temp name a sealed file is written under. No cryptography here.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CHUNK_SIZE } from './format.js';

/** Bytes per read/write system call: whole chunks, so that few awaits carry many chunks. */
export const IO_BATCH = 16 * CHUNK_SIZE;

/** Writes every buffer, in order, however many system calls it takes. */
export async function writeAll(fh: fsp.FileHandle, bufs: Uint8Array[]): Promise<void> {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  const { bytesWritten } = await fh.writev(bufs);
  if (bytesWritten < total) {
    const rest = Buffer.concat(bufs).subarray(bytesWritten);
    let off = 0;
    while (off < rest.length) off += (await fh.write(rest, off, rest.length - off)).bytesWritten;
  }
}

/**
 * A temp name in the destination's folder. It never carries the destination's own name: a
 * card name may already be the longest a file system allows (255 bytes), and a longer temp name
 * failed with ENAMETOOLONG (an export stopped on one such file).
 */
export function tempBeside(dst: string): string {
  return path.join(path.dirname(dst), `.kluis-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

/** Reads until `buf` is full or the file ends; the number of bytes read. */
export async function readFull(fh: fsp.FileHandle, buf: Buffer): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
