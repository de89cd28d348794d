/**
 * The external readers the image checks rely on: ffmpeg (decoded pixels: the
 * `decoded-pixels-sha256` values manifests hold from before, `kluis verify --deep`, and the
 * decode check of a JPEG sharp cannot read) and ExifTool (independent metadata re-read), each
 * started through its wrapper (src/wrappers/). Promises: output is streamed (pixels are hashed as
 * they arrive, never held whole); a missing tool is E_SANITIZE_TOOL_MISSING; a tool that fails
 * is E_SANITIZE_TOOL. Never retries and never treats a failed run as "clean".
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { KluisError } from '../../errors.js';
import { exiftool } from '../../wrappers/exiftool.js';
import { runFfmpeg } from '../../wrappers/ffmpeg.js';

export interface PixelHash {
  sha256: string;
  bytes: number;
}

/**
 * The demuxer and decoder for a still picture, named from its first bytes. ffmpeg otherwise picks
 * them from the file name's extension, and spool files have none: without this, probing the
 * content alone fails on JPEGs whose first picture starts behind large APP segments (DJI H20T,
 * M2EA thermal files). The image2 demuxer hands the decoder the whole file, as for a `.jpg` name.
 */
export async function pictureInputArgs(file: string): Promise<string[]> {
  const fh = await fsp.open(file, 'r').catch(() => null);
  if (!fh) return [];
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return ['-f', 'image2', '-c:v', 'mjpeg'];
    const tiff = head.subarray(0, 4).toString('latin1');
    if (tiff === 'II*\0' || tiff === 'MM\0*') return ['-f', 'image2', '-c:v', 'tiff'];
    return [];
  } finally {
    await fh.close();
  }
}

/**
 * SHA-256 of the first picture's decoded samples, in the decoder's native pixel format (no colour
 * conversion, no scaling). -noautorotate keeps ffmpeg from applying any orientation, so dropping or
 * keeping an EXIF Orientation cannot change the hash.
 */
export async function decodedPixelSha256(file: string, opts: { strict?: boolean } = {}): Promise<PixelHash> {
  const h = createHash('sha256');
  let bytes = 0;
  // strict (kluis verify --deep): any error the decoder reports fails, even where ffmpeg would
  // conceal it and go on. The pixels hashed are the same.
  const strict = opts.strict ? ['-xerror'] : [];
  let stderr: string;
  try {
    ({ stderr } = await runFfmpeg(
      ['-v', 'error', ...strict, '-noautorotate', ...(await pictureInputArgs(file)), '-i', file, '-map', '0:v:0', '-frames:v', '1', '-f', 'rawvideo', '-'],
      {
        onStdout: (c) => {
          h.update(c);
          bytes += c.length;
        },
      },
    ));
  } catch (err) {
    // ffmpeg ran and failed: the picture does not decode. Anything else (not installed, hung) is the wrapper's error.
    if ((err as KluisError).code !== 'E_SANITIZE_TOOL_FAILED') throw err;
    const tail = String((err as KluisError).details?.stderr ?? '').split(' | ').slice(-2).join(' ');
    throw notDecoded(tail || (err as Error).message, err);
  }
  if (bytes === 0 || (opts.strict && stderr.trim() !== '')) throw notDecoded(stderr.trim().split('\n').slice(-2).join(' ') || 'no picture');
  return { sha256: h.digest('hex'), bytes };
}

function notDecoded(why: string, cause?: unknown): KluisError {
  return new KluisError('E_SANITIZE_TOOL', `ffmpeg could not decode the picture: ${why}`, {
    hint: 'the picture could not be decoded, so it cannot be proven unchanged; it is withheld',
    ...(cause !== undefined ? { cause } : {}),
  });
}

/**
 * decodedPixelSha256 of two files with one ffmpeg start-up: each file's first picture goes, as
 * rawvideo in the decoder's native pixel format (exactly the bytes decodedPixelSha256 hashes), to
 * its own pipe and is hashed here with OpenSSL's SHA-256 (ffmpeg's own `-hash sha256` runs at a
 * sixth of the speed). test/integration/decoded-pixels-pair.test.ts holds the values equal on every real
 * fixture. When this run fails, both files are hashed by decodedPixelSha256 itself, so the values
 * and the errors are exactly what it gives.
 */
