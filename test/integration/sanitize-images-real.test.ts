/**
 * Every still image in test/fixtures/real/image goes through sanitizeFile and is then re-read by
 * readers the sanitizer does not control: ExifTool (run here, on the output), exifr, a raw byte
 * search for every serial listed in SOURCES.md and every serial ExifTool reads from the original,
 * and ffmpeg for the decoded pixels. DJI_XTS.jpg (no final EOI) must fail closed with no output.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import exifr from 'exifr';
import { afterAll, describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { sanitizeFile, sniffFile } from '../../src/sanitize/index.js';

const REAL = path.resolve('test/fixtures/real/image');
const out = mkdtempSync(path.join(tmpdir(), 'kluis-real-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Serials named in SOURCES.md, plus ones found in the files by hand (thermal APP4 device header, APP7 DJI-DBG). */
const LISTED_SERIALS = ['1SFOJ8J0AB0GAM', '297394', '5Z9FKCL1AA2FFS', '0K8TFBK0020618', '1W9DH8R000003K', '0190415185', '4X9SJBK02AA04M', '1WADH7R0000217'];

function exiftool(file: string): Record<string, unknown> {
  return JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', '-n', file], { maxBuffer: 256 << 20 }).toString())[0];
}

function pixels(file: string): string {
  const raw = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-noautorotate', '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-'], { maxBuffer: 512 << 20 });
  return createHash('sha256').update(raw).digest('hex');
}

function serialsIn(tags: Record<string, unknown>): string[] {
  return Object.entries(tags)
    .filter(([k]) => /serial|sensorid/i.test(k))
    .map(([, v]) => String(v).trim())
    .filter((v) => v.length >= 4 && !/^0+$/.test(v));
}

const files = readdirSync(REAL).filter((f) => f !== 'DJI_XTS.jpg');

describe('real vendor images', () => {
  test.each(files)('%s comes out clean with equal pixels', async (name) => {
    const input = path.join(REAL, name);
    const output = path.join(out, name);
    const original = exiftool(input);
    const res = await sanitizeFile(input, output, { thermal: 'keep' });

    expect(res.format).toBe(await sniffFile(input));
    expect(res.sha256).toBe(createHash('sha256').update(readFileSync(output)).digest('hex'));
    for (const e of res.essence) expect(e.after).toBe(e.before);
    expect(pixels(output)).toBe(pixels(input));
    expect(res.checks.map((c) => c.tool).sort()).toEqual(['byte-search', 'exifr', 'exiftool', res.format === 'jpeg' ? 'segment-walker' : 'ifd-walker'].sort());
    for (const c of res.checks) expect(c.found).toEqual([]);

    const bytes = readFileSync(output);
    for (const s of new Set([...LISTED_SERIALS, ...serialsIn(original)])) expect(bytes.includes(Buffer.from(s, 'latin1')), `serial ${s}`).toBe(false);

    const after = exiftool(output);
    const keys = Object.keys(after);
    expect(keys.filter((k) => /GPS|Serial|^IFD0:(Make|Model|Software)|XMP|FLIR|MakerNotes|MPF|IPTC|Photoshop|ExifIFD|IFD1|DJI-DBG|SensorID/i.test(k))).toEqual([]);
    expect(after['File:Comment']).toBeUndefined();
    // Vendor namespaces, as text anywhere in the file.
    for (const ns of ['drone-dji', 'http://ns.adobe.com/xap', 'FLIR', 'ns.flir.com', 'DJI-DBG', 'Exif\0\0II']) expect(bytes.includes(Buffer.from(ns)), ns).toBe(false);

    const ex = (await exifr.parse(output, { gps: true, xmp: true, iptc: true, icc: true, makerNote: true, ifd1: true, userComment: true, multiSegment: true }).catch(() => undefined)) as Record<string, unknown> | undefined;
    const exKeys = Object.keys(ex ?? {});
    expect(exKeys.filter((k) => !['Orientation', ...(res.format === 'jpeg' ? [] : ['ImageWidth', 'ImageHeight', 'BitsPerSample', 'Compression', 'PhotometricInterpretation', 'StripOffsets', 'SamplesPerPixel', 'RowsPerStrip', 'StripByteCounts', 'XResolution', 'YResolution', 'PlanarConfiguration', 'ResolutionUnit', 'SampleFormat'])].includes(k))).toEqual([]);
  });

  test('thermal APP3/4/5 are kept byte for byte except the blanked device identifiers (H20T)', async () => {
    const input = path.join(REAL, 'DJI_H20T.jpg');
    const output = path.join(out, 'h20t-thermal.jpg');
    const res = await sanitizeFile(input, output, { thermal: 'keep' });
    expect(res.kept.some((k) => k.startsWith('APP3/thermal'))).toBe(true);
    expect(res.removed.filter((r) => r.where.startsWith('APP4/DJI thermal device header')).length).toBe(3);
    const bin = (f: string, tag: string): Buffer => execFileSync('exiftool', ['-b', `-${tag}`, f], { maxBuffer: 64 << 20 });
    // ExifTool reads DJI thermal tags only with Make=DJI, so compare the APP3 bytes directly.
    const inBytes = readFileSync(input);
    const outBytes = readFileSync(output);
    const firstApp3 = inBytes.indexOf(Buffer.from([0xff, 0xe3]));
    const chunk = inBytes.subarray(firstApp3, firstApp3 + 65536);
    expect(outBytes.includes(chunk)).toBe(true);
    expect(bin(input, 'ThermalData').length).toBe(655360);
  });

  test('policy thermal=remove drops APP3/4/5', async () => {
    const output = path.join(out, 'm30t-nothermal.jpg');
    const res = await sanitizeFile(path.join(REAL, 'M30T_DJI_0001_R.JPG'), output, { thermal: 'remove' });
    expect(res.kept.filter((k) => k.includes('thermal'))).toEqual([]);
    const bytes = readFileSync(output);
    for (const m of [0xe3, 0xe4, 0xe5]) expect(bytes.includes(Buffer.from([0xff, m]))).toBe(false);
  });

  test('DJI_XTS.jpg (no final EOI) fails closed with E_SANITIZE_TRUNCATED and leaves no output', async () => {
    const output = path.join(out, 'DJI_XTS.jpg');
    const err = await sanitizeFile(path.join(REAL, 'DJI_XTS.jpg'), output, { thermal: 'keep' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KluisError);
    expect((err as KluisError).code).toBe('E_SANITIZE_TRUNCATED');
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(out).filter((f) => f.includes('kluis-tmp'))).toEqual([]);
  });
});
