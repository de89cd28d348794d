/**
 * Recomputes, from a sanitized file alone, the `after` value of each essence proof the sanitizers
 * record (SanitizeResult.essence), so `kluis verify` can re-prove picture and sound after
 * decrypting a stored object. Promises: for every method the sanitizers write (and the older ones
 * they wrote before; ./essence-method.ts lists them and reads both forms), the value is computed
 * by the very function that produced `after`, on the same input; an unknown method id gives null
 * (and nothing else does); a known method that cannot be applied to this file (wrong format,
 * missing stream, unreadable parameter) throws a KluisError E_ESSENCE_* naming why. It never
 * writes, never guesses from free text, and streams video (mp4-samples-sha256 reads the track's
 * chunks in node, ffmpeg-framehash-sha256 takes packet hashes from ffmpeg; images are read whole,
 * bounded as in sanitizing).
 *
 * The legacy video form ("ffmpeg-framehash-sha256 per packet, stream <I> (<kind> <codec>, <P>
 * packets, <B> bytes)", I the index in the *card* file): streams keep their order when sanitized,
 * so the stream sought is the sanitized file's stream of that kind and codec with index <= I; if
 * several qualify, the one with exactly P packets of B bytes in all; if that is still not exactly
 * one, E_ESSENCE_AMBIGUOUS.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../errors.js';
import { ffprobeJson } from '../wrappers/ffmpeg.js';
import { readImage } from './jpeg/index.js';
import { jpegDecoderSegmentsSha256 } from './jpeg/decoder-segments.js';
import { jpegScanSha256 } from './jpeg/sanitize.js';
import { sniffFile } from './registry.js';
import { readTiff } from './tiff/ifd.js';
import { keptIfds, tiffEssence } from './tiff/sanitize.js';
import type { MediaFormat } from './types.js';
import { essenceMethodOf, type EssenceMethodId, type ParsedEssenceMethod, type RecordedEssence } from './essence-method.js';
import { decodedPixelSha256 } from './verify/tools.js';
import { essence as streamEssence, samplesEssenceOfFile, type StreamEssence } from './video/index.js';

/** Which file formats (by first bytes) each method applies to. */
const FAMILY: Record<EssenceMethodId, ReadonlySet<MediaFormat>> = {
  'jpeg-decoder-segments-sha256': new Set(['jpeg']),
  'decoded-pixels-sha256': new Set(['jpeg', 'tiff', 'dng']),
  'jpeg-scan-sha256': new Set(['jpeg']),
  'tiff-image-data-and-decoding-tags-sha256': new Set(['tiff', 'dng']),
  'ffmpeg-framehash-sha256': new Set(['mp4', 'mov']),
  'mp4-samples-sha256': new Set(['mp4', 'mov']),
};

function family(f: string): string {
  return f === 'dng' ? 'tiff' : f === 'mov' ? 'mp4' : f;
}

/**
 * The essence value the recorded entry's method gives for `file` (a sanitized file, e.g. just
 * decrypted), to compare with the recorded `after`; null when the method id is unknown. `essence`
 * is the manifest's entry (either form) or an older method string. `format` is what the manifest
 * says the file is; when given it must agree with the file's first bytes.
 */