export async function decodedPixelSha256Pair(a: string, b: string): Promise<[PixelHash, PixelHash]> {
  const one = await pairRun(a, b).catch(() => null);
  if (one) return one;
  return [await decodedPixelSha256(a), await decodedPixelSha256(b)];
}

/** The one-ffmpeg run alone; null when it failed or gave no picture for a file (exported for its test). */
export async function pairRun(a: string, b: string): Promise<[PixelHash, PixelHash] | null> {
  const [inA, inB] = [await pictureInputArgs(a), await pictureInputArgs(b)];
  const out = (i: number): string[] => ['-map', `${i}:v:0`, '-frames:v', '1', '-f', 'rawvideo', `pipe:${3 + i}`];
  const hashes = [createHash('sha256'), createHash('sha256')];
  const bytes = [0, 0];
  try {
    await runFfmpeg(['-v', 'error', '-noautorotate', ...inA, '-i', a, '-noautorotate', ...inB, '-i', b, ...out(0), ...out(1)], {
      extraOutputs: 2,
      onExtra: (i, c) => {
        hashes[i]!.update(c);
        bytes[i]! += c.length;
      },
    });
  } catch (err) {
    if ((err as KluisError).code === 'E_SANITIZE_TOOL_FAILED') return null;
    throw err;
  }
  if (bytes[0] === 0 || bytes[1] === 0) return null;
  return [
    { sha256: hashes[0]!.digest('hex'), bytes: bytes[0]! },
    { sha256: hashes[1]!.digest('hex'), bytes: bytes[1]! },
  ];
}

/**
 * ExifTool's full read of one file (all groups, duplicates, unknown tags, embedded data), as flat
 * key → value. `fast` adds -fast: ExifTool then stops at a JPEG's first scan and skips trailers
 * (no look past SOS for more segments or after EOI); for reading a card file's identifiers only.
 */
export async function exiftoolRead(file: string, opts: { fast?: boolean } = {}): Promise<Record<string, unknown>> {
  const LIMIT = 64 * 1024 * 1024;
  // The persistent ExifTool when it can (src/wrappers/exiftool.ts): the same arguments, the same JSON.
  const r = await exiftool(['-j', '-a', '-G1', '-u', '-ee', '-n', ...(opts.fast ? ['-fast'] : [])], file, { maxStdoutBytes: LIMIT });
  if (r.truncated) throw new KluisError('E_SANITIZE_TOOL', 'exiftool output too large to check');
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout.toString('utf8'));
  } catch (err) {
    throw new KluisError('E_SANITIZE_TOOL', `exiftool gave no readable answer (exit ${r.status}): ${r.stderr.trim()}`, { cause: err });
  }
  if (!Array.isArray(parsed) || parsed.length !== 1 || typeof parsed[0] !== 'object' || parsed[0] === null) {
    throw new KluisError('E_SANITIZE_TOOL', `exiftool gave an unexpected answer (exit ${r.status})`);
  }
  return parsed[0] as Record<string, unknown>;
}

/** Tag names whose values identify a device or owner. */
export const IDENTIFIER_TAG = /serial|sensorid|sensor_id|uniqueid|imageuniqueid|ownername|cameraownername|bodyserial|lensserial|internalserial|camera_?id|device_?id|uuid/i;

/**
 * Identifier values ExifTool reads from a file (serial numbers, sensor ids, owner names), so the
 * output can be searched for them as raw bytes. Values shorter than 4 characters or only zeros
 * are not searched for (they would match by chance).
 */
export function identifierValues(tags: Record<string, unknown>): string[] {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(tags)) {
    const name = k.includes(':') ? k.slice(k.indexOf(':') + 1) : k;
    if (!IDENTIFIER_TAG.test(name)) continue;
    const s = String(v).trim();
    if (s.length >= 4 && !/^0+$/.test(s) && !/^\(Binary data/.test(s)) out.add(s);
  }
  return [...out];
}
