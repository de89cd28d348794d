/**
 * The full decode behind `kluis verify --deep`. Ingest proves a sanitized file by its coded bytes
 * and one reduced-scale decode; a deep verify may spend a full decode on every stored file.
 * Promises: `decodeFully` resolves only when ffmpeg decoded the file with no error reported
 * (`-xerror`, and any error line counts): for a still image the first picture in its native pixel
 * format, whose SHA-256 it returns (the `decoded-pixels-sha256` value, so it can be compared with
 * the card file's); for MP4/MOV every video and audio stream. It throws E_DECODE_FAILED when the
 * file does not decode, and E_DECODE_UNSUPPORTED when ffmpeg cannot decode this kind of picture
 * at all (TIFF/DNG raw data), so a caller can tell "broken" from "not checkable". Never writes.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../errors.js';
import { inputArgs, runFfmpeg } from '../wrappers/ffmpeg.js';
import { sniffFile } from './registry.js';
import { decodedPixelSha256 } from './verify/tools.js';

export interface FullDecode {
  /** What decoded it, for people. */
  how: string;
  /** For a still image: SHA-256 of the decoded first picture (native pixel format, no autorotate). */
  pixelsSha256?: string;
}

function failed(why: string, cause?: unknown): KluisError {
  return new KluisError('E_DECODE_FAILED', `does not decode: ${why}`, { hint: 'the stored file is damaged or not what the manifest says; treat it as suspect', cause });
}

function why(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

export async function decodeFully(file: string): Promise<FullDecode> {
  const format = await sniffFile(file);
  if (format === null) throw failed('no format kluis knows by its first bytes');
  if (format === 'jpeg' || format === 'tiff' || format === 'dng') {
    try {
      const px = await decodedPixelSha256(file, { strict: true });
      return { how: 'ffmpeg, first picture, in full', pixelsSha256: px.sha256 };
    } catch (err) {
      if (format === 'jpeg') throw failed(why(err), err);
      throw new KluisError('E_DECODE_UNSUPPORTED', `ffmpeg cannot decode this ${format.toUpperCase()} (${why(err)})`, {
        hint: 'raw and some TIFF layouts are not decoded by ffmpeg; the image-data-and-decoding-tags hash is the check for them',
        cause: err,
      });
    }
  }
  const { size } = await fsp.stat(file);
  try {
    const r = await runFfmpeg(['-nostdin', '-v', 'error', '-xerror', ...inputArgs(file), '-map', '0:v?', '-map', '0:a?', '-f', 'null', '-'], {
      timeoutMs: 10 * 60_000 + Math.ceil(size / (1 << 20)) * 1000,
    });
    if (r.stderr.trim() !== '') throw new Error(r.stderr.trim().split('\n').slice(-2).join(' '));
  } catch (err) {
    throw failed(why(err), err);
  }
  return { how: 'ffmpeg, every video and audio stream, in full' };
}
