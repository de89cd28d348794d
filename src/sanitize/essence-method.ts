/**
 * Essence methods as data: which ids exist, what a recorded entry's method is (this build's
 * structured form or an older string), and an entry in words. Pure: it reads no file and imports
 * no reader, so the sanitizers and verify can both use it (./essence.ts recomputes).
 *
 * A method is `{ method: ID }` and the parameters the id takes (EssenceMethod in ./types.ts), e.g.
 * `{ method: 'mp4-samples-sha256', track: 1 }`; `about` beside it is for people. The ids:
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
 *   ffmpeg-framehash-sha256, stream N         per-packet hash of stream N of the sanitized file
 *                                             (MP4/MOV); N is the stream's index in that file.
 *                                             Written by the ffmpeg stream copy (until the own
 *                                             rewriter; now only its fallback)
 *   mp4-samples-sha256, track N               the sample bytes, descriptions, timing and edit
 *                                             tables of the track with track_ID N (MP4/MOV;
 *                                             src/sanitize/video/proof.ts); N is the same in the
 *                                             card file and the sanitized file
 *
 * Older manifests hold each method as one string, `ID[:PARAM][ human text]`: PARAM is `t<N>`
 * (mp4-samples-sha256) or `s<N>` (ffmpeg-framehash-sha256), and everything after the first space
 * is for people and is not read - except in the one legacy form below. Such strings are still
 * read (`parseEssenceMethod`) and give the same structured method.
 *
 * Legacy: before the `:s<N>` parameter existed, video proofs read
 * "ffmpeg-framehash-sha256 per packet, stream <I> (<kind> <codec>, <P> packets, <B> bytes)", where
 * I is the index in the *card* file; ./essence.ts finds that stream by kind, codec and counts.
 */
import { KluisError } from '../errors.js';
import type { EssenceAbout, EssenceMethod } from './types.js';

export const ESSENCE_METHOD_IDS = [
  'jpeg-decoder-segments-sha256',
  'decoded-pixels-sha256',
  'jpeg-scan-sha256',
  'tiff-image-data-and-decoding-tags-sha256',
  'ffmpeg-framehash-sha256',
  'mp4-samples-sha256',
] as const;
export type EssenceMethodId = (typeof ESSENCE_METHOD_IDS)[number];

/** A method as it can be recomputed: this build's methods, the older ids, and the legacy video form. */
export type ParsedEssenceMethod =
  | EssenceMethod
  | { method: 'decoded-pixels-sha256' }
  | { method: 'jpeg-scan-sha256' }
  /** The legacy video form: the stream is found by kind, codec and counts (see the module comment). */
  | { method: 'ffmpeg-framehash-sha256'; legacy: { inputIndex: number; kind: 'video' | 'audio'; codec: string; packets: number; bytes: number } };

/** An essence entry as a manifest holds it: this build's structured form, or an older string form in `method`. */
export interface RecordedEssence {
  method: string;
  [field: string]: unknown;
}

const METHOD = /^([a-z0-9]+(?:-[a-z0-9]+)*)(?::([A-Za-z0-9]+))?(?: (.*))?$/s;
const PLAIN_ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const LEGACY_FRAMEHASH = /^per packet, stream (\d+) \((video|audio) ([A-Za-z0-9_]+), (\d+) packets, (\d+) bytes\)$/;

function isKnownId(id: string): id is EssenceMethodId {
  return (ESSENCE_METHOD_IDS as readonly string[]).includes(id);
}

function badMethod(method: string, why: string): KluisError {
  return new KluisError('E_ESSENCE_METHOD', `essence method "${method.slice(0, 120)}": ${why}`, {
    hint: 'the manifest was written by a kluis version whose essence methods this build does not read; verify with that version',
  });
}

const isTrackId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 0xffffffff;
const isStreamIndex = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 9999;

/**
 * The method of a recorded essence entry: the structured form (`{ method: ID, track | stream }`),
 * or, when `method` is an older string with a parameter or text, that string read by
 * `parseEssenceMethod`. Null when the id is not one this build knows; E_ESSENCE_METHOD for a known
 * id whose parameters it cannot read.
 */
export function essenceMethodOf(e: RecordedEssence | string): ParsedEssenceMethod | null {
  if (typeof e === 'string') return parseEssenceMethod(e);
  if (!PLAIN_ID.test(e.method)) return parseEssenceMethod(e.method);
  if (!isKnownId(e.method)) return null;
  switch (e.method) {
    case 'mp4-samples-sha256':
      if (!isTrackId(e.track)) throw badMethod(e.method, `track ${JSON.stringify(e.track) ?? 'missing'} is not a track id`);
      return { method: e.method, track: e.track };
    case 'ffmpeg-framehash-sha256':
      if (!isStreamIndex(e.stream)) throw badMethod(e.method, `stream ${JSON.stringify(e.stream) ?? 'missing'} is not a stream index`);
      return { method: e.method, stream: e.stream };
    default:
      return { method: e.method };
  }
}

/**
 * An older method string (`ID[:PARAM][ text]`) as a structured method; null when the id is not one
 * this build knows. Throws E_ESSENCE_METHOD for a known id whose parameter (or legacy text) it
 * cannot read.
 */
export function parseEssenceMethod(method: string): ParsedEssenceMethod | null {
  const m = METHOD.exec(method);
  if (!m || !isKnownId(m[1]!)) return null;
  const id = m[1] as EssenceMethodId;
  const param = m[2];
  if (id === 'mp4-samples-sha256') {
    const t = param === undefined ? null : /^t([1-9][0-9]{0,9})$/.exec(param);
    if (!t || Number(t[1]) > 0xffffffff) throw badMethod(method, `parameter "${param ?? ''}" is not t<track id>`);
    return { method: id, track: Number(t[1]) };
  }
  if (id !== 'ffmpeg-framehash-sha256') {
    if (param !== undefined) throw badMethod(method, `${id} takes no parameter, got "${param}"`);
    return { method: id };
  }
  if (param !== undefined) {
    const s = /^s(0|[1-9][0-9]{0,3})$/.exec(param);
    if (!s) throw badMethod(method, `parameter "${param}" is not s<stream index>`);
    return { method: id, stream: Number(s[1]) };
  }
  const l = LEGACY_FRAMEHASH.exec(m[3] ?? '');
  if (!l) throw badMethod(method, 'no :s<stream> parameter and not the older "per packet, stream I (kind codec, P packets, B bytes)" form');
  return {
    method: id,
    legacy: { inputIndex: Number(l[1]), kind: l[2] as 'video' | 'audio', codec: l[3]!, packets: Number(l[4]), bytes: Number(l[5]) },
  };
}

/**
 * A recorded essence entry in words, for check names and the report: an older string as it is;
 * the structured form as its id, parameter and what it covers, e.g.
 * "mp4-samples-sha256 track 1 (video h264, 42 samples, 123456 bytes)". Never parsed back.
 */
export function essenceLabel(e: RecordedEssence): string {
  const param = typeof e.track === 'number' ? ` track ${e.track}` : typeof e.stream === 'number' ? ` stream ${e.stream}` : '';
  const a = e.about as Partial<EssenceAbout> | undefined;
  if (!a || typeof a !== 'object') return `${e.method}${param}`;
  const counted = a.samples !== undefined ? `${a.samples} samples, ` : a.packets !== undefined ? `${a.packets} packets, ` : '';
  const card = a.cardStream !== undefined ? `card stream ${a.cardStream}, ` : '';
  return `${e.method}${param} (${card}${a.kind ?? '?'} ${a.codec ?? '?'}, ${counted}${a.bytes ?? '?'} bytes)`;
}
