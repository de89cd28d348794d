/**
 * JPEG file sanitizing with proof. Promises: writes the allow-listed JPEG to `output` and returns a
 * SanitizeResult only when the decoded pixels (ffmpeg, native pixel format) and the scan bytes are
 * equal before and after, and the segment walker, exifr, ExifTool and a raw search for every
 * identifier read from the input find nothing. Otherwise throws E_SANITIZE_* (the caller removes
 * `output`). Reads the picture into memory (bounded by MAX_IMAGE_BYTES), never a video.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { KluisError } from '../../errors.js';
import type { EssenceProof, SanitizePolicy, SanitizeResult } from '../types.js';
import { exifrCheck, exiftoolCheck, rawSearch, walkCheckJpeg } from '../verify/image.js';
import { assertClean, assertEssence } from '../verify/proof.js';
import { decodedPixelSha256Pair, exiftoolRead, identifierValues } from '../verify/tools.js';
import { jpegScanSha256, sanitizeJpegBytes } from './sanitize.js';

export const MAX_IMAGE_BYTES = 512 * 1024 * 1024;

export async function readImage(input: string): Promise<Buffer> {
  const st = await fsp.stat(input);
  if (st.size > MAX_IMAGE_BYTES) {
    throw new KluisError('E_SANITIZE_TOO_LARGE', `still image of ${st.size} bytes is larger than kluis handles (${MAX_IMAGE_BYTES})`, {
      hint: 'the file is withheld',
    });
  }
  return fsp.readFile(input);
}

export async function sanitizeJpegFile(input: string, output: string, policy: SanitizePolicy): Promise<SanitizeResult> {
  const buf = await readImage(input);
  const identifiers = identifierValues(await exiftoolRead(input));
  const r = sanitizeJpegBytes(buf, policy);
  await fsp.writeFile(output, r.bytes, { flag: 'wx', mode: 0o600 });

  // Both in one ffmpeg start-up; the values are decodedPixelSha256's (see decodedPixelSha256Pair).
  const [before, after] = await decodedPixelSha256Pair(input, output);
  const essence: EssenceProof[] = [
    { method: 'decoded-pixels-sha256 (ffmpeg, native pix_fmt, first picture, no autorotate)', before: before.sha256, after: after.sha256 },
    { method: 'jpeg-scan-sha256', before: r.scanSha256, after: jpegScanSha256(r.bytes) },
  ];
  assertEssence(essence);

  const checks = [
    walkCheckJpeg(r.bytes, policy),
    rawSearch(r.bytes, [...identifiers, ...r.blankedStrings]),
    await exifrCheck(output),
    await exiftoolCheck(output, 'jpeg'),
  ];
  assertClean(checks);

  return {
    format: 'jpeg',
    sha256: createHash('sha256').update(r.bytes).digest('hex'),
    size: r.bytes.length,
    essence,
    removed: r.removed,
    kept: r.kept,
    checks,
  };
}
