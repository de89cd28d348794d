/**
 * The JPEG essence proof `jpeg-decoder-segments-sha256` (src/sanitize/jpeg/decoder-segments.ts):
 * it changes when any byte a decoder reads changes (a DQT value, a DHT, a SOF dimension or the SOF
 * type, a DRI, the Adobe colour transform, JFIF presence, a scan byte, the order of tables and
 * scans), it does not change when only metadata changes (COM, EXIF, XMP, ICC, JFIF thumbnail,
 * Adobe version/flags, fill bytes, bytes after EOI), and the sanitizer's real outputs give the
 * card file's value when each side is hashed on its own. (What sanitizeStream records, and that a
 * file whose sanitizing would move a JFIF header in front of its first scan fails closed:
 * test/integration/sanitize-stream-image.test.ts.)
 */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { jpegDecoderSegmentsSha256 } from '../../src/sanitize/jpeg/decoder-segments.js';
import { sanitizeJpegBytes } from '../../src/sanitize/jpeg/sanitize.js';
import { M, walkJpeg, type JpegSegment } from '../../src/sanitize/jpeg/walker.js';

const GEN = path.resolve('test/fixtures/generated');
const REAL = path.resolve('test/fixtures/real/image');
const base = readFileSync(path.join(GEN, 'base.jpg')); // APP0 JFIF, COM, DQT, DHT, SOF0, SOS
const m3 = readFileSync(path.join(REAL, 'mavic3pro_xmp.jpg')); // APP0, APP1 EXIF, DQT x2, SOF0, DHT x4, SOS

const hash = (b: Uint8Array): string => jpegDecoderSegmentsSha256(b);

function seg(marker: number, body: Uint8Array | string): Buffer {
  const p = typeof body === 'string' ? Buffer.from(body, 'latin1') : Buffer.from(body);
  const h = Buffer.from([0xff, marker, 0, 0]);
  h.writeUInt16BE(p.length + 2, 2);
  return Buffer.concat([h, p]);
}

function first(buf: Buffer, marker: number): JpegSegment {
  const s = walkJpeg(buf).segments.find((x) => x.marker === marker);
  if (!s) throw new Error(`no marker ${marker.toString(16)}`);
  return s;
}

function insertAt(buf: Buffer, at: number, bytes: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at)]);
}

function removeSeg(buf: Buffer, s: JpegSegment): Buffer {
  return Buffer.concat([buf.subarray(0, s.offset), buf.subarray(s.end)]);
}

function flip(buf: Buffer, at: number, mask = 0x01): Buffer {
  const b = Buffer.from(buf);
  b[at] = b[at]! ^ mask;
  return b;
}

/** An Adobe APP14 payload: "Adobe", version 100, flags0, flags1, transform. */
function adobe(transform: number, version = 100, flags0 = 0): Buffer {
  const p = Buffer.alloc(12);
  p.write('Adobe', 0, 'latin1');
  p.writeUInt16BE(version, 5);
  p.writeUInt16BE(flags0, 7);
  p[11] = transform;
  return p;
}

describe('changes when a byte a decoder reads changes', () => {
  const h0 = hash(base);
  test('a DQT value', () => {
    const dqt = first(base, M.DQT);
    expect(hash(flip(base, dqt.payloadStart + 10))).not.toBe(h0);
  });
  test('a DHT code count and a DHT symbol', () => {
    const dht = first(base, M.DHT);
    // A symbol value (the counts stay, so the segment still walks).
    expect(hash(flip(base, dht.payloadEnd - 1))).not.toBe(h0);
    // Two code-length counts traded (same total, different code).
    const b = Buffer.from(base);
    const c1 = dht.payloadStart + 1;
    [b[c1], b[c1 + 1]] = [b[c1 + 1]!, b[c1]!];
    if (b[c1] !== base[c1]) expect(hash(b)).not.toBe(h0);
  });
  test('the SOF width, height, sampling, and the SOF type (coding process)', () => {
    const sof = first(base, 0xc0);
    expect(hash(flip(base, sof.payloadStart + 4))).not.toBe(h0); // width low byte
    expect(hash(flip(base, sof.payloadStart + 2))).not.toBe(h0); // height low byte
    expect(hash(flip(base, sof.payloadStart + 7, 0x10))).not.toBe(h0); // first component's H sampling
    const progressive = Buffer.from(base);
    progressive[sof.offset + 1] = 0xc2;
    expect(hash(progressive)).not.toBe(h0);
  });
  test('a scan byte (first, middle, last of the entropy-coded data) and the scan header', () => {
    const sos = first(base, M.SOS);
    for (const at of [sos.payloadEnd, Math.floor((sos.payloadEnd + sos.end) / 2), sos.end - 1]) {
      if (base[at] === 0xff || base[at] === 0xfe) continue; // keep the walk valid
      expect(hash(flip(base, at)), `byte ${at}`).not.toBe(h0);
    }
    expect(hash(flip(base, sos.payloadStart + 2))).not.toBe(h0); // table selectors
  });
  test('a DRI added, or its interval changed', () => {
    const sos = first(base, M.SOS);
    const withDri = insertAt(base, sos.offset, seg(M.DRI, Buffer.from([0, 4])));
    expect(hash(withDri)).not.toBe(h0);
    expect(hash(insertAt(base, sos.offset, seg(M.DRI, Buffer.from([0, 5]))))).not.toBe(hash(withDri));
  });
  test('the Adobe colour transform, and the presence of an Adobe segment', () => {
    const at = first(base, M.DQT).offset;
    const t1 = insertAt(base, at, seg(M.APP14, adobe(1)));
    const t0 = insertAt(base, at, seg(M.APP14, adobe(0)));
    expect(hash(t1)).not.toBe(h0);
    expect(hash(t0)).not.toBe(hash(t1));
  });
  test('the JFIF header: present or not, and its density (pixel aspect)', () => {
    const app0 = first(base, M.APP0);
    expect(hash(removeSeg(base, app0))).not.toBe(h0);
    expect(hash(flip(base, app0.payloadStart + 9))).not.toBe(h0); // Xdensity low byte
  });
  test('the order of tables and scan', () => {
    const dqt = first(base, M.DQT);
    const dht = first(base, M.DHT);
    const swapped = Buffer.concat([base.subarray(0, dqt.offset), base.subarray(dht.offset, dht.end), base.subarray(dqt.offset, dqt.end), base.subarray(dht.end)]);
    expect(walkJpeg(swapped).segments.length).toBe(walkJpeg(base).segments.length);
    expect(hash(swapped)).not.toBe(h0);
  });
});