export async function recomputeEssence(file: string, format: string | undefined, essence: RecordedEssence | string): Promise<string | null> {
  const parsed = essenceMethodOf(essence);
  if (!parsed) return null;
  const sniffed = await sniffFile(file);
  if (sniffed === null || !FAMILY[parsed.method].has(sniffed)) {
    throw new KluisError('E_ESSENCE_FORMAT', `${parsed.method} does not apply to this file: it is ${sniffed ?? 'of no format kluis knows'} by its first bytes`, {
      hint: 'the manifest lists a method for another kind of file; treat the object as suspect',
    });
  }
  if (format !== undefined && family(format) !== family(sniffed)) {
    throw new KluisError('E_ESSENCE_FORMAT', `the manifest says ${format}, but the file is ${sniffed} by its first bytes`, {
      hint: 'the manifest and the stored file disagree; treat the object as suspect',
    });
  }
  switch (parsed.method) {
    case 'jpeg-decoder-segments-sha256':
      return jpegDecoderSegmentsSha256(await readImage(file));
    case 'decoded-pixels-sha256':
      return (await decodedPixelSha256(file)).sha256;
    case 'jpeg-scan-sha256':
      return jpegScanSha256(await readImage(file));
    case 'tiff-image-data-and-decoding-tags-sha256': {
      const buf = await readImage(file);
      const t = readTiff(buf);
      return tiffEssence(buf, t, keptIfds(t));
    }
    case 'ffmpeg-framehash-sha256':
      return videoStream(file, parsed);
    case 'mp4-samples-sha256':
      return samplesEssenceOfFile(file, parsed.track);
  }
}

interface VideoStreams {
  streams: Array<{ kind: string; codec: string; essence: StreamEssence }>;
}

/**
 * The last file's per-stream hashes: verify asks once per stream of the same file, and one ffmpeg
 * pass gives them all. Keyed by path and inode, size and times, so a changed file is read again.
 */
let memo: { key: string; value: Promise<VideoStreams> } | undefined;

async function videoStreams(file: string): Promise<VideoStreams> {
  const st = await fsp.stat(file);
  const key = `${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  if (memo?.key === key) return memo.value;
  const value = (async (): Promise<VideoStreams> => {
    const timeoutMs = 120_000 + Math.ceil(st.size / (2 << 20)) * 1000; // as when sanitizing
    const probe = await ffprobeJson(file, { timeoutMs: 120_000 });
    // Sanitizing hashed every stream of its output (it keeps only the streams it hashed), each by
    // its own index: the same maps here give the same per-stream values.
    const hashes = await streamEssence(file, probe.streams.map((_, i) => `0:${i}`), timeoutMs);
    return {
      streams: probe.streams.map((s, i) => ({ kind: s.codec_type ?? '?', codec: s.codec_name ?? '?', essence: hashes[i]! })),
    };
  })();
  memo = { key, value };
  value.catch(() => {
    if (memo?.value === value) memo = undefined;
  });
  return value;
}

async function videoStream(file: string, p: Extract<ParsedEssenceMethod, { method: 'ffmpeg-framehash-sha256' }>): Promise<string> {
  const { streams } = await videoStreams(file);
  if ('stream' in p) {
    const s = streams[p.stream];
    if (!s) throw new KluisError('E_ESSENCE_STREAM', `the file has no stream ${p.stream} (it has ${streams.length})`, { hint: 'the manifest and the stored file disagree; treat the object as suspect' });
    return s.essence.digest;
  }
  const l = p.legacy;
  const candidates = streams.map((s, i) => ({ ...s, i })).filter((s) => s.i <= l.inputIndex && s.kind === l.kind && s.codec === l.codec);
  if (candidates.length === 0) {
    throw new KluisError('E_ESSENCE_STREAM', `the file has no ${l.kind} ${l.codec} stream that could be card stream ${l.inputIndex}`, { hint: 'the manifest and the stored file disagree; treat the object as suspect' });
  }
  if (candidates.length === 1) return candidates[0]!.essence.digest;
  const counted = candidates.filter((s) => s.essence.packets === l.packets && s.essence.bytes === l.bytes);
  if (counted.length !== 1) {
    throw new KluisError('E_ESSENCE_AMBIGUOUS', `${candidates.length} ${l.kind} ${l.codec} streams could be card stream ${l.inputIndex} and ${counted.length} of them have ${l.packets} packets of ${l.bytes} bytes`, {
      hint: 'this older method string does not say which stream it is; the essence of this file cannot be rechecked by this build',
    });
  }
  return counted[0]!.essence.digest;
}
