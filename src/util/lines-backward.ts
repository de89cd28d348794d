/**
 * Reads a text file's lines from the last to the first, a block at a time, so finding the recent
 * lines of a long log costs what those lines cost, not the whole file. Lines are split on bytes
 * (a UTF-8 character cut by a block edge is joined before decoding). An unterminated last line
 * is yielded as it is; the empty string after a final newline is not.
 */
import { promises as fsp } from 'node:fs';

export async function* linesBackward(file: string, opts: { size?: number; block?: number } = {}): AsyncGenerator<string> {
  const fh = await fsp.open(file, 'r');
  try {
    const size = opts.size ?? (await fh.stat()).size;
    const block = opts.block ?? 64 * 1024;
    let pos = size;
    let rest: Buffer = Buffer.alloc(0);
    let first = true;
    while (pos > 0) {
      const start = Math.max(0, pos - block);
      const buf = Buffer.alloc(pos - start);
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      const joined = Buffer.concat([buf.subarray(0, bytesRead), rest]);
      pos = start;
      let end = joined.length;
      for (let i = joined.length - 1; i >= 0; i--) {
        if (joined[i] !== 0x0a) continue;
        const line = joined.subarray(i + 1, end);
        if (!(first && line.length === 0)) yield line.toString('utf8');
        first = false;
        end = i;
      }
      rest = Buffer.from(joined.subarray(0, end));
    }
    if (rest.length > 0) yield rest.toString('utf8');
  } finally {
    await fh.close();
  }
}
