/**
 * The JPEG essence proof `jpeg-decoder-segments-sha256`: SHA-256 over what a JPEG decoder reads to
 * make the picture, so that equal values before and after sanitizing mean the coded picture is
 * byte-identical, and every conforming decoder (ITU T.81) turns both files into the same samples.
 *
 * What it hashes, as framed records (kind byte, 4-byte big-endian length, bytes), in file order:
 * - `jfif` (first, at most once): the first APP0 "JFIF\0" segment of 14+ payload bytes that comes
 *   before the first SOS, as its version, units and X/Y density. Its presence is what tells
 *   libjpeg-style decoders that three components are YCbCr (decided when the first scan starts,
 *   so a JFIF after it does not count); the density is the pixel aspect ratio.
 * - `segment`: every SOFn, DHT, DQT, DAC, DRI and DNL segment and every SOS segment with its
 *   entropy-coded data (RSTn included), byte for byte with marker and length. Order is kept:
 *   tables may be redefined between scans, and the SOF marker names the coding process.
 * - `adobe`: every APP14 "Adobe" segment of 12+ payload bytes, where it stands, as its colour
 *   transform byte: it decides YCbCr/YCCK versus RGB/CMYK, and its presence marks Adobe-inverted
 *   CMYK. Version and flags change no decoder's output.
 *
 * Not hashed, because no decoder reads it to make the samples: fill bytes before markers, COM,
 * every other APPn (EXIF incl. Orientation, which a viewer applies after decoding; ICC, which a
 * colour-managed viewer applies to the decoded samples; XMP, MPF, thermal data, JPEG XT/gain-map
 * extension layers), and anything after EOI. The walker refuses what could hold a second picture
 * in the same stream (a second SOF, DHP/EXP of hierarchical mode, unknown markers), so one frame
 * is all there is. docs/sanitize-policy.md says why this suffices as a proof.
 *
 * Pure functions over bytes in memory; throws what walkJpeg throws on a file it cannot walk.
 */
import { createHash } from 'node:crypto';
import { M, SOF_MARKERS, payload, startsWithAscii, walkJpeg, type JpegLayout } from './walker.js';

export const JPEG_DECODER_SEGMENTS_SHA256 = 'jpeg-decoder-segments-sha256';

const KIND = { jfif: 0x01, segment: 0x02, adobe: 0x03 } as const;
const DECODE = new Set<number>([M.DQT, M.DHT, M.DAC, M.DRI, M.DNL, M.SOS, ...SOF_MARKERS]);
const DOMAIN = Buffer.from('kluis jpeg-decoder-segments v1\n', 'latin1');

/** One record before framing; `body` is a view into the file, never a copy. */
export interface DecoderRecord {
  kind: keyof typeof KIND;
  body: Uint8Array;
}

/** Whether an APP0 payload is a JFIF header a decoder acts on (libjpeg: 14+ bytes). */
export function isJfifHeader(p: Uint8Array): boolean {
  return p.length >= 14 && startsWithAscii(p, 'JFIF\0');
}

/** Whether an APP14 payload is an Adobe segment a decoder acts on (libjpeg: 12+ bytes). */
export function isAdobeHeader(p: Uint8Array): boolean {
  return p.length >= 12 && startsWithAscii(p, 'Adobe');
}

/** The decoder records of a JPEG, in the order they are hashed. */
export function jpegDecoderRecords(buf: Uint8Array, layout: JpegLayout = walkJpeg(buf)): DecoderRecord[] {
  const records: DecoderRecord[] = [];
  let jfif: Uint8Array | undefined;
  let scanSeen = false;
  for (const s of layout.segments) {
    const m = s.marker;
    if (DECODE.has(m)) {
      if (m === M.SOS) scanSeen = true;
      records.push({ kind: 'segment', body: buf.subarray(s.offset, s.end) });
      continue;
    }
    const p = payload(buf, s);
    if (m === M.APP0 && !scanSeen && jfif === undefined && isJfifHeader(p)) jfif = p.subarray(5, 12);
    else if (m === M.APP14 && isAdobeHeader(p)) records.push({ kind: 'adobe', body: p.subarray(11, 12) });
  }
  if (jfif) records.unshift({ kind: 'jfif', body: jfif });
  return records;
}

/** SHA-256 of framed records (see the module comment). */
export function hashDecoderRecords(records: readonly DecoderRecord[]): string {
  const h = createHash('sha256');
  h.update(DOMAIN);
  const head = Buffer.alloc(5);
  for (const r of records) {
    head[0] = KIND[r.kind];
    head.writeUInt32BE(r.body.length, 1);
    h.update(head);
    h.update(r.body);
  }
  return h.digest('hex');
}

/** `jpeg-decoder-segments-sha256` of a whole JPEG file's bytes. */
export function jpegDecoderSegmentsSha256(buf: Uint8Array, layout?: JpegLayout): string {
  return hashDecoderRecords(jpegDecoderRecords(buf, layout));
}

/**
 * Whether two record lists are byte-for-byte the same (same kinds, same bytes, same order). Equal
 * lists hash to the same value, so after this holds one hash serves for both files.
 */
export function sameDecoderRecords(a: readonly DecoderRecord[], b: readonly DecoderRecord[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.kind !== y.kind || x.body.length !== y.body.length) return false;
    if (Buffer.compare(Buffer.from(x.body.buffer, x.body.byteOffset, x.body.byteLength), Buffer.from(y.body.buffer, y.body.byteOffset, y.body.byteLength)) !== 0) return false;
  }
  return true;
}
