/**
 * The ffmpeg stream copy (./ffmpeg-copy.ts) behind the streaming contract, for layouts kluis's
 * rewriter does not take: the input goes to a scratch file (unless the caller has its path), the
 * checked output is handed to the sink 1 MiB at a time and must hash to what was checked, and a
 * thumbnail is taken from it when asked. Bounded memory; scratch files are always removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../errors.js';
import { inputArgs, runFfmpeg } from '../../wrappers/ffmpeg.js';
import type { ByteSink, ByteSource as StreamSource, SanitizePolicy, StreamSanitizeOptions, StreamSanitizeResult } from '../types.js';
import { sanitizeVideoByFfmpeg } from './ffmpeg-copy.js';
import type { VideoFormat } from './sniff.js';

/** Bytes per read and write of the scratch copy and of the hand-over. */
const WINDOW = 1 << 20;

/** The ffmpeg stream copy, for layouts the rewriter does not take; bounded memory, scratch files removed. */
export async function viaFfmpeg(
  src: StreamSource,
  sink: ByteSink,
  policy: SanitizePolicy,
  opts: StreamSanitizeOptions,
  reason: string,
  inputPath: string | undefined,
): Promise<StreamSanitizeResult> {
  const format = opts.format as VideoFormat;
  const id = `kluis-${process.pid}-${randomBytes(6).toString('hex')}`;
  const scratchIn = path.join(opts.scratchDir, `${id}.in.${format}`);
  const scratchOut = path.join(opts.scratchDir, `${id}.out.${format}`);
  try {
    let input = inputPath;
    if (!input) {
      const fh = await fsp.open(scratchIn, 'wx', 0o600);
      try {
        for (let at = 0; at < src.size; at += WINDOW) {
          const b = await src.read(at, Math.min(WINDOW, src.size - at));
          await fh.write(b, 0, b.length, at);
        }
      } finally {
        await fh.close();
      }
      input = scratchIn;
    }
    const r = await sanitizeVideoByFfmpeg(input, scratchOut, policy, format);
    const h = createHash('sha256');
    const fh = await fsp.open(scratchOut, 'r');
    let size = 0;
    const b = Buffer.allocUnsafe(WINDOW); // the sink is done with a chunk when its write resolves
    try {
      for (;;) {
        const { bytesRead } = await fh.read(b, 0, WINDOW, size);
        if (bytesRead === 0) break;
        const chunk = b.subarray(0, bytesRead);
        h.update(chunk);
        await sink.write(chunk);
        size += bytesRead;
      }
    } finally {
      await fh.close();
    }
    if (h.digest('hex') !== r.sha256 || size !== r.size) {
      throw new KluisError('E_SANITIZE_FAILED', 'the sanitized file changed between its check and its hand-over', { hint: 'the scratch folder is not private; check its permissions' });
    }
    let thumbnail: Buffer | undefined;
    if (opts.thumbnail && r.essence.some((e) => e.about?.kind === 'video')) {
      const e = opts.thumbnail.maxEdge;
      const { stdout } = await runFfmpeg(
        ['-v', 'error', '-threads', '1', ...inputArgs(scratchOut), '-map', '0:v:0', '-frames:v', '1', '-vf', `scale=${e}:${e}:force_original_aspect_ratio=decrease`, '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '4', 'pipe:1'],
        { collectStdout: 16 << 20, timeoutMs: 120_000 },
      );
      if (stdout.length > 0) thumbnail = stdout;
    }
    return { ...r, kept: [...r.kept, `written by the ffmpeg stream copy, not kluis's rewriter: ${reason}`], ...(thumbnail ? { thumbnail } : {}) };
  } finally {
    await fsp.rm(scratchIn, { force: true });
    await fsp.rm(scratchOut, { force: true });
  }
}
