/**
 * The sanitizer's input as the pipeline hands it over: positional reads of the plaintext working
 * copy in the spool (ByteSource, SANITIZE-API.md). The copy was just written by the card read, so
 * its pages are normally still in the page cache. A read past the end, or a copy that got shorter
 * under it, is E_SANITIZE_TRUNCATED; nothing here ever writes.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../errors.js';
import type { ByteSource } from '../sanitize/index.js';

export class FileSource implements ByteSource {
  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly fh: fsp.FileHandle,
  ) {}

  static async open(file: string): Promise<FileSource> {
    const fh = await fsp.open(file, 'r');
    try {
      const st = await fh.stat();
      return new FileSource(file, st.size, fh);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(Number.isSafeInteger(length) && length > 0 ? length : 0);
    if (buf.length !== length) this.outside(position, length);
    await this.readInto(position, buf);
    return buf;
  }

  /** The same read into the caller's buffer (exactly target.length bytes), so it can be reused. */
  async readInto(position: number, target: Buffer): Promise<void> {
    const length = target.length;
    if (!Number.isSafeInteger(position) || position < 0 || position + length > this.size) this.outside(position, length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh.read(target, got, length - got, position + got);
      if (bytesRead === 0) {
        throw new KluisError('E_SANITIZE_TRUNCATED', `the input ended at ${position + got} bytes, ${this.size} were listed`, {
          hint: 'the spool copy changed while it was read; run the same command again',
        });
      }
      got += bytesRead;
    }
  }

  private outside(position: number, length: number): never {
    throw new KluisError('E_SANITIZE_TRUNCATED', `a read of ${length} bytes at ${position} goes past the end of the input (${this.size} bytes)`, {
      hint: 'the file is cut short or its structure points outside it',
    });
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}
