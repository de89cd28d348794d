/**
 * JPEG segment walker. Promises: returns the exact byte layout of a JPEG (offset and length of
 * every marker segment, where each scan's entropy-coded data ends, where the first EOI is, how
 * many bytes follow it), or throws KluisError E_SANITIZE_PARSE / E_SANITIZE_TRUNCATED. It never
 * guesses: a marker it does not know, a length that points outside the file, a second frame or a
 * missing EOI is an error. Every loop advances by at least one byte, so it always ends.
 */
import { KluisError } from '../../errors.js';

export const M = {
  SOI: 0xd8,
  EOI: 0xd9,
  SOS: 0xda,
  DQT: 0xdb,
  DNL: 0xdc,
  DRI: 0xdd,
  DHT: 0xc4,
  DAC: 0xcc,
  APP0: 0xe0,
  APP1: 0xe1,
  APP2: 0xe2,
  APP3: 0xe3,
  APP4: 0xe4,
  APP5: 0xe5,
  APP14: 0xee,
  COM: 0xfe,
} as const;

/** Start-of-frame markers of the decodable JPEG processes (baseline, extended, progressive, lossless; Huffman and arithmetic). */
export const SOF_MARKERS: ReadonlySet<number> = new Set([
  0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf,
]);

export interface JpegSegment {
  /** Second byte of the marker (0xE1 = APP1, 0xDA = SOS …). */
  marker: number;
  /** Offset of the marker's 0xFF (fill bytes before it are not part of the segment). */
  offset: number;
  /** Offset of the first payload byte (after the 2-byte length field). */
  payloadStart: number;
  /** Offset one past the marker segment proper (for SOS: one past the scan header). */
  payloadEnd: number;
  /** Offset one past everything belonging to the segment (for SOS: past the entropy-coded data). */
  end: number;
}

export interface JpegLayout {
  segments: JpegSegment[];
  /** Offset of the first EOI marker's 0xFF. */
  eoiOffset: number;
  /** Bytes after the first EOI (a second image, padding, vendor data). */
  trailing: number;
  /** Offset of the SOF segment in `segments`. */
  sofIndex: number;
}

function parseError(message: string, offset: number): KluisError {
  return new KluisError('E_SANITIZE_PARSE', `JPEG: ${message} (at byte ${offset})`, {
    hint: 'the file is not a JPEG that kluis can fully account for; it is withheld (fail closed)',
    details: { offset },
  });
}

function truncated(message: string, offset: number): KluisError {
  return new KluisError('E_SANITIZE_TRUNCATED', `JPEG: ${message} (at byte ${offset})`, {
    hint:
      'the file ends before its end-of-image marker, so where the picture data ends cannot be proven; ' +
      'it is withheld (fail closed). Re-export the picture from the camera if you need it.',
    details: { offset },
  });
}

function isStandalone(m: number): boolean {
  return m === M.SOI || m === M.EOI || (m >= 0xd0 && m <= 0xd7) || m === 0x01;
}

/** Known segment markers: SOFn, DHT, DAC, DQT, DNL, DRI, SOS, APPn, COM. Anything else is refused. */
function isKnownSegment(m: number): boolean {
  return (
    SOF_MARKERS.has(m) ||
    m === M.DHT ||
    m === M.DAC ||
    m === M.DQT ||
    m === M.DNL ||
    m === M.DRI ||
    m === M.SOS ||
    (m >= 0xe0 && m <= 0xef) ||
    m === M.COM
  );
}

