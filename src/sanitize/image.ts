/**
 * sanitizeStream for still images (JPEG, TIFF, DNG): the whole file in memory (at most
 * MAX_IMAGE_BYTES), sanitized in memory, proven from the bytes in hand, then handed to the sink.
 *
 * Promises: the sink receives the output only after every check below held, so on a throw it has
 * received nothing; the result's sha256/size are those of exactly the bytes given to the sink.
 * - Essence (coded bytes identical, no decode): JPEG `jpeg-decoder-segments-sha256` (the decoder
 *   records of input and output compared byte for byte, then hashed once: equal records give
 *   equal hashes); TIFF/DNG `tiff-image-data-and-decoding-tags-sha256`, before and after.
 * - Independent re-read of the output: own walker, exifr on the buffer, ExifTool (the persistent
 *   process, reading a scratch copy; of a JPEG every byte but the interiors of its scans, which
 *   the walker proved marker-free, see jpeg/elide.ts) and a raw search of the whole output for
 *   every identifier ExifTool reads from the input plus those the sanitizer blanked or dropped.
 * - One reduced-scale decode of the output (sharp, shrink-on-load): it must decode (see
 *   verify/preview.ts); it is also the preview returned when asked for.
 * No child process is started per file on this path (ExifTool is the persistent one; ffmpeg runs
 * only for a picture sharp cannot decode at all, e.g. raw DNG). Scratch files are removed before
 * it returns.
 */
import { createHash } from 'node:crypto';
import { KluisError } from '../errors.js';
import { MAX_IMAGE_BYTES } from './jpeg/index.js';
import { JPEG_DECODER_SEGMENTS_SHA256, hashDecoderRecords, jpegDecoderRecords, sameDecoderRecords } from './jpeg/decoder-segments.js';
import { sanitizeJpegBytes } from './jpeg/sanitize.js';
import { withoutScanInteriors } from './jpeg/elide.js';
import { walkJpeg } from './jpeg/walker.js';
import { readTiff, tiffByteOrder } from './tiff/ifd.js';
import { keptIfds, sanitizeTiffBytes, tiffEssence } from './tiff/sanitize.js';
import { Scratch, readWhole, writeAll } from './stream-io.js';
import { give, take } from '../util/reuse.js';
import type { ByteSink, ByteSource, EssenceProof, IndependentCheck, RemovedItem, SanitizePolicy, StreamSanitizeOptions, StreamSanitizeResult } from './types.js';
import { exifrCheck, exiftoolCheck, rawSearch, walkCheckJpeg, walkCheckTiff } from './verify/image.js';
import { previewDecode } from './verify/preview.js';
import { assertClean, assertEssence } from './verify/proof.js';
import { decodedPixelSha256, exiftoolRead, identifierValues } from './verify/tools.js';

export type StillFormat = 'jpeg' | 'tiff' | 'dng';

/** The preview size used for the decode check when no preview is asked for. */
const CHECK_EDGE = 320;

/** What one format's sanitizer gives, before the readers that need a file or a decoder. */
interface StillPlan {
  format: StillFormat;
  bytes: Uint8Array;
  essence: EssenceProof[];
  removed: RemovedItem[];
  kept: string[];
  /** The own walker's re-read of the output. */
  walk: IndependentCheck;
  /** What ExifTool reads for the output: a JPEG without its scan interiors (jpeg/elide.ts), else the output. */
  exiftoolCopy: Uint8Array;
  /** Identifiers the sanitizer saw (blanked or in dropped segments): the output must not hold them. */
  searchFor: string[];
}

function tooLarge(size: number): () => KluisError {
  return () =>
    new KluisError('E_SANITIZE_TOO_LARGE', `still image of ${size} bytes is larger than kluis handles (${MAX_IMAGE_BYTES})`, {
      hint: 'the file is withheld',
    });
}

function jpegPlan(input: Buffer, policy: SanitizePolicy): StillPlan {
  const r = sanitizeJpegBytes(input, policy, take);
  const before = jpegDecoderRecords(input);
  const outLayout = walkJpeg(r.bytes);
  const after = jpegDecoderRecords(r.bytes, outLayout);
  // Byte-identical records give one hash for both sides; otherwise both are hashed and
  // assertEssence names the difference.
  const same = sameDecoderRecords(before, after);
  const a = hashDecoderRecords(after);
  const essence: EssenceProof = { method: JPEG_DECODER_SEGMENTS_SHA256, before: same ? a : hashDecoderRecords(before), after: a };
  return {
    format: 'jpeg',
    bytes: r.bytes,
    essence: [essence],
    removed: r.removed,
    kept: r.kept,
    walk: walkCheckJpeg(r.bytes, policy),
    exiftoolCopy: withoutScanInteriors(r.bytes, outLayout).bytes,
    searchFor: r.blankedStrings,
  };
}

