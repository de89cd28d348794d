/**
 * sanitizeStream's signature (SANITIZE-API.md) over the file-based sanitizeFile, for video until
 * the box rewriter's streaming sanitizer lands (pictures already go through the real
 * sanitizeStream): tasks.ts picks it by format, so switching is that one line. It reads the
 * pipeline's working copy in place (no copy of the input), and the thumbnail is rendered from its
 * output (evidence/report.ts). What it still costs, and the streaming sanitizer will not: the
 * sanitized output is written to a scratch file in `scratchDir` (0700, on the spool disk), read
 * once more to be handed to the sink, then removed, whether the call succeeds or throws.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sanitizeFile } from '../sanitize/index.js';
import type { ByteSink, ByteSource, SanitizePolicy, StreamSanitizeOptions, StreamSanitizeResult } from '../sanitize/types.js';
import { renderThumbnail } from '../evidence/report.js';

const CHUNK = 1 << 20;

export async function sanitizeStream(src: ByteSource, sink: ByteSink, policy: SanitizePolicy, opts: StreamSanitizeOptions): Promise<StreamSanitizeResult> {
  const scratch = (what: string): string => path.join(opts.scratchDir, `${randomBytes(8).toString('hex')}.${what}`);
  const made: string[] = [];
  try {
    // The pipeline's source is its working copy: read it in place; any other source is spilled.
    let input = (src as { path?: unknown }).path;
    if (typeof input !== 'string') {
      input = scratch('in');
      made.push(input as string);
      const fh = await fsp.open(input as string, 'wx', 0o600);
      try {
        for (let pos = 0; pos < src.size; pos += CHUNK) await fh.write(await src.read(pos, Math.min(CHUNK, src.size - pos)));
      } finally {
        await fh.close();
      }
    }
    const out = scratch('out');
    made.push(out);
    const result = await sanitizeFile(input as string, out, policy);
    const thumbnail = opts.thumbnail ? await renderThumbnail(out, result.format).catch(() => null) : null;
    const fh = await fsp.open(out, 'r');
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let pos = 0; ; ) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        // The sink seals the chunk before its promise resolves, so the buffer can be reused.
        await sink.write(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return { ...result, ...(thumbnail ? { thumbnail } : {}) };
  } finally {
    for (const f of made) await fsp.rm(f, { force: true });
  }
}
