/**
 * TIFF/DNG file sanitizing with proof. Promises: writes the rebuilt TIFF to `output` and returns a
 * SanitizeResult only when the image data + decoding tags hash is equal before and after, the
 * decoded pixels are equal too wherever ffmpeg can decode the input (DNG raw it cannot: then the
 * structural hash is the proof and the result says so), and the IFD walker, exifr, ExifTool and a
 * raw search for every identifier read from the input find nothing. Otherwise throws E_SANITIZE_*.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { KluisError } from '../../errors.js';
import type { EssenceProof, MediaFormat, SanitizePolicy, SanitizeResult } from '../types.js';
import { readImage } from '../jpeg/index.js';
import { exifrCheck, exiftoolCheck, rawSearch, walkCheckTiff } from '../verify/image.js';
import { assertClean, assertEssence } from '../verify/proof.js';
import { decodedPixelSha256, exiftoolRead, identifierValues, type PixelHash } from '../verify/tools.js';
import { readTiff } from './ifd.js';
import { keptIfds, sanitizeTiffBytes, tiffEssence } from './sanitize.js';

export async function sanitizeTiffFile(input: string, output: string, policy: SanitizePolicy, format: 'tiff' | 'dng'): Promise<SanitizeResult> {
  void policy; // no switch applies to TIFF: radiometric TIFFs keep their data as image data
  const buf = await readImage(input);
  const identifiers = identifierValues(await exiftoolRead(input));
  const r = sanitizeTiffBytes(buf);
  await fsp.writeFile(output, r.bytes, { flag: 'wx', mode: 0o600 });

  const outTiff = readTiff(r.bytes);
  const essence: EssenceProof[] = [
    { method: 'tiff-image-data-and-decoding-tags-sha256', before: r.essenceSha256, after: tiffEssence(r.bytes, outTiff, keptIfds(outTiff)) },
  ];
  let pixelsBefore: PixelHash | undefined;
  try {
    pixelsBefore = await decodedPixelSha256(input);
  } catch (err) {
    if (!(err instanceof KluisError) || err.code !== 'E_SANITIZE_TOOL') throw err;
  }
  if (pixelsBefore) {
    const after = await decodedPixelSha256(output);
    essence.push({ method: 'decoded-pixels-sha256 (ffmpeg, native pix_fmt, first picture)', before: pixelsBefore.sha256, after: after.sha256 });
  }
  assertEssence(essence);

  const checks = [walkCheckTiff(r.bytes), rawSearch(r.bytes, identifiers), await exifrCheck(output), await exiftoolCheck(output, 'tiff')];
  assertClean(checks);

  const kept = [...r.kept];
  if (!pixelsBefore) kept.push('essence proven on image data bytes + decoding tags only (ffmpeg cannot decode this file)');
  const fmt: MediaFormat = r.isDng ? 'dng' : format;
  return {
    format: fmt,
    sha256: createHash('sha256').update(r.bytes).digest('hex'),
    size: r.bytes.length,
    essence,
    removed: r.removed,
    kept,
    checks,
  };
}
