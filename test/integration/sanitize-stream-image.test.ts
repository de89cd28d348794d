/**
 * sanitizeStream for still images (SANITIZE-API.md): the sink gets exactly the bytes the result's
 * sha256/size describe, the same bytes sanitizeFile writes; the preview comes back only when asked,
 * small and without metadata; the recorded JPEG proof is the card file's value, computed from the
 * output, and a file whose decoding the rewrite would change (a JFIF header after the first scan)
 * fails closed; nothing reaches the sink when a check fails; scratch files are gone
 * afterwards either way; a short source, a wrong announced format and an over-large picture fail
 * with their codes. The decode check (verify/preview.ts) fails closed when the output does not
 * decode although the card file does, and says so when neither decodes.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { sanitizeFile, sanitizeStream, sniff, type ByteSource, type StreamSanitizeOptions } from '../../src/sanitize/index.js';
import { MAX_IMAGE_BYTES } from '../../src/sanitize/jpeg/index.js';
import { jpegDecoderSegmentsSha256 } from '../../src/sanitize/jpeg/decoder-segments.js';
import { M, walkJpeg, type JpegSegment } from '../../src/sanitize/jpeg/walker.js';
import { sanitizeJpegBytes } from '../../src/sanitize/jpeg/sanitize.js';
import { previewDecode } from '../../src/sanitize/verify/preview.js';

const REAL = path.resolve('test/fixtures/real/image');
const GEN = path.resolve('test/fixtures/generated');
const work = mkdtempSync(path.join(tmpdir(), 'kluis-stream-img-'));
const scratch = path.join(work, 'scratch');
mkdirSync(scratch, { mode: 0o700 });
afterAll(() => rmSync(work, { recursive: true, force: true }));

function source(bytes: Buffer): ByteSource {
  return { size: bytes.length, read: async (p, n) => bytes.subarray(p, p + n) };
}

function collect(): { chunks: Buffer[]; sink: { write(c: Buffer): Promise<void> }; all(): Buffer } {
  const chunks: Buffer[] = [];
  return { chunks, sink: { write: async (c) => void chunks.push(Buffer.from(c)) }, all: () => Buffer.concat(chunks) };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const opts = (format: StreamSanitizeOptions['format'], extra: Partial<StreamSanitizeOptions> = {}): StreamSanitizeOptions => ({ format, scratchDir: scratch, ...extra });

describe('sanitizeStream on still images', () => {
  test.each([
    ['DJI_H20T.jpg', 'jpeg'],
    ['mavic2pro_makernotes.jpg', 'jpeg'],
    ['xt2_radiometric.tiff', 'tiff'],
  ] as const)('%s: the sink gets the bytes the result describes, the same as sanitizeFile writes; a preview when asked', async (name, format) => {
    const input = readFileSync(path.join(REAL, name));
    const c = collect();
    const r = await sanitizeStream(source(input), c.sink, { thermal: 'keep' }, opts(format, { thumbnail: { maxEdge: 160 } }));
    const out = c.all();
    expect(r.size).toBe(out.length);
    expect(r.sha256).toBe(sha(out));
    for (const e of r.essence) expect(e.after).toBe(e.before);
    for (const k of r.checks) expect(k.found).toEqual([]);
    const file = path.join(work, `${name}.out`);
    const viaFile = await sanitizeFile(path.join(REAL, name), file, { thermal: 'keep' });
    expect(readFileSync(file).equals(out)).toBe(true);
    const { thumbnail: _preview, ...rest } = r;
    expect(viaFile).toEqual(rest);
    // The preview: a JPEG no larger than asked, with no metadata of any kind.
    expect(r.thumbnail).toBeInstanceOf(Buffer);
    const meta = await sharp(r.thumbnail!).metadata();
    expect(meta.format).toBe('jpeg');
    expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(160);
    expect(meta.exif).toBeUndefined();
    expect(meta.xmp).toBeUndefined();
    expect(meta.icc).toBeUndefined();
    expect(readdirSync(scratch)).toEqual([]);
  });

  test('no preview unless asked, and the output is still checked to decode', async () => {
    const input = readFileSync(path.join(REAL, 'mavic3pro_xmp.jpg'));
    const c = collect();
    const r = await sanitizeStream(source(input), c.sink, { thermal: 'keep' }, opts('jpeg'));
    expect(r.thumbnail).toBeUndefined();
    expect('thumbnail' in r).toBe(false);
    expect(r.size).toBe(c.all().length);
  });

  test('a check that fails leaves the sink untouched and the scratch folder empty', async () => {
    for (const [dir, name, code] of [
      [REAL, 'DJI_XTS.jpg', 'E_SANITIZE_TRUNCATED'],
      [GEN, 'unknown-marker.jpg', 'E_SANITIZE_PARSE'],
    ] as const) {
      const c = collect();
      const err = await sanitizeStream(source(readFileSync(path.join(dir, name))), c.sink, { thermal: 'keep' }, opts('jpeg')).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(KluisError);
      expect((err as KluisError).code, name).toBe(code);
      expect(c.chunks, name).toEqual([]);
      expect(readdirSync(scratch), name).toEqual([]);
    }
  });

  test('a finding by a reader of the output (after the scratch copies were made) leaves the sink untouched and the scratch folder empty', async () => {
    // The H20T's serial (ExifTool reads it from the card file's EXIF), also hidden (UTF-16) in one
    // more thermal APP3 segment, which policy keeps as it is beside DJI's thermal parameters: the
    // byte search finds it in the output.
    const h20t = readFileSync(path.join(REAL, 'DJI_H20T.jpg'));
    const hidden = Buffer.concat([Buffer.from([0, 1, 2, 3]), Buffer.from('1W9DH8R000003K', 'utf16le'), Buffer.from([4, 5, 6, 7])]);
    const app3 = Buffer.concat([Buffer.from([0xff, M.APP3, 0, hidden.length + 2]), hidden]);
    const bad = Buffer.concat([h20t.subarray(0, 2), app3, h20t.subarray(2)]);
    const c = collect();
    const err = await sanitizeStream(source(bad), c.sink, { thermal: 'keep' }, opts('jpeg')).catch((e: unknown) => e);
    expect((err as KluisError).code).toBe('E_SANITIZE_RESIDUE');
    expect((err as KluisError).message).toMatch(/byte-search: identifier "1W9DH8R000003K" \(utf16le\)/);
    expect(c.chunks).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
  });

  test('a source that gives fewer bytes than asked is E_SANITIZE_TRUNCATED', async () => {
    const input = readFileSync(path.join(GEN, 'base.jpg'));
    const short: ByteSource = { size: input.length + 10, read: async (p, n) => input.subarray(p, p + n) };
    const c = collect();
    await expect(sanitizeStream(short, c.sink, { thermal: 'keep' }, opts('jpeg'))).rejects.toMatchObject({ code: 'E_SANITIZE_TRUNCATED' });
    expect(c.chunks).toEqual([]);
  });

  test('bytes that are not the announced format are E_SANITIZE_FORMAT', async () => {
    const c = collect();
    await expect(sanitizeStream(source(readFileSync(path.join(GEN, 'base.jpg'))), c.sink, { thermal: 'keep' }, opts('tiff'))).rejects.toMatchObject({ code: 'E_SANITIZE_FORMAT' });
    await expect(sanitizeStream(source(readFileSync(path.join(GEN, 'tagged.tiff'))), c.sink, { thermal: 'keep' }, opts('jpeg'))).rejects.toMatchObject({ code: 'E_SANITIZE_FORMAT' });
    expect(c.chunks).toEqual([]);
  });

  test('a picture over MAX_IMAGE_BYTES is E_SANITIZE_TOO_LARGE before any byte is read', async () => {
    const huge: ByteSource = {
      size: MAX_IMAGE_BYTES + 1,
      read: async () => {
        throw new Error('must not be read');
      },
    };
    await expect(sanitizeStream(huge, collect().sink, { thermal: 'keep' }, opts('jpeg'))).rejects.toMatchObject({ code: 'E_SANITIZE_TOO_LARGE' });
  });

  test('a sink that fails makes the call fail (and a full disk is named as such)', async () => {
    const input = readFileSync(path.join(GEN, 'base.jpg'));
    const enospc = Object.assign(new Error('no space left on device, write'), { code: 'ENOSPC' });
    await expect(
      sanitizeStream(source(input), { write: async () => Promise.reject(enospc) }, { thermal: 'keep' }, opts('jpeg')),
    ).rejects.toMatchObject({ code: 'E_DISK_FULL' });
    expect(readdirSync(scratch)).toEqual([]);
  });
});

describe('sanitizeStream on MP4 (until the streaming box rewriter replaces it)', () => {
  test('goes through the file sanitizer on scratch copies: the sink gets what the result describes, the scratch folder is left empty', async () => {
    const name = 'DJI_20260315180109_0003_D.MP4';
    const input = readFileSync(path.resolve('test/fixtures/real/video', name));
    const c = collect();
    const format = sniff(input)!; // what the pipeline passes: the format by the first bytes
    expect(['mp4', 'mov']).toContain(format);
    const r = await sanitizeStream(source(input), c.sink, { thermal: 'keep' }, opts(format));
    expect(r.format).toBe(format);
    expect(r.size).toBe(c.all().length);
    expect(r.sha256).toBe(sha(c.all()));
    expect(r.essence.length).toBeGreaterThan(0);
    for (const e of r.essence) expect(e.after).toBe(e.before);
    expect(readdirSync(scratch)).toEqual([]);
    // A failure (not an MP4 at all) leaves nothing either.
    const bad = collect();
    await expect(sanitizeStream(source(Buffer.from('not a video, just text bytes')), bad.sink, { thermal: 'keep' }, opts('mp4'))).rejects.toBeInstanceOf(KluisError);
    expect(bad.chunks).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
  });
});

describe('the decode check', () => {
  const good = readFileSync(path.join(GEN, 'base.jpg'));
  // Half of the scan, then EOI: the walker accepts it, the decoder warns "premature end".
  const sos = walkJpeg(good).segments.find((s) => s.marker === M.SOS)!;
  const cut = Buffer.concat([good.subarray(0, sos.payloadEnd + Math.floor((sos.end - sos.payloadEnd) / 2)), Buffer.from([0xff, 0xd9])]);
  const never = async (): Promise<void> => {
    throw new Error('the fallback must not run');
  };

  test('the half scan walks but does not decode (the fixture is what the test needs)', async () => {
    expect(() => walkJpeg(cut)).not.toThrow();
    await expect(sharp(cut, { failOn: 'warning' }).toBuffer()).rejects.toThrow();
  });

  test('an output that does not decode while the card file does: E_SANITIZE_DECODE', async () => {
    await expect(previewDecode(cut, good, 'jpeg', 64, never)).rejects.toMatchObject({ code: 'E_SANITIZE_DECODE' });
    await expect(previewDecode(cut, good, 'tiff', 64, never)).rejects.toMatchObject({ code: 'E_SANITIZE_DECODE' });
  });

  test('a damaged scan is blamed on the card file, not on the sanitizer, when a second image follows the EOI (fuzz case jpeg:1)', async () => {
    // scripts/fuzz.mjs, seed 0x6b6c7569, jpeg:1: after-eoi.jpg with one flipped bit in the first
    // image's scan. libvips warns about the damaged scan only when nothing follows the EOI, so
    // the whole card file "decoded" and the sanitizer was said to have broken the picture.
    const input = Buffer.from(readFileSync(path.join(GEN, 'after-eoi.jpg')));
    input[7956] = input[7956]! ^ 0x20;
    const layout = walkJpeg(input);
    expect(layout.trailing).toBeGreaterThan(0);
    const output = Buffer.from(sanitizeJpegBytes(input, { thermal: 'keep' }).bytes);
    await expect(sharp(output, { failOn: 'warning' }).toBuffer()).rejects.toThrow(/Huffman/);
    await expect(sharp(input, { failOn: 'warning' }).toBuffer()).resolves.toBeInstanceOf(Buffer); // the quirk itself
    const asked: string[] = [];
    const ok = await previewDecode(output, input, 'jpeg', 64, async (which) => void asked.push(which));
    expect(asked).toEqual(['output']); // neither picture decodes by sharp: ffmpeg gets the output
    expect(ok.note).toMatch(/decode check by ffmpeg/);
  });

  test('neither decodes by sharp: ffmpeg gets the output; a JPEG it cannot decode fails closed, a TIFF/DNG passes with a note unless ffmpeg decodes its card file', async () => {
    const asked: string[] = [];
    const ok = await previewDecode(cut, cut, 'jpeg', 64, async (which) => void asked.push(which));
    expect(ok.thumbnail).toBeUndefined();
    expect(ok.note).toMatch(/decode check by ffmpeg/);
    expect(asked).toEqual(['output']);
    const ffmpegFails = async (): Promise<void> => {
      throw new KluisError('E_SANITIZE_TOOL', 'ffmpeg could not decode the picture');
    };
    await expect(previewDecode(cut, cut, 'jpeg', 64, ffmpegFails)).rejects.toMatchObject({ code: 'E_SANITIZE_DECODE' });
    const t = await previewDecode(cut, cut, 'dng', 64, ffmpegFails);
    expect(t.thumbnail).toBeUndefined();
    expect(t.note).toMatch(/no decode check: neither sharp nor ffmpeg/);
    // ffmpeg decodes the card file but not the output: the output is broken.
    await expect(
      previewDecode(cut, cut, 'tiff', 64, async (which) => {
        if (which === 'output') throw new Error('ffmpeg: invalid data');
      }),
    ).rejects.toMatchObject({ code: 'E_SANITIZE_DECODE' });
  });

  test('a raw DNG sharp cannot decode is decoded by ffmpeg instead, and the result says so', async () => {
    const input = readFileSync(path.resolve('test/fixtures/real/raw/magiclantern_550d.dng'));
    const r = await sanitizeStream(source(input), collect().sink, { thermal: 'keep' }, opts('dng', { thumbnail: { maxEdge: 160 } }));
    expect(r.format).toBe('dng');
    expect(r.thumbnail).toBeUndefined();
    expect(r.kept.filter((k) => k.startsWith('decode check by ffmpeg'))).toHaveLength(1);
    expect(readdirSync(scratch)).toEqual([]);
  });

  test('a good output gives the preview and no note', async () => {
    const r = await previewDecode(good, good, 'jpeg', 48, never);
    expect(r.note).toBeUndefined();
    const m = await sharp(r.thumbnail!).metadata();
    expect(Math.max(m.width!, m.height!)).toBe(48);
  });
});

const hash = (b: Uint8Array): string => jpegDecoderSegmentsSha256(b);

function removeSeg(buf: Buffer, s: JpegSegment): Buffer {
  return Buffer.concat([buf.subarray(0, s.offset), buf.subarray(s.end)]);
}

function insertAt(buf: Buffer, at: number, bytes: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at)]);
}

describe('the recorded proof', () => {
  const base = readFileSync(path.join(GEN, 'base.jpg'));
  const first = (buf: Buffer, marker: number): JpegSegment => walkJpeg(buf).segments.find((x) => x.marker === marker)!;

  test('sanitizeStream records the value of the card file, computed from the output', async () => {
    const f = path.join(REAL, 'DJI_H20T.jpg');
    const input = readFileSync(f);
    const src: ByteSource = { size: input.length, read: async (p, n) => input.subarray(p, p + n) };
    const chunks: Buffer[] = [];
    const r = await sanitizeStream(src, { write: async (c) => void chunks.push(Buffer.from(c)) }, { thermal: 'keep' }, { format: 'jpeg', scratchDir: scratch });
    expect(r.essence).toEqual([{ method: 'jpeg-decoder-segments-sha256', before: hash(input), after: hash(Buffer.concat(chunks)) }]);
    expect(r.essence[0]!.after).toBe(r.essence[0]!.before);
  });

  test('a JFIF header after the first scan, which sanitizing would move in front of it, fails closed (E_SANITIZE_ESSENCE)', async () => {
    const app0 = first(base, M.APP0);
    const jfif = base.subarray(app0.offset, app0.end);
    const noJfif = removeSeg(base, app0);
    const eoi = walkJpeg(noJfif).eoiOffset;
    const late = insertAt(noJfif, eoi, Buffer.from(jfif));
    expect(walkJpeg(late).segments.map((s) => s.marker).slice(-2)).toEqual([M.SOS, M.APP0]);
    // The sanitizer puts JFIF right after SOI, so a libjpeg-style decoder would now see it
    // before the scan: the records differ, and the file must not pass.
    const src: ByteSource = { size: late.length, read: async (p, n) => late.subarray(p, p + n) };
    const got: Buffer[] = [];
    const err = await sanitizeStream(src, { write: async (c) => void got.push(c) }, { thermal: 'keep' }, { format: 'jpeg', scratchDir: scratch }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KluisError);
    expect((err as KluisError).code).toBe('E_SANITIZE_ESSENCE');
    expect(got).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
  });
});
