/**
 * Recomputes, from a sanitized file alone, the `after` value of each essence proof the sanitizers
 * record (SanitizeResult.essence), so `kluis verify` can re-prove picture and sound after
 * decrypting a stored object. Promises: for every method string the sanitizers write (and the
 * older strings they wrote before), the value is computed by the very function that produced
 * `after`, on the same input; an unknown method id gives null (and nothing else does); a known
 * method that cannot be applied to this file (wrong format, missing stream, unreadable parameter)
 * throws a KluisError E_ESSENCE_* naming why. It never writes, never guesses from free text, and
 * streams video (mp4-samples-sha256 reads the track's chunks in node, ffmpeg-framehash-sha256
 * takes packet hashes from ffmpeg; images are read whole, bounded as in sanitizing).
 *
 * Method strings: `ID[:PARAM][ human text]`. ID is a stable id (lower-case words joined by '-'),
 * PARAM a short parameter, and everything after the first space is for people and is not read -
 * except in the one legacy form listed below. The ids:
 *
 *   jpeg-decoder-segments-sha256              what a JPEG decoder reads: SOFn, DHT, DQT, DAC, DRI,
 *                                             DNL, each SOS with its entropy-coded data, the JFIF
 *                                             and Adobe fields that act (jpeg/decoder-segments.ts)
 *   decoded-pixels-sha256                     ffmpeg's first decoded picture, native pix_fmt, no
 *                                             autorotate (JPEG, and TIFF where ffmpeg decodes it);
 *                                             written until jpeg-decoder-segments-sha256 replaced
 *                                             the decodes at ingest, recomputed for those manifests
 *   jpeg-scan-sha256                          every SOS segment + entropy-coded data (JPEG); written
 *                                             before jpeg-decoder-segments-sha256 extended it
 *   tiff-image-data-and-decoding-tags-sha256  image data + decoding tags of IFD0 and its SubIFDs
 *   ffmpeg-framehash-sha256:s<N>              per-packet hash of stream N of the sanitized file
 *                                             (MP4/MOV); N is the stream's index in that file.
 *                                             Written by the ffmpeg stream copy (until the own
 *                                             rewriter; now only its fallback)
 *   mp4-samples-sha256:t<N>                   the sample bytes, descriptions, timing and edit
 *                                             tables of the track with track_ID N (MP4/MOV;
 *                                             src/sanitize/video/proof.ts); N is the same in the
 *                                             card file and the sanitized file
 *
 * Legacy: before the `:s<N>` parameter existed, video proofs read
 * "ffmpeg-framehash-sha256 per packet, stream <I> (<kind> <codec>, <P> packets, <B> bytes)", where
 * I is the index in the *card* file. Streams keep their order when sanitized, so the stream sought
 * is the sanitized file's stream of that kind and codec with index <= I; if several qualify, the
 * one with exactly P packets of B bytes in all; if that is still not exactly one, E_ESSENCE_AMBIGUOUS.
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
import { decodedPixelSha256 } from './verify/tools.js';
import { essence as streamEssence, samplesEssenceOfFile, type StreamEssence } from './video/index.js';

export const ESSENCE_METHOD_IDS = [
  'jpeg-decoder-segments-sha256',
  'decoded-pixels-sha256',
  'jpeg-scan-sha256',
  'tiff-image-data-and-decoding-tags-sha256',
  'ffmpeg-framehash-sha256',
  'mp4-samples-sha256',
] as const;
export type EssenceMethodId = (typeof ESSENCE_METHOD_IDS)[number];

export type ParsedEssenceMethod =
  | { id: Exclude<EssenceMethodId, 'ffmpeg-framehash-sha256' | 'mp4-samples-sha256'> }
  /** `track`: the track_ID (tkhd) of the track in the file. */
  | { id: 'mp4-samples-sha256'; track: number }
  /** `stream`: index of the stream in the sanitized file. */
  | { id: 'ffmpeg-framehash-sha256'; stream: number }
  /** The legacy video form: the stream is found by kind, codec and counts (see the module comment). */
  | { id: 'ffmpeg-framehash-sha256'; legacy: { inputIndex: number; kind: 'video' | 'audio'; codec: string; packets: number; bytes: number } };