function tiffPlan(input: Buffer, format: 'tiff' | 'dng'): StillPlan {
  const r = sanitizeTiffBytes(input);
  const out = readTiff(r.bytes);
  return {
    format: r.isDng ? 'dng' : format,
    bytes: r.bytes,
    essence: [{ method: 'tiff-image-data-and-decoding-tags-sha256', before: r.essenceSha256, after: tiffEssence(r.bytes, out, keptIfds(out)) }],
    removed: r.removed,
    kept: r.kept,
    walk: walkCheckTiff(r.bytes),
    exiftoolCopy: r.bytes,
    searchFor: [],
  };
}

export async function sanitizeImageStream(src: ByteSource, sink: ByteSink, policy: SanitizePolicy, opts: StreamSanitizeOptions): Promise<StreamSanitizeResult> {
  // The picture in and the picture out live in this thread's reused buffers (util/reuse.ts):
  // given back when this returns or throws, by which time nothing handed them on holds them (the
  // readers and the decode have settled, the sink consumed every chunk, and neither the result
  // nor an error refers to their bytes).
  const input = await readWhole(src, MAX_IMAGE_BYTES, tooLarge(src.size), take);
  let output: Uint8Array | undefined;
  try {
    // The caller sniffed the first bytes; the bytes in hand must agree (TIFF or DNG is told by
    // the TIFF sanitizer from IFD0).
    const isJpeg = input.length >= 3 && input[0] === 0xff && input[1] === 0xd8 && input[2] === 0xff;
    const isTiff = tiffByteOrder(input) !== undefined;
    if (opts.format === 'jpeg' ? !isJpeg : !isTiff) {
      throw new KluisError('E_SANITIZE_FORMAT', `the file was announced as ${opts.format} but its first bytes are not`, {
        hint: 'the file changed between sniffing and sanitizing, or the caller passed the wrong format; it is withheld',
      });
    }
    const plan = opts.format === 'jpeg' ? jpegPlan(input, policy) : tiffPlan(input, opts.format as 'tiff' | 'dng');
    output = plan.bytes;
    return await provenStill(plan, input, src, sink, opts);
  } finally {
    give(input);
    give(output);
  }
}

async function provenStill(plan: StillPlan, input: Buffer, src: ByteSource, sink: ByteSink, opts: StreamSanitizeOptions): Promise<StreamSanitizeResult> {
  assertEssence(plan.essence);

  const scratch = new Scratch(opts.scratchDir);
  let checks: IndependentCheck[];
  let thumbnail: Buffer | undefined;
  const kept = [...plan.kept];
  try {
    // ExifTool reads the input where it already is (the pipeline's working copy), and the output
    // without its scan interiors (jpeg/elide.ts); the full output goes to a file only for the
    // ffmpeg fallback, on the rare path where sharp cannot decode the picture.
    const [inFile, checkFile] = await Promise.all([
      src.path ?? scratch.write('in', input),
      scratch.write('check', plan.exiftoolCopy),
    ]);
    const readers = (async (): Promise<IndependentCheck[]> => {
      // The input is read only for its identifiers (to search the output for), so ExifTool may
      // stop at the first scan (-fast); the output gets ExifTool's full read.
      const identifiers = identifierValues(await exiftoolRead(inFile, { fast: true }));
      return [
        plan.walk,
        rawSearch(plan.bytes, [...identifiers, ...plan.searchFor]),
        await exifrCheck(Buffer.from(plan.bytes.buffer, plan.bytes.byteOffset, plan.bytes.byteLength)),
        await exiftoolCheck(checkFile, plan.format === 'jpeg' ? 'jpeg' : 'tiff'),
      ];
    })();
    const decode = previewDecode(plan.bytes, input, plan.format, opts.thumbnail?.maxEdge ?? CHECK_EDGE, async (which) => {
      await decodedPixelSha256(which === 'output' ? (plan.exiftoolCopy === plan.bytes ? checkFile : await scratch.write('out', plan.bytes)) : inFile);
    });
    // Both settle before the scratch files go (the ffmpeg fallback reads the output copy).
    const [c, d] = await Promise.allSettled([readers, decode]);
    if (c.status === 'rejected') throw c.reason;
    if (d.status === 'rejected') throw d.reason;
    checks = c.value;
    if (opts.thumbnail && d.value.thumbnail) thumbnail = d.value.thumbnail;
    if (d.value.note) kept.push(d.value.note);
  } finally {
    await scratch.dispose();
  }
  assertClean(checks);

  const sha256 = createHash('sha256').update(plan.bytes).digest('hex');
  await writeAll(sink, plan.bytes);
  return {
    format: plan.format,
    sha256,
    size: plan.bytes.length,
    essence: plan.essence,
    removed: plan.removed,
    kept,
    checks,
    ...(thumbnail ? { thumbnail } : {}),
  };
}
