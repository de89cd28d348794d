/**
 * MP4/MOV sanitizing by kluis's own box rewriter, in one read of the input.
 * `sanitizeVideoStream(src, sink, policy, opts)` reads the box tree by offset (moov may be at the
 * end), keeps the video and audio tracks the allow-list keeps (./prepare.ts), and hands to `sink`,
 * in order: ftyp, a new moov (./rewrite.ts), and one mdat holding only the kept tracks' chunks,
 * copied in input order (./stream-copy.ts). It never re-encodes, never changes a sample, a timing
 * table or a sample description a decoder reads, and never lets a byte of the input's mdat that
 * no kept sample references reach the output.
 *
 * Before the first byte goes out, the serialized header is parsed back and checked by our own
 * box walker against the allow-list (with the needles the removed metadata carried). While the
 * bytes go out: the essence (./proof.ts, `mp4-samples-sha256:t<track_ID>`) before is taken from
 * the INPUT's tables over the input bytes read, after from the OUTPUT's tables (parsed back from
 * the written moov) over the bytes handed to the sink, which must tile the output mdat exactly;
 * the SHA-256 of the output is taken as it passes; ExifTool, ffprobe and one keyframe decode run
 * on the output's first bytes (./checks.ts). It resolves only when every proof held, otherwise it
 * throws KluisError E_SANITIZE_* and the caller discards what the sink got. Memory: the moov and
 * its tables, two read windows of 1 MiB; never the media data as a whole.
 *
 * Layouts the rewriter does not copy (fragmented MP4, a track whose chunks are out of file order,
 * uncompressed sound whose stsz disagrees with its description) go to the ffmpeg stream copy
 * (./stream-ffmpeg.ts, ./ffmpeg-copy.ts), which keeps its own proofs and method ids; the
 * result's `kept` says so.
 */
import { asKluisError } from '../../errors.js';
import type { ByteSink, ByteSource as StreamSource, SanitizePolicy, StreamSanitizeOptions, StreamSanitizeResult } from '../types.js';
import { prepare } from './prepare.js';
import { copyRewritten } from './stream-copy.js';
import { viaFfmpeg } from './stream-ffmpeg.js';

export async function sanitizeVideoStream(
  src: StreamSource,
  sink: ByteSink,
  policy: SanitizePolicy,
  opts: StreamSanitizeOptions,
  /** The input's path when the caller has one (spares the ffmpeg fallback a scratch copy). */
  inputPath?: string,
): Promise<StreamSanitizeResult> {
  try {
    const planned = await prepare(src, opts);
    if ('fallback' in planned) return await viaFfmpeg(src, sink, policy, opts, planned.fallback, inputPath);
    return await copyRewritten(src, sink, opts, planned);
  } catch (err) {
    throw asKluisError(err, 'E_SANITIZE_FAILED');
  }
}
