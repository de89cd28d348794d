/**
 * Seeded robustness test for the JPEG and TIFF sanitizers: a few thousand mutated inputs (bit
 * flips, truncations, length-field changes, inserted and duplicated segments, IFD entry edits).
 * For every input: either a KluisError, or an output that passes the cheap independent check
 * (own walker + raw search for every planted identifier + exifr); a sample of outputs also goes
 * through ExifTool. Any other exception is a failure. The walkers' loops are bounded by
 * construction, so finishing is the no-hang evidence (no timing is asserted). Re-run a failing
 * case with its seed and index, printed in the failure message.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import exifr from 'exifr';
import { afterAll, describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { sanitizeJpegBytes } from '../../src/sanitize/jpeg/sanitize.js';
import { walkJpeg } from '../../src/sanitize/jpeg/walker.js';
import { sanitizeTiffBytes } from '../../src/sanitize/tiff/sanitize.js';
import { rawSearch, walkCheckJpeg, walkCheckTiff } from '../../src/sanitize/verify/image.js';

const SEED = 0x6b6c7569; // "klui"
const GEN = path.resolve('test/fixtures/generated');
const REAL = path.resolve('test/fixtures/real/image');
const out = mkdtempSync(path.join(tmpdir(), 'kluis-fuzz-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NEEDLES = ['KLUISGEN', 'drone-dji', 'GPSLatitude', '5Z9FKCL1AA2FFS', 'http://ns.adobe.com', 'FUZZSERIAL'];
const PLANT = Buffer.from('FUZZSERIAL-0001 drone-dji GPSLatitude');

function segmentOffsets(buf: Buffer): number[] {
  try {
    return walkJpeg(buf).segments.map((s) => s.offset);
  } catch {
    return [2];
  }
}

function mutateJpeg(src: Buffer, r: () => number): Buffer {
  const b = Buffer.from(src);
  const pick = (n: number): number => Math.floor(r() * n);
  const offs = segmentOffsets(src);
  switch (pick(6)) {
    case 0: {
      for (let k = 1 + pick(8); k > 0; k--) {
        const i = pick(b.length);
        b[i] = b[i]! ^ (1 << pick(8));
      }
      return b;
    }
    case 1:
      return b.subarray(0, pick(b.length));
    case 2: {
      const o = offs[pick(offs.length)]!;
      if (o + 4 <= b.length) b.writeUInt16BE(r() < 0.5 ? pick(0x10000) : Math.max(0, b.readUInt16BE(o + 2) + pick(9) - 4), o + 2);
      return b;
    }
    case 3: {
      // insert a segment (random marker, planted identifiers) at a segment boundary
      const o = offs[pick(offs.length)]!;
      const marker = [0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe7, 0xed, 0xee, 0xfe, 0xdb, 0xc4, 0xdd][pick(12)]!;
      const body = r() < 0.5 ? PLANT : Buffer.concat([Buffer.from([0xaa, 0x55, 0x12, 0x06]), Buffer.alloc(0x4fc), Buffer.from([0x55, 0xaa, 0x12, 0x06]), PLANT]);
      const seg = Buffer.concat([Buffer.from([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body]);
      return Buffer.concat([b.subarray(0, o), seg, b.subarray(o)]);
    }
    case 4: {
      // duplicate a segment
      const o = offs[pick(offs.length)]!;
      const l = o + 4 <= b.length ? b.readUInt16BE(o + 2) + 2 : 0;
      return Buffer.concat([b.subarray(0, o + l), b.subarray(o, o + l), b.subarray(o + l)]);
    }
    default: {
      // append data after EOI or overwrite a marker byte
      if (r() < 0.5) return Buffer.concat([b, PLANT]);
      const o = offs[pick(offs.length)]!;
      if (o + 1 < b.length) b[o + 1] = pick(256);
      return b;
    }
  }
}

function mutateTiff(src: Buffer, r: () => number): Buffer {
  const b = Buffer.from(src);
  const pick = (n: number): number => Math.floor(r() * n);
  const le = b[0] === 0x49;
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const ifd0 = u32(4);
  const n = le ? b.readUInt16LE(ifd0) : b.readUInt16BE(ifd0);
  const entryAt = (): number => ifd0 + 2 + pick(n) * 12;
  switch (pick(5)) {
    case 0:
      for (let k = 1 + pick(8); k > 0; k--) {
        const i = r() < 0.7 ? ifd0 + pick(2 + n * 12 + 4) : pick(b.length);
        if (i < b.length) b[i] = b[i]! ^ (1 << pick(8));
      }
      return b;
    case 1:
      return b.subarray(0, pick(b.length));
    case 2: {
      const e = entryAt();
      if (le) b.writeUInt32LE(r() < 0.5 ? pick(b.length * 2) : pick(0xffffffff), e + 8 - (r() < 0.5 ? 4 : 0));
      else b.writeUInt32BE(pick(b.length * 2), e + 8);
      return b;
    }
    case 3: {
      // relabel an entry as another tag (kept or dropped), or change its type
      const e = entryAt();
      const tags = [256, 258, 273, 279, 320, 330, 347, 700, 34665, 34853, 50706, 50712, 50735, 51008];
      if (r() < 0.5) (le ? b.writeUInt16LE.bind(b) : b.writeUInt16BE.bind(b))(tags[pick(tags.length)]!, e);
      else (le ? b.writeUInt16LE.bind(b) : b.writeUInt16BE.bind(b))(1 + pick(14), e + 2);
      return b;
    }
    default: {
      const e = entryAt();
      (le ? b.writeUInt32LE.bind(b) : b.writeUInt32BE.bind(b))(pick(1 << 20), e + 4);
      return b;
    }
  }
}

async function cheapCheck(bytes: Uint8Array, kind: 'jpeg' | 'tiff'): Promise<string[]> {
  const found = [
    ...(kind === 'jpeg' ? walkCheckJpeg(bytes, { thermal: 'keep' }) : walkCheckTiff(bytes)).found,
    ...rawSearch(bytes, NEEDLES).found,
  ];
  const ex = (await exifr.parse(Buffer.from(bytes), { gps: true, xmp: true, iptc: true, makerNote: true, ifd1: true, userComment: true, multiSegment: true }).catch(() => undefined)) as
    | Record<string, unknown>
    | undefined;
  for (const k of Object.keys(ex ?? {})) if (/GPS|Serial|Make|Model|Software|xmp|drone|Keywords|Creator/i.test(k)) found.push(`exifr: ${k}`);
  return found;
}

interface Tally {
  refused: number;
  produced: number;
  codes: Map<string, number>;
}

async function fuzz(kind: 'jpeg' | 'tiff', seeds: Buffer[], iterations: number, seed: number): Promise<Tally> {
  const r = rng(seed);
  const tally: Tally = { refused: 0, produced: 0, codes: new Map() };
  let sampled = 0;
  for (let i = 0; i < iterations; i++) {
    const src = seeds[i % seeds.length]!;
    const input = kind === 'jpeg' ? mutateJpeg(src, r) : mutateTiff(src, r);
    let bytes: Uint8Array;
    try {
      bytes = kind === 'jpeg' ? sanitizeJpegBytes(input, { thermal: 'keep' }).bytes : sanitizeTiffBytes(input).bytes;
    } catch (err) {
      if (!(err instanceof KluisError)) throw new Error(`${kind} seed ${seed} case ${i}: non-KluisError ${String((err as Error)?.stack ?? err)}`);
      tally.refused++;
      tally.codes.set(err.code, (tally.codes.get(err.code) ?? 0) + 1);
      continue;
    }
    tally.produced++;
    const found = await cheapCheck(bytes, kind);
    if (found.length && process.env.KLUIS_FUZZ_DUMP) writeFileSync(path.join(process.env.KLUIS_FUZZ_DUMP, `${kind}-${i}.in`), input);
    expect(found, `${kind} seed ${seed} case ${i}`).toEqual([]);
    if (i % 97 === 0 && sampled < 12) {
      sampled++;
      const f = path.join(out, `${kind}-${i}.${kind === 'jpeg' ? 'jpg' : 'tif'}`);
      writeFileSync(f, bytes);
      const tags = JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', f]).toString())[0] as Record<string, unknown>;
      // ICC header device signatures (4-byte type codes, not names or serials) are allowed; see docs/sanitize-policy.md.
      const keys = Object.keys(tags).filter((k) => !k.startsWith('ICC-header:Device'));
      expect(keys.filter((k) => /GPS|Serial|Make|Model|Software|XMP|IPTC|MakerNotes|Comment|DJI-DBG/i.test(k)), `${kind} case ${i}`).toEqual([]);
    }
  }
  return tally;
}

describe('fuzz', () => {
  test('mutated JPEGs: KluisError or a clean output, never anything else', async () => {
    const seeds = [
      readFileSync(path.join(GEN, 'tagged.jpg')),
      readFileSync(path.join(GEN, 'after-eoi.jpg')),
      readFileSync(path.join(GEN, 'orient6.jpg')),
      readFileSync(path.join(GEN, 'icc.jpg')),
      readFileSync(path.join(REAL, 'mavic3pro_xmp.jpg')),
    ];
    const t = await fuzz('jpeg', seeds, 2500, SEED);
    // Both outcomes must occur, or the mutations are not exercising the sanitizer.
    expect(t.refused).toBeGreaterThan(100);
    expect(t.produced).toBeGreaterThan(100);
  }, 120_000);

  test('mutated TIFFs: KluisError or a clean output, never anything else', async () => {
    const seeds = [readFileSync(path.join(GEN, 'tagged.tiff')), readFileSync(path.join(GEN, 'tagged-dng.tiff'))];
    const t = await fuzz('tiff', seeds, 1500, SEED + 1);
    expect(t.refused).toBeGreaterThan(100);
    expect(t.produced).toBeGreaterThan(100);
  }, 120_000);
});