describe('does not change when only metadata changes', () => {
  const h0 = hash(m3);
  test('EXIF, XMP, COM, ICC added, changed or removed', () => {
    const exif = first(m3, M.APP1);
    const noExif = removeSeg(m3, exif);
    expect(hash(noExif)).toBe(h0);
    expect(hash(flip(m3, exif.payloadStart + 100))).toBe(h0);
    const at = first(m3, M.DQT).offset;
    expect(hash(insertAt(m3, at, seg(M.APP1, 'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>serial</x:xmpmeta>')))).toBe(h0);
    expect(hash(insertAt(m3, at, seg(M.COM, 'a comment')))).toBe(h0);
    expect(hash(insertAt(m3, at, seg(M.APP2, Buffer.concat([Buffer.from('ICC_PROFILE\0\x01\x01', 'latin1'), Buffer.alloc(200)]))))).toBe(h0);
    expect(hash(insertAt(m3, at, seg(0xe7, 'DJI-DBG\0[sensor_id:4X9SJBK02AA04M]')))).toBe(h0);
  });
  test('a JFIF thumbnail, a second JFIF after the first, a JFXX', () => {
    const app0 = first(base, M.APP0);
    const p = Buffer.from(base.subarray(app0.payloadStart, app0.payloadEnd));
    const withThumb = Buffer.concat([p.subarray(0, 12), Buffer.from([1, 1]), Buffer.from([1, 2, 3])]);
    const b = Buffer.concat([base.subarray(0, app0.offset), seg(M.APP0, withThumb), base.subarray(app0.end)]);
    expect(hash(b)).toBe(hash(base));
    expect(hash(insertAt(base, app0.end, seg(M.APP0, Buffer.concat([Buffer.from('JFIF\0\x01\x02\x00\x00\x48\x00\x48', 'latin1'), Buffer.from([0, 0])]))))).toBe(hash(base));
    expect(hash(insertAt(base, app0.end, seg(M.APP0, 'JFXX\0\x10thumbnail')))).toBe(hash(base));
  });
  test('Adobe version and flags (not the transform); an APP14 too short to act', () => {
    const at = first(base, M.DQT).offset;
    const a = insertAt(base, at, seg(M.APP14, adobe(1, 100, 0)));
    expect(hash(insertAt(base, at, seg(M.APP14, adobe(1, 101, 0x8000))))).toBe(hash(a));
    expect(hash(insertAt(base, at, seg(M.APP14, 'Adobe\0\x64')))).toBe(hash(base));
  });
  test('fill bytes before a marker, and bytes after EOI', () => {
    const dqt = first(base, M.DQT);
    expect(hash(insertAt(base, dqt.offset, Buffer.from([0xff, 0xff, 0xff])))).toBe(hash(base));
    expect(hash(Buffer.concat([base, Buffer.from('trailing SERIAL123 bytes')]))).toBe(hash(base));
  });
});

describe('the sanitizer keeps it', () => {
  const jpegs = [
    ...readdirSync(REAL).filter((f) => /\.jpe?g$/i.test(f) && f !== 'DJI_XTS.jpg').map((f) => `real/image/${f}`),
    ...['base.jpg', 'tagged.jpg', 'after-eoi.jpg', 'orient6.jpg', 'icc.jpg'].map((f) => `generated/${f}`),
  ];
  test.each(jpegs)('%s: input and output, each hashed on its own, give the same value (both thermal policies)', (f) => {
    const input = readFileSync(path.resolve('test/fixtures', f));
    for (const thermal of ['keep', 'remove'] as const) {
      let out;
      try {
        out = sanitizeJpegBytes(input, { thermal });
      } catch (err) {
        expect(err).toBeInstanceOf(KluisError); // a refusal is not a round trip; the other policy must give one
        continue;
      }
      if (out.removed.length) expect(Buffer.compare(Buffer.from(out.bytes), input)).not.toBe(0);
      expect(hash(out.bytes), thermal).toBe(hash(input));
    }
  });
});