const METHOD = /^([a-z0-9]+(?:-[a-z0-9]+)*)(?::([A-Za-z0-9]+))?(?: (.*))?$/s;
const LEGACY_FRAMEHASH = /^per packet, stream (\d+) \((video|audio) ([A-Za-z0-9_]+), (\d+) packets, (\d+) bytes\)$/;

/** Which file formats (by first bytes) each method applies to. */
const FAMILY: Record<EssenceMethodId, ReadonlySet<MediaFormat>> = {
  'jpeg-decoder-segments-sha256': new Set(['jpeg']),
  'decoded-pixels-sha256': new Set(['jpeg', 'tiff', 'dng']),
  'jpeg-scan-sha256': new Set(['jpeg']),
  'tiff-image-data-and-decoding-tags-sha256': new Set(['tiff', 'dng']),
  'ffmpeg-framehash-sha256': new Set(['mp4', 'mov']),
  'mp4-samples-sha256': new Set(['mp4', 'mov']),
};

function isKnownId(id: string): id is EssenceMethodId {
  return (ESSENCE_METHOD_IDS as readonly string[]).includes(id);
}

function badMethod(method: string, why: string): KluisError {
  return new KluisError('E_ESSENCE_METHOD', `essence method "${method.slice(0, 120)}": ${why}`, {
    hint: 'the manifest was written by a kluis version whose method strings this build does not read; verify with that version',
  });
}

/**
 * The method's id and parameters; null when the id is not one this build knows. Throws
 * E_ESSENCE_METHOD for a known id whose parameter (or legacy text) it cannot read.
 */
export function parseEssenceMethod(method: string): ParsedEssenceMethod | null {
  const m = METHOD.exec(method);
  if (!m || !isKnownId(m[1]!)) return null;
  const id = m[1] as EssenceMethodId;
  const param = m[2];
  if (id === 'mp4-samples-sha256') {
    const t = param === undefined ? null : /^t([1-9][0-9]{0,9})$/.exec(param);
    if (!t || Number(t[1]) > 0xffffffff) throw badMethod(method, `parameter "${param ?? ''}" is not t<track id>`);
    return { id, track: Number(t[1]) };
  }
  if (id !== 'ffmpeg-framehash-sha256') {
    if (param !== undefined) throw badMethod(method, `${id} takes no parameter, got "${param}"`);
    return { id };
  }
  if (param !== undefined) {
    const s = /^s(0|[1-9][0-9]{0,3})$/.exec(param);
    if (!s) throw badMethod(method, `parameter "${param}" is not s<stream index>`);
    return { id, stream: Number(s[1]) };
  }
  const l = LEGACY_FRAMEHASH.exec(m[3] ?? '');
  if (!l) throw badMethod(method, 'no :s<stream> parameter and not the older "per packet, stream I (kind codec, P packets, B bytes)" form');
  return {
    id,
    legacy: { inputIndex: Number(l[1]), kind: l[2] as 'video' | 'audio', codec: l[3]!, packets: Number(l[4]), bytes: Number(l[5]) },
  };
}

function family(f: string): string {
  return f === 'dng' ? 'tiff' : f === 'mov' ? 'mp4' : f;
}

/**
 * The essence value `method` gives for `file` (a sanitized file, e.g. just decrypted), to compare
 * with the recorded `after`; null when the method id is unknown. `format` is what the manifest
 * says the file is; when given it must agree with the file's first bytes.
 */
export async function recomputeEssence(file: string, format: string | undefined, method: string): Promise<string | null> {
  const parsed = parseEssenceMethod(method);
  if (!parsed) return null;
  const sniffed = await sniffFile(file);
  if (sniffed === null || !FAMILY[parsed.id].has(sniffed)) {
    throw new KluisError('E_ESSENCE_FORMAT', `${parsed.id} does not apply to this file: it is ${sniffed ?? 'of no format kluis knows'} by its first bytes`, {
      hint: 'the manifest lists a method for another kind of file; treat the object as suspect',
    });
  }
  if (format !== undefined && family(format) !== family(sniffed)) {
    throw new KluisError('E_ESSENCE_FORMAT', `the manifest says ${format}, but the file is ${sniffed} by its first bytes`, {
      hint: 'the manifest and the stored file disagree; treat the object as suspect',
    });
  }
  switch (parsed.id) {
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

async function videoStream(file: string, p: Extract<ParsedEssenceMethod, { id: 'ffmpeg-framehash-sha256' }>): Promise<string> {
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
