/**
 * Two small helpers the evidence readers share: read a stream whole but never past a cap (a
 * manifest or record on a target is not trusted to be small), and run async work over a list
 * with at most n at a time.
 */
import type { Readable } from 'node:stream';
import { KluisError, type ErrorCode } from '../errors.js';

/** The stream's bytes; past `cap` bytes it is destroyed and `code` is thrown. */
export async function readCapped(s: Readable, cap: number, what: string, code: ErrorCode = 'E_MANIFEST_SHAPE'): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of s as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > cap) {
      s.destroy();
      throw new KluisError(code, `${what} is larger than ${cap} bytes`, { hint: 'it is not what kluis stored there; keep it for investigation' });
    }
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/** Runs `fn` over `items`, at most `n` at a time; rejects with the first error. */
export async function eachLimited<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}
