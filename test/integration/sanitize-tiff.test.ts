/**
 * TIFF/DNG sanitizer: rebuilt files keep only allow-listed tags and byte-identical image data,
 * lose GPS/XMP/IPTC/serials/make/model, sniff as DNG when DNGVersion is present, and broken IFDs
 * fail closed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { sanitizeFile, sniff, sniffFile } from '../../src/sanitize/index.js';
import { TIFF_KEEP_TAGS, readTiff } from '../../src/sanitize/tiff/ifd.js';
import { sanitizeTiffBytes } from '../../src/sanitize/tiff/sanitize.js';
import { decodedPixelSha256 } from '../../src/sanitize/verify/tools.js';

const GEN = path.resolve('test/fixtures/generated');
const REAL = path.resolve('test/fixtures/real/image');
const out = mkdtempSync(path.join(tmpdir(), 'kluis-tiff-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
const exiftool = (f: string): Record<string, unknown> => JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', f]).toString())[0];

describe('TIFF', () => {
  test('radiometric XT2 TIFF: strip bytes copied exactly, only allow-listed tags left', () => {
    const buf = readFileSync(path.join(REAL, 'xt2_radiometric.tiff'));
    const r = sanitizeTiffBytes(buf);
    const t = readTiff(r.bytes);
    for (const ifd of t.ifds) for (const e of ifd.entries) expect(TIFF_KEEP_TAGS.has(e.tag)).toBe(true);
    // the single 655360-byte strip (640x512x16 bit) at offset 8 in the original
    const strip = buf.subarray(8, 8 + 655360);
    expect(Buffer.from(r.bytes).includes(strip)).toBe(true);
    const wheres = r.removed.map((x) => x.where);
    for (const w of ['IFD0/Make', 'IFD0/Model', 'IFD0/Software', 'IFD0/XMP', 'IFD0/GPS', 'IFD0/CameraSerialNumber']) expect(wheres).toContain(w);
  });

  test.each(['tagged.tiff', 'tagged-dng.tiff'])('%s: no GPS, XMP, IPTC, serial, make/model after sanitizeFile', async (name) => {
    const input = path.join(GEN, name);
    const output = path.join(out, name);
    const res = await sanitizeFile(input, output, { thermal: 'keep' });
    const bytes = readFileSync(output);
    for (const s of readFileSync(input).toString('latin1').match(/KLUISGEN\d{4}/g) ?? []) expect(bytes.includes(Buffer.from(s))).toBe(false);
    const t = exiftool(output);
    expect(Object.keys(t).filter((k) => /GPS|XMP|IPTC|Serial|Make|Model|Software|ExifIFD/.test(k))).toEqual([]);
    for (const e of res.essence) expect(e.after).toBe(e.before);
    expect(res.essence.map((e) => e.method)).toEqual(['tiff-image-data-and-decoding-tags-sha256']);
    // Ingest no longer decodes both files; the pixels are still equal when ffmpeg decodes both here.
    expect((await decodedPixelSha256(output)).sha256).toBe((await decodedPixelSha256(input)).sha256);
    if (name === 'tagged-dng.tiff') {
      expect(res.format).toBe('dng');
      expect(t['IFD0:DNGVersion']).toBe('1.4.0.0');
    }
  });

  test('sniff tells DNG from TIFF by DNGVersion in IFD0', async () => {
    expect(await sniffFile(path.join(GEN, 'tagged-dng.tiff'))).toBe('dng');
    expect(await sniffFile(path.join(GEN, 'tagged.tiff'))).toBe('tiff');
    expect(sniff(Uint8Array.from([0x4d, 0x4d, 0, 42, 0, 0, 0, 0]))).toBe('tiff');
    expect(sniff(Uint8Array.from([0x49, 0x49, 43, 0, 8, 0, 0, 0]))).toBe(null);
  });

  test('an IFD loop and an out-of-file strip fail closed with no output', async () => {
    const buf = Buffer.from(readFileSync(path.join(GEN, 'tagged.tiff')));
    const ifd0 = buf.readUInt32LE(4);
    const n = buf.readUInt16LE(ifd0);
    const loop = Buffer.from(buf);
    loop.writeUInt32LE(ifd0, ifd0 + 2 + n * 12); // next IFD = itself
    const f1 = path.join(out, 'loop.tiff');
    writeFileSync(f1, loop);
    const e1 = await sanitizeFile(f1, path.join(out, 'loop-out.tiff'), { thermal: 'keep' }).catch((e: unknown) => e);
    expect((e1 as KluisError).code).toBe('E_SANITIZE_PARSE');
    expect(existsSync(path.join(out, 'loop-out.tiff'))).toBe(false);

    const far = Buffer.from(buf);
    for (let i = 0; i < n; i++) {
      const e = ifd0 + 2 + i * 12;
      if (far.readUInt16LE(e) === 273) far.writeUInt32LE(buf.length + 100, e + 8);
    }
    expect(() => sanitizeTiffBytes(far)).toThrow(KluisError);
  });
});
