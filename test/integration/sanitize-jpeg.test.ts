/**
 * JPEG walker and sanitizer on generated fixtures (test/fixtures/generated/README.md): each case
 * the real files lack — IPTC, COM, XMP, a second image after EOI, ExifTool-written GPS, EXIF
 * orientation 6, ICC — plus broken files that must fail closed and leave no output.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { sanitizeFile, sniff } from '../../src/sanitize/index.js';
import { minimalOrientationApp1, readOrientation } from '../../src/sanitize/jpeg/exif-orientation.js';
import { sanitizeJpegBytes } from '../../src/sanitize/jpeg/sanitize.js';
import { walkJpeg } from '../../src/sanitize/jpeg/walker.js';
import { scrubThermalApp4, serialLikeStrings } from '../../src/sanitize/jpeg/thermal.js';
import { decodedPixelSha256 } from '../../src/sanitize/verify/tools.js';

const GEN = path.resolve('test/fixtures/generated');
const out = mkdtempSync(path.join(tmpdir(), 'kluis-jpeg-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const exiftool = (f: string): Record<string, unknown> => JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', f]).toString())[0];
const fakeSerials = (bytes: Buffer): string[] => [...new Set(bytes.toString('latin1').match(/KLUISGEN\d{4}/g) ?? [])];

describe('walker', () => {
  test('finds every segment, the scan end, the EOI and the bytes after it', () => {
    const buf = readFileSync(path.join(GEN, 'after-eoi.jpg'));
    const l = walkJpeg(buf);
    expect(buf[l.eoiOffset]).toBe(0xff);
    expect(buf[l.eoiOffset + 1]).toBe(0xd9);
    expect(l.trailing).toBe(readFileSync(path.join(GEN, 'base.jpg')).length + 0 > 0 ? buf.length - l.eoiOffset - 2 : -1);
    expect(l.trailing).toBeGreaterThan(1000);
    const sos = l.segments.find((s) => s.marker === 0xda)!;
    expect(sos.end).toBe(l.eoiOffset);
  });
  test('sniff recognises JPEG by magic bytes only', () => {
    expect(sniff(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniff(Uint8Array.from([0xff, 0xd8, 0x00, 0xe0]))).toBe(null);
  });
});

describe('sanitizeFile on generated JPEGs', () => {
  test.each(['tagged.jpg', 'after-eoi.jpg', 'base.jpg'])('%s: no GPS, serial, IPTC, COM, XMP, thumbnail or second image remains', async (name) => {
    const input = path.join(GEN, name);
    const before = readFileSync(input);
    const serials = fakeSerials(before);
    if (name !== 'base.jpg') expect(serials.length).toBeGreaterThan(0);
    const output = path.join(out, name);
    const res = await sanitizeFile(input, output, { thermal: 'keep' });
    const bytes = readFileSync(output);
    for (const s of serials) expect(bytes.includes(Buffer.from(s))).toBe(false);
    const t = exiftool(output);
    expect(Object.keys(t).filter((k) => !/^(SourceFile|ExifTool|System|File|JFIF|Composite):/.test(k) && k !== 'SourceFile')).toEqual([]);
    expect(t['File:Comment']).toBeUndefined();
    expect(Object.keys(t).filter((k) => /GPS/.test(k))).toEqual([]);
    expect(walkJpeg(bytes).trailing).toBe(0);
    const whats = new Set(res.removed.map((r) => r.what));
    expect(whats.has('comment')).toBe(true); // ffmpeg's own COM
    if (name === 'tagged.jpg') for (const w of ['exif', 'iptc', 'vendor-xmp']) expect(whats.has(w)).toBe(true);
    if (name === 'after-eoi.jpg') expect(whats.has('second-image')).toBe(true);
  });

  test('EXIF orientation 6 is carried over in a minimal EXIF written by kluis, pixels unchanged', async () => {
    const input = path.join(GEN, 'orient6.jpg');
    const output = path.join(out, 'orient6.jpg');
    const res = await sanitizeFile(input, output, { thermal: 'keep' });
    const t = exiftool(output);
    expect(t['IFD0:Orientation']).toBe('Rotate 90 CW');
    expect(Object.keys(t).filter((k) => k.startsWith('IFD0:') || k.startsWith('ExifIFD:'))).toEqual(['IFD0:Orientation']);
    expect(readFileSync(output).includes(Buffer.from('KLUISGEN0006'))).toBe(false);
    expect(res.kept.some((k) => k.includes('Orientation=6'))).toBe(true);
    // The recorded proof (coded bytes) holds, and a full decode of both files by ffmpeg, without
    // applying the orientation, gives the same pixels.
    const proof = res.essence.find((e) => e.method === 'jpeg-decoder-segments-sha256')!;
    expect(proof.after).toBe(proof.before);
    expect((await decodedPixelSha256(output)).sha256).toBe((await decodedPixelSha256(input)).sha256);
  });

  test('a colour-only ICC profile is kept and named in the result', async () => {
    const output = path.join(out, 'icc.jpg');
    const res = await sanitizeFile(path.join(GEN, 'icc.jpg'), output, { thermal: 'keep' });
    expect(res.kept.some((k) => k.startsWith('APP2/ICC_PROFILE'))).toBe(true);
    expect(Object.keys(exiftool(output)).some((k) => k.startsWith('ICC-header:'))).toBe(true);
  });

  test.each([
    ['truncated.jpg', 'E_SANITIZE_TRUNCATED'],
    ['bad-length.jpg', 'E_SANITIZE_TRUNCATED'],
    ['unknown-marker.jpg', 'E_SANITIZE_PARSE'],
  ])('%s fails closed with %s and leaves no output', async (name, code) => {
    const output = path.join(out, `fail-${name}`);
    const err = await sanitizeFile(path.join(GEN, name), output, { thermal: 'keep' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KluisError);
    expect((err as KluisError).code).toBe(code);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(out).filter((f) => f.includes('kluis-tmp'))).toEqual([]);
  });

  test('a file of another format is E_SANITIZE_UNSUPPORTED', async () => {
    const err = await sanitizeFile(path.join(GEN, 'README.md'), path.join(out, 'readme'), { thermal: 'keep' }).catch((e: unknown) => e);
    expect((err as KluisError).code).toBe('E_SANITIZE_UNSUPPORTED');
  });
});

describe('pieces', () => {
  test('minimal orientation EXIF round-trips through the reader and holds nothing else', () => {
    for (let o = 1; o <= 8; o++) {
      const seg = minimalOrientationApp1(o);
      expect(readOrientation(seg.subarray(4))).toBe(o);
      expect(seg.length).toBe(4 + 6 + 26);
    }
  });

  test('DJI thermal APP4 device header: serial, firmware and build id are blanked, parameters untouched', () => {
    const p = new Uint8Array(0x600);
    p.set([0xaa, 0x55, 0x12, 0x06], 0);
    p.set([1, 2, 3, 4], 0x24);
    p.set([0x55, 0xaa, 0x12, 0x06], 0x500);
    p.set(Buffer.from('1WADH7R0000217'), 0x504);
    p.set(Buffer.from('v04.00.00.00'), 0x544);
    p.set(Buffer.from('ZZZZ'), 0x5c4);
    const r = scrubThermalApp4(p);
    expect(r.kind).toBe('scrubbed');
    if (r.kind !== 'scrubbed') return;
    expect(r.blanked.map((b) => b.text)).toEqual(['1WADH7R0000217', 'v04.00.00.00']);
    expect(Buffer.from(r.payload.subarray(0, 0x504))).toEqual(Buffer.from(p.subarray(0, 0x504)));
    expect(Buffer.from(r.payload.subarray(0x5c4, 0x5c8)).toString()).toBe('ZZZZ');
    expect(serialLikeStrings(r.payload)).toEqual([]);
    expect(serialLikeStrings(p).map((x) => x.text)).toEqual(['1WADH7R0000217']);
  });

  test('DJI iirp thermal APP4 (H30T layout): the IDString at 0x85 is blanked, every other byte kept', () => {
    const p = new Uint8Array(1280);
    p.set([0xff, 0xd2, 0xd1, 0xff, 0x69, 0x69, 0x72, 0x70], 0);
    p.set([0x00, 0x00, 0xa2, 0x41, 0x00, 0x00, 0x80, 0x3f], 0x20); // ambient 20.25 C, emissivity 1.0
    p.set(Buffer.from('G1280S_24D010SWR'), 0x85);
    p.set([0x03, 0x1d, 0x00, 0x36], 0x95);
    const r = scrubThermalApp4(p);
    expect(r.kind).toBe('scrubbed');
    if (r.kind !== 'scrubbed') return;
    expect(r.blanked).toEqual([{ field: 'IDString', offset: 0x85, text: 'G1280S_24D010SWR' }]);
    expect(Buffer.from(r.payload.subarray(0x85, 0x95))).toEqual(Buffer.alloc(16));
    expect(Buffer.from(r.payload.subarray(0, 0x85))).toEqual(Buffer.from(p.subarray(0, 0x85)));
    expect(Buffer.from(r.payload.subarray(0x95))).toEqual(Buffer.from(p.subarray(0x95)));
  });

  test('DJI ThermalParams2 without the iirp prefix (M2EA layout): the IDString at 0x65 is blanked', () => {
    const p = new Uint8Array(224);
    p.set([0x2c, 0x01, 0x20, 0x00], 0x20);
    p.set(Buffer.from('Mini_640'), 0x65);
    const r = scrubThermalApp4(p);
    expect(r.kind === 'scrubbed' && r.blanked.map((b) => [b.offset, b.text])).toEqual([[0x65, 'Mini_640']]);
    // An all-NUL IDString (M4T) leaves the segment as it is.
    const empty = new Uint8Array(1280);
    empty.set([0xff, 0xd2, 0xd1, 0xff, 0x69, 0x69, 0x72, 0x70], 0);
    expect(scrubThermalApp4(empty).kind).toBe('unchanged');
  });

  test('thermal APP4 with unknown data after 0x500 is refused', () => {
    const p = new Uint8Array(0x600);
    p.set([0xaa, 0x55, 0x12, 0x06], 0);
    expect(scrubThermalApp4(p).kind).toBe('refuse');
  });

  test('untyped APP3/APP4 are kept as thermal data only beside a DJI thermal parameter block', () => {
    const base = readFileSync(path.join(GEN, 'base.jpg'));
    const seg = (m: number, body: Uint8Array): Buffer => Buffer.concat([Buffer.from([0xff, m, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body]);
    const raw = new Uint8Array(512).map((_, i) => (i * 37) & 0xff); // binary, no text runs
    const unknownParams = new Uint8Array(256).fill(7);
    const iirp = new Uint8Array(256);
    iirp.set([0xff, 0xd2, 0xd1, 0xff, 0x69, 0x69, 0x72, 0x70], 0);
    const withParams = (params: Uint8Array): Buffer => Buffer.concat([base.subarray(0, 2), seg(0xe3, raw), seg(0xe4, params), base.subarray(2)]);

    const unknown = sanitizeJpegBytes(withParams(unknownParams), { thermal: 'keep' });
    expect(Buffer.from(unknown.bytes).includes(Buffer.from(raw))).toBe(false);
    expect(unknown.removed.filter((r) => r.what === 'thermal').map((r) => r.where.slice(0, 4))).toEqual(['APP3', 'APP4']);
    expect(unknown.kept.filter((k) => k.includes('thermal'))).toEqual([]);

    const dji = sanitizeJpegBytes(withParams(iirp), { thermal: 'keep' });
    expect(Buffer.from(dji.bytes).includes(Buffer.from(raw))).toBe(true);
    expect(dji.kept.filter((k) => k.includes('thermal'))).toHaveLength(2);
  });

  test('typed APP3 segments (ASCII identifier) are never kept as thermal data', () => {
    const base = readFileSync(path.join(GEN, 'base.jpg'));
    const app3 = Buffer.concat([Buffer.from([0xff, 0xe3, 0x00, 0x0e]), Buffer.from('Meta\0\0serial')]);
    const buf = Buffer.concat([base.subarray(0, 2), app3, base.subarray(2)]);
    const r = sanitizeJpegBytes(buf, { thermal: 'keep' });
    expect(Buffer.from(r.bytes).includes(Buffer.from('Meta\0'))).toBe(false);
    expect(r.removed.some((x) => x.where === 'APP3')).toBe(true);
  });
});
