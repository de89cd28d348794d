/**
 * The format registry: decides a file's format from its first bytes (never its name) and hands it
 * to that format's sanitizer. Promises: an unknown format is E_SANITIZE_UNSUPPORTED;
 * `sanitizeStream` resolves only when every proof held (any other failure is a KluisError, an
 * unexpected one E_INTERNAL); `sanitizeFile` writes its output under a temporary name next to
 * `output` and renames it into place only after the proof passed, so on any failure no output file
 * remains.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../errors.js';
import { fsyncDir, fsyncFile } from '../util/fsx.js';
import type { ByteSink, ByteSource, MediaFormat, SanitizePolicy, SanitizeResult, StreamSanitizeOptions, StreamSanitizeResult } from './types.js';
import { sanitizeImageStream } from './image.js';
import { openFileSink, openFileSource } from './stream-io.js';
import { tiffByteOrder } from './tiff/ifd.js';
import { sanitizeVideo, sanitizeVideoStream, sniffVideo } from './video/index.js';

const SNIFF_BYTES = 64 * 1024;

/** DNGVersion (50706) in IFD0, when IFD0 lies inside `head`; undefined when it cannot tell. */
function tiffIsDng(head: Uint8Array, le: boolean): boolean | undefined {
  const u16 = (o: number): number => (le ? head[o]! | (head[o + 1]! << 8) : (head[o]! << 8) | head[o + 1]!);
  const u32 = (o: number): number => new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(o, le);
  const ifd = u32(4);
  if (ifd < 8 || ifd + 2 > head.length) return undefined;
  const n = u16(ifd);
  if (ifd + 2 + n * 12 > head.length) return undefined;
  for (let i = 0; i < n; i++) if (u16(ifd + 2 + i * 12) === 50706) return true;
  return false;
}

/** Format by magic bytes. For TIFF, 'dng' when IFD0 (if inside `head`) holds DNGVersion. */
export function sniff(head: Uint8Array): MediaFormat | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  const le = tiffByteOrder(head);
  if (le !== undefined) return tiffIsDng(head, le) ? 'dng' : 'tiff';
  return sniffVideo(head);
}

/** Like sniff, reading what it needs from the file (the first 64 KiB, and IFD0 wherever it lies). */
export async function sniffFile(file: string): Promise<MediaFormat | null> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
    const h = head.subarray(0, bytesRead);
    const format = sniff(h);
    if (format !== 'tiff') return format;
    const le = tiffByteOrder(h)!;
    if (tiffIsDng(h, le) !== undefined) return format;
    // IFD0 beyond the head: read its entry count and entries where they are.
    const ifd = new DataView(h.buffer, h.byteOffset, h.byteLength).getUint32(4, le);
    const countBuf = new Uint8Array(2);
    if ((await fh.read(countBuf, 0, 2, ifd)).bytesRead !== 2) return 'tiff';
    const n = le ? countBuf[0]! | (countBuf[1]! << 8) : (countBuf[0]! << 8) | countBuf[1]!;
    const entries = new Uint8Array(n * 12);
    const got = (await fh.read(entries, 0, entries.length, ifd + 2)).bytesRead;
    for (let i = 0; i + 12 <= got; i += 12) {
      const tag = le ? entries[i]! | (entries[i + 1]! << 8) : (entries[i]! << 8) | entries[i + 1]!;
      if (tag === 50706) return 'dng';
    }
    return 'tiff';
  } finally {
    await fh.close();
  }
}

function isStill(format: MediaFormat): format is 'jpeg' | 'tiff' | 'dng' {
  return format === 'jpeg' || format === 'tiff' || format === 'dng';
}

function unexpected(err: unknown): KluisError {
  if (err instanceof KluisError) return err;
  const full = asKluisError(err); // a full disk (scratch, sink, temporary file) is said as such
  if (full.code === 'E_DISK_FULL') return full;
  return new KluisError('E_INTERNAL', `sanitizing failed unexpectedly: ${(err as Error)?.message ?? String(err)}`, {
    hint: 'the file is withheld; this is a bug in kluis, please report it',
    cause: err,
  });
}

/**
 * Sanitizes `src` into `sink` (the contract is in SANITIZE-API terms in src/sanitize/types.ts):
 * still images in memory (src/sanitize/image.ts); MP4/MOV by kluis's own box rewriter in one read
 * of the source (src/sanitize/video/stream.ts).
 */
export async function sanitizeStream(src: ByteSource, sink: ByteSink, policy: SanitizePolicy, opts: StreamSanitizeOptions): Promise<StreamSanitizeResult> {
  try {
    if (isStill(opts.format)) return await sanitizeImageStream(src, sink, policy, opts);
    return await sanitizeVideoStream(src, sink, policy, opts);
  } catch (err) {
    throw unexpected(err);
  }
}

export async function sanitizeFile(input: string, output: string, policy: SanitizePolicy): Promise<SanitizeResult> {
  const format = await sniffFile(input);
  if (format === null) {
    throw new KluisError('E_SANITIZE_UNSUPPORTED', 'file format not recognised by its first bytes (JPEG, TIFF, DNG, MP4, MOV are handled)', {
      hint: 'the file is withheld; it is listed in the batch report',
    });
  }
  const dir = path.dirname(output);
  const tmp = path.join(dir, `.${path.basename(output)}.${randomBytes(6).toString('hex')}.kluis-tmp`);
  try {
    let result: SanitizeResult;
    if (isStill(format)) {
      const src = await openFileSource(input);
      try {
        const sink = await openFileSink(tmp);
        try {
          // Scratch files (ExifTool's copies) go next to the output, like the temporary file.
          const { thumbnail: _none, ...r } = await sanitizeImageStream(src, sink, policy, { format, scratchDir: dir });
          result = r;
        } finally {
          await sink.close();
        }
      } finally {
        await src.close();
      }
    } else {
      result = await sanitizeVideo(input, tmp, policy, format);
    }
    await fsyncFile(tmp);
    await fsp.rename(tmp, output);
    await fsyncDir(dir);
    return result;
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw unexpected(err);
  }
}