export function walkJpeg(bytes: Uint8Array): JpegLayout {
  // A Buffer view of the same memory: Buffer#indexOf is memchr, several times faster than
  // Uint8Array#indexOf over megabytes of scan data.
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = buf.length;
  if (len < 4 || buf[0] !== 0xff || buf[1] !== M.SOI) throw parseError('no SOI marker at the start', 0);
  const segments: JpegSegment[] = [];
  let sofIndex = -1;
  let pos = 2;
  for (;;) {
    if (pos >= len) throw truncated('file ends without an EOI marker', pos);
    if (buf[pos] !== 0xff) throw parseError(`expected a marker, found 0x${buf[pos]!.toString(16)}`, pos);
    // Fill bytes (0xFF) may precede a marker.
    while (pos + 1 < len && buf[pos + 1] === 0xff) pos++;
    if (pos + 1 >= len) throw truncated('file ends inside a marker', pos);
    const m = buf[pos + 1]!;
    if (m === M.EOI) {
      if (sofIndex < 0 || !segments.some((s) => s.marker === M.SOS)) throw parseError('EOI before any frame and scan', pos);
      return { segments, eoiOffset: pos, trailing: len - (pos + 2), sofIndex };
    }
    if (isStandalone(m)) throw parseError(`unexpected marker 0xFF${m.toString(16).toUpperCase()} outside a scan`, pos);
    if (!isKnownSegment(m)) throw parseError(`unsupported marker 0xFF${m.toString(16).toUpperCase()}`, pos);
    if (pos + 4 > len) throw truncated('file ends inside a segment length', pos);
    const segLen = (buf[pos + 2]! << 8) | buf[pos + 3]!;
    if (segLen < 2) throw parseError(`segment length ${segLen} is too small`, pos);
    const payloadEnd = pos + 2 + segLen;
    if (payloadEnd > len) throw truncated(`segment 0xFF${m.toString(16).toUpperCase()} runs past the end of the file`, pos);
    let end = payloadEnd;
    validateDecodeSegment(buf, m, pos + 4, payloadEnd);
    if (SOF_MARKERS.has(m)) {
      if (sofIndex >= 0) throw parseError('a second frame header (SOF); only single-frame JPEGs are supported', pos);
      if (segLen < 8) throw parseError('frame header too short', pos);
      sofIndex = segments.length;
    } else if (m === M.SOS) {
      if (sofIndex < 0) throw parseError('scan before frame header', pos);
      if (segLen < 6) throw parseError('scan header too short', pos);
      // Entropy-coded data: runs until a 0xFF that is not stuffing (FF 00) nor a restart marker (FF D0-D7).
      let j = payloadEnd;
      for (;;) {
        const ff = buf.indexOf(0xff, j);
        if (ff < 0 || ff + 1 >= len) throw truncated('scan data runs to the end of the file without an EOI marker', payloadEnd);
        const n = buf[ff + 1]!;
        if (n === 0x00 || (n >= 0xd0 && n <= 0xd7)) {
          j = ff + 2;
          continue;
        }
        end = ff;
        break;
      }
    }
    segments.push({ marker: m, offset: pos, payloadStart: pos + 4, payloadEnd, end });
    pos = end;
  }
}

/**
 * The decode segments are copied as they are, so their payload must be exactly what the standard
 * lays out (ITU T.81 B.2): a table or header with no room for extra bytes. This closes them as a
 * hiding place: an EXIF block relabelled as DQT, say, does not pass.
 */
function validateDecodeSegment(buf: Uint8Array, m: number, start: number, end: number): void {
  const n = end - start;
  const bad = (what: string): never => {
    throw parseError(`${markerName(m)} ${what}`, start - 4);
  };
  if (SOF_MARKERS.has(m)) {
    if (n < 6) bad('too short');
    const nf = buf[start + 5]!;
    if (nf < 1 || n !== 6 + 3 * nf) bad(`length does not match its ${nf} components`);
    const w = (buf[start + 3]! << 8) | buf[start + 4]!;
    if (w === 0) bad('has zero width');
  } else if (m === M.SOS) {
    const ns = buf[start]!;
    if (ns < 1 || ns > 4 || n !== 1 + 2 * ns + 3) bad(`length does not match its ${ns} components`);
  } else if (m === M.DQT) {
    let i = start;
    if (n === 0) bad('is empty');
    while (i < end) {
      const pq = buf[i]! >> 4;
      if (pq > 1 || (buf[i]! & 0x0f) > 3) bad('has an invalid table header');
      i += 1 + (pq ? 128 : 64);
    }
    if (i !== end) bad('length does not match its tables');
  } else if (m === M.DHT) {
    let i = start;
    if (n === 0) bad('is empty');
    while (i < end) {
      if (buf[i]! >> 4 > 1 || (buf[i]! & 0x0f) > 3 || i + 17 > end) bad('has an invalid table header');
      let count = 0;
      for (let k = 1; k <= 16; k++) count += buf[i + k]!;
      if (count > 256) bad('has more than 256 codes');
      i += 17 + count;
    }
    if (i !== end) bad('length does not match its tables');
  } else if (m === M.DRI || m === M.DNL) {
    if (n !== 2) bad('must be 2 bytes');
  } else if (m === M.DAC) {
    if (n === 0 || n % 2 !== 0) bad('length must be a non-zero multiple of 2');
  }
}

/** Payload bytes of a segment (view, no copy). */
export function payload(buf: Uint8Array, s: JpegSegment): Uint8Array {
  return buf.subarray(s.payloadStart, s.payloadEnd);
}

export function startsWithAscii(p: Uint8Array, ascii: string): boolean {
  if (p.length < ascii.length) return false;
  for (let i = 0; i < ascii.length; i++) if (p[i] !== ascii.charCodeAt(i)) return false;
  return true;
}

export function markerName(m: number): string {
  if (m >= 0xe0 && m <= 0xef) return `APP${m - 0xe0}`;
  if (SOF_MARKERS.has(m)) return `SOF${m - 0xc0}`;
  const names: Record<number, string> = { 0xc4: 'DHT', 0xcc: 'DAC', 0xda: 'SOS', 0xdb: 'DQT', 0xdc: 'DNL', 0xdd: 'DRI', 0xfe: 'COM' };
  return names[m] ?? `0xFF${m.toString(16).toUpperCase()}`;
}
