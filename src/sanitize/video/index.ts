/**
 * MP4/MOV sanitizing: the surface the rest of kluis uses.
 * - `sanitizeVideoStream(src, sink, policy, opts)`: the streaming contract (./stream.ts).
 * - `sanitizeVideo(input, output, policy, format)`: the same for files: `output` appears only
 *   when every proof held (written under a temporary name next to it, fsynced, renamed); on any
 *   failure nothing is left behind. Errors are KluisError E_SANITIZE_*.
 * - `sniffVideo`, and the essence functions verify recomputes from a stored file: the sample
 *   essence (`samplesEssenceOfFile`, method mp4-samples-sha256) and the earlier ffmpeg packet
 *   hashes (`essence`, method ffmpeg-framehash-sha256), which manifests written before still use.
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { asKluisError } from '../../errors.js';
import { fsyncDir, fsyncFile } from '../../util/fsx.js';
import { openFileSink, openFileSource } from '../stream-io.js';
import type { SanitizePolicy, SanitizeResult } from '../types.js';
import { sanitizeVideoStream } from './stream.js';
import type { VideoFormat } from './sniff.js';
import { videoInputSize } from './input.js';

export { sniffVideo, type VideoFormat } from './sniff.js';
export { sanitizeVideoStream } from './stream.js';
export { sanitizeVideoByFfmpeg, essence, essenceFramehash, type StreamEssence } from './ffmpeg-copy.js';
export { samplesEssenceOfFile } from './recompute.js';

/** Sanitizes the video file `input` into the new file `output` (see the module comment). */
export async function sanitizeVideo(input: string, output: string, policy: SanitizePolicy, format: VideoFormat): Promise<SanitizeResult> {
  await videoInputSize(input);
  const dir = path.dirname(path.resolve(output));
  const tag = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const tmp = path.join(dir, `.${path.basename(output)}.kluis-${tag}.tmp`);
  const scratch = path.join(dir, `.kluis-scratch-${tag}`);
  const src = await openFileSource(input);
  try {
    await fsp.mkdir(scratch, { mode: 0o700 });
    const sink = await openFileSink(tmp);
    let result: SanitizeResult;
    try {
      result = await sanitizeVideoStream(src, sink, policy, { format, scratchDir: scratch }, input);
    } finally {
      await sink.close();
    }
    await fsyncFile(tmp);
    await fsp.rename(tmp, output);
    await fsyncDir(dir);
    return result;
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw asKluisError(err, 'E_SANITIZE_FAILED');
  } finally {
    await src.close();
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}
