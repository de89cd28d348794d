/**
 * The copy of a JPEG that ExifTool re-reads leaves out the interiors of its scans
 * (src/sanitize/jpeg/elide.ts). These tests hold it to its promise: ExifTool, run on the copy,
 * reports exactly what it reports on the whole file (real vendor files, sanitized and not, and
 * large pictures where a lot is left out), metadata placed between the scans of a progressive
 * JPEG is still seen, and no cut can make a byte read as a marker.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, test } from 'vitest';
import { SCAN_EDGE, withoutScanInteriors } from '../../src/sanitize/jpeg/elide.js';
import { sanitizeJpegBytes } from '../../src/sanitize/jpeg/sanitize.js';
import { M, walkJpeg } from '../../src/sanitize/jpeg/walker.js';
import { exiftoolCheck } from '../../src/sanitize/verify/image.js';

const REAL = path.resolve('test/fixtures/real/image');
const dir = mkdtempSync(path.join(tmpdir(), 'kluis-elide-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What ExifTool reports (kluis's options), without the tags about the file itself. */
function exiftool(bytes: Uint8Array, name: string): Record<string, unknown> {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  const tags = JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', '-n', file], { maxBuffer: 64 << 20 }).toString())[0] as Record<string, unknown>;
  for (const k of Object.keys(tags)) if (k === 'SourceFile' || k.startsWith('System:') || k === 'File:FileSize') delete tags[k];
  return tags;
}

function markers(bytes: Uint8Array): number[] {
  return walkJpeg(bytes).segments.map((s) => s.marker);
}

/** A noisy picture (large scans), with EXIF and XMP carrying identifiers. */
async function noisy(progressive: boolean): Promise<Buffer> {
  const w = 1600;
  const h = 1200;
  const raw = Buffer.alloc(w * h * 3);
  let x = 12345;
  for (let i = 0; i < raw.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    raw[i] = x >>> 24;
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .withExif({ IFD0: { Make: 'DJI', Model: 'FC3411', Copyright: 'SN-ELIDE-0001' } })
    .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" drone-dji:GpsLatitude="52.0907"/></rdf:RDF></x:xmpmeta>')
    .jpeg({ quality: 95, progressive })
    .toBuffer();
}

describe('a JPEG without its scan interiors', () => {
  const reals = readdirSync(REAL).filter((f) => /\.jpe?g$/i.test(f) && f !== 'DJI_XTS.jpg');

  test.each(reals)('%s: ExifTool reports the same on the copy as on the whole file, before and after sanitizing', (name) => {
    const input = readFileSync(path.join(REAL, name));
    const output = sanitizeJpegBytes(input, { thermal: 'keep' }).bytes;
    for (const [side, bytes] of [['in', input], ['out', output]] as const) {
      const view = withoutScanInteriors(bytes);
      expect(exiftool(view.bytes, `${side}-view-${name}`)).toEqual(exiftool(bytes, `${side}-${name}`));
      if (view.leftOut > 0) {
        expect(view.bytes.length).toBe(bytes.length - view.leftOut);
        expect(markers(view.bytes)).toEqual(markers(bytes));
      } else {
        expect(view.bytes).toBe(bytes);
      }
    }
  });

  test.each([false, true])('a large picture (progressive: %s): most of it is left out, ExifTool reports the same', async (progressive) => {
    const bytes = await noisy(progressive);
    const view = withoutScanInteriors(bytes);
    expect(view.leftOut).toBeGreaterThan(bytes.length * 0.8);
    expect(markers(view.bytes)).toEqual(markers(bytes));
    const whole = exiftool(bytes, `noisy-${progressive}.jpg`);
    expect(whole['IFD0:Copyright']).toBe('SN-ELIDE-0001');
    expect(exiftool(view.bytes, `noisy-view-${progressive}.jpg`)).toEqual(whole);
  });

  test('metadata between the scans of a progressive JPEG is still seen by ExifTool', async () => {
    const bytes = await noisy(true);
    const sos = walkJpeg(bytes).segments.filter((s) => s.marker === M.SOS);
    expect(sos.length).toBeGreaterThan(2);
    // An XMP segment placed after the first scan, where ExifTool -fast would never look.
    const xmp = Buffer.from('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="HIDDEN-BETWEEN-SCANS"/></rdf:RDF></x:xmpmeta>', 'latin1');
    const seg = Buffer.concat([Buffer.from([0xff, 0xe1, (xmp.length + 2) >> 8, (xmp.length + 2) & 0xff]), xmp]);
    const at = sos[0]!.end;
    const planted = Buffer.concat([bytes.subarray(0, at), seg, bytes.subarray(at)]);
    const view = withoutScanInteriors(planted);
    expect(view.leftOut).toBeGreaterThan(0);
    const file = path.join(dir, 'planted-view.jpg');
    writeFileSync(file, view.bytes);
    const check = await exiftoolCheck(file, 'jpeg');
    expect(check.found.some((f) => f.startsWith('XMP'))).toBe(true);
    expect(exiftool(view.bytes, 'planted-view2.jpg')['XMP-tiff:Make']).toBe('HIDDEN-BETWEEN-SCANS');
  });

  test('a cut never follows a 0xFF: the bytes after it cannot read as a marker', () => {
    // One scan whose first kept stretch ends on a stuffed FF 00, and whose last kept stretch
    // starts with C4: cut right after that FF, the two would join into FF C4 (a DHT marker).
    const head = Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 0x3f, 0]);
    const data = Buffer.alloc(4 * SCAN_EDGE, 0x01);
    data[SCAN_EDGE - 1] = 0xff;
    data[SCAN_EDGE] = 0x00;
    data[data.length - SCAN_EDGE] = 0xc4;
    const jpeg = Buffer.concat([head, data, Buffer.from([0xff, 0xd9])]);
    expect(markers(jpeg)).toEqual([0xc0, M.SOS]);
    const view = withoutScanInteriors(jpeg);
    expect(view.leftOut).toBe(2 * SCAN_EDGE - 1);
    expect(markers(view.bytes)).toEqual([0xc0, M.SOS]);
    expect(walkJpeg(view.bytes).segments.at(-1)!.end).toBe(view.bytes.length - 2);
  });

  test('a file with bytes after its EOI, or one that does not parse, is given back whole', () => {
    const trailer = Buffer.concat([readFileSync(path.join(REAL, 'skydio2.jpg')), Buffer.from('TRAILER')]);
    expect(withoutScanInteriors(trailer).bytes).toBe(trailer);
    const broken = Buffer.from([0xff, 0xd8, 0x00, 0x01]);
    expect(withoutScanInteriors(broken)).toEqual({ bytes: broken, leftOut: 0 });
  });
});
