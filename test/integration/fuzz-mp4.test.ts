/**
 * Seeded robustness test for the MP4/MOV path. 1000 mutated inputs (bit flips in box headers,
 * wrong sizes, truncation, nested junk boxes, byte noise in moov) go through the box walker: it
 * must finish on each, with a tree or a KluisError, never another exception. A smaller subset of
 * metadata-area mutations goes through sanitizeVideo with real ffmpeg: each must either fail
 * closed (KluisError E_SANITIZE_*, no output) or produce an output in which independent readers
 * (byte search, ExifTool, ffprobe) find none of the input's identifiers.
 * A failing case prints its seed and index so it can be re-run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../src/errors.js';
import { BufferSource, allBoxes, walkBoxes, type Box } from '../../src/sanitize/video/boxes.js';
import { sanitizeVideo, sniffVideo } from '../../src/sanitize/video/index.js';
import { generatedVideo, realVideo, scratch } from './sanitize-video-helpers.js';

const SEED = 0x6b6c7569; // "klui"
const WALKER_CASES = 1000;
const SANITIZE_CASES = 24;

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

interface Base {
  name: string;
  bytes: Buffer;
  boxes: Box[];
  identifiers: string[];
}

const tmp = scratch('fuzz-mp4');
afterAll(() => tmp.done());

async function loadBases(): Promise<Base[]> {
  const specs: Array<[string, string, string[]]> = [
    ['dji-mini2', realVideo('dji-mini2_udta.mp4'), ['1SFOJ8J0AB0GAM', 'FC7303', '+60.1813+25.0086']],
    ['osmo-djmd', realVideo('DJI_20260315180109_0003_D.MP4'), ['DJI AC004', 'DJI meta']],
    ['xmp-text-data', generatedVideo('xmp-text-data.mp4'), ['3N1SFXK0023ABC', 'FC7303', '+52.0907+005.1214', 'drone-dji']],
    ['keys-location', generatedVideo('keys-location.mov'), ['+52.0907+005.1214', 'FC7303', 'pilot-7']],
  ];
  const out: Base[] = [];
  for (const [name, file, identifiers] of specs) {
    const bytes = readFileSync(file);
    const tree = await walkBoxes(new BufferSource(bytes));
    out.push({ name, bytes, boxes: [...allBoxes(tree.boxes)], identifiers });
  }
  return out;
}

const JUNK_TYPES = ['udta', 'meta', 'trak', 'uuid', 'moov', 'stsd', '\u00a9xyz', 'free', 'mdat', 'ilst', 'keys', 'dref'];

/** One mutation, chosen and placed by `r`; returns the mutated bytes and a label. */
function mutate(base: Base, r: () => number, metadataOnly: boolean): { bytes: Buffer; label: string } {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const nonMdat = base.boxes.filter((b) => b.type !== 'mdat');
  const kind = metadataOnly ? pick(['header-flip', 'size', 'junk', 'noise']) : pick(['header-flip', 'size', 'truncate', 'junk', 'noise']);
  const buf = Buffer.from(base.bytes);
  const box = pick(metadataOnly ? nonMdat : base.boxes);
  switch (kind) {
    case 'header-flip': {
      const at = box.offset + Math.floor(r() * 8);
      buf[at] = (buf[at] ?? 0) ^ (1 << Math.floor(r() * 8));
      return { bytes: buf, label: `flip header byte ${at} of ${box.path}` };
    }
    case 'size': {
      const sizes = [0, 1, 7, 8, box.size - 1, box.size + 1, box.size * 2, 0xffffffff, Math.floor(r() * 0xffffffff)];
      const v = pick(sizes) >>> 0;
      buf.writeUInt32BE(v, box.offset);
      return { bytes: buf, label: `size of ${box.path} = ${v}` };
    }
    case 'truncate': {
      const at = Math.floor(r() * buf.length);
      return { bytes: buf.subarray(0, at), label: `truncate at ${at}` };
    }
    case 'junk': {
      // Insert a box of random type and content right after `box`, growing every ancestor so the
      // tree stays well formed: nested junk the allow-list must reject or the inventory must list.
      const type = pick(JUNK_TYPES);
      const len = 8 + Math.floor(r() * 40);
      const junk = Buffer.alloc(len);
      for (let i = 8; i < len; i++) junk[i] = Math.floor(r() * 256);
      if (r() < 0.5) junk.write('SN=1SFOJ8J0AB0GAM'.slice(0, Math.max(0, len - 8)), 8, 'latin1');
      junk.writeUInt32BE(len, 0);
      junk.write(type, 4, 'latin1');
      const at = box.offset + box.size;
      for (const a of base.boxes) {
        if (a.offset < box.offset && a.offset + a.size >= at && a.headerSize === 8 && a !== box && box.path.startsWith(`${a.path}/`)) {
          buf.writeUInt32BE(a.size + len, a.offset);
        }
      }
      return { bytes: Buffer.concat([buf.subarray(0, at), junk, buf.subarray(at)]), label: `junk ${type} (${len}) after ${box.path}` };
    }
    default: {
      const n = 1 + Math.floor(r() * 8);
      for (let i = 0; i < n; i++) {
        const at = box.offset + Math.floor(r() * box.size);
        buf[at] = Math.floor(r() * 256);
      }
      return { bytes: buf, label: `${n} noise byte(s) in ${box.path}` };
    }
  }
}

describe('fuzz: box walker', () => {
  it(`survives ${WALKER_CASES} mutated inputs with a tree or a KluisError (seed ${SEED})`, async () => {
    const bases = await loadBases();
    const r = rng(SEED);
    const outcomes = { tree: 0, error: 0 };
    for (let i = 0; i < WALKER_CASES; i++) {
      const base = bases[i % bases.length] as Base;
      const { bytes, label } = mutate(base, r, false);
      try {
        await walkBoxes(new BufferSource(bytes));
        outcomes.tree += 1;
      } catch (err) {
        if (!(err instanceof KluisError) || !err.code.startsWith('E_SANITIZE_')) {
          throw new Error(`case ${i} (seed ${SEED}, ${base.name}: ${label}) threw ${String(err)}`);
        }
        outcomes.error += 1;
      }
    }
    // Both outcomes occur, so the mutations reach past the first header and the walker is not
    // simply rejecting everything.
    console.log(`walker fuzz outcomes: ${JSON.stringify(outcomes)}`);
    expect(outcomes.tree).toBeGreaterThan(50);
    expect(outcomes.error).toBeGreaterThan(50);
  });
});

describe('fuzz: sanitizeVideo never passes telemetry', () => {
  it(`${SANITIZE_CASES} metadata-area mutations fail closed or come out clean`, async () => {
    const bases = (await loadBases()).filter((b) => b.bytes.length < 200_000);
    const r = rng(SEED ^ 0x5a5a5a5a);
    const outcomes = { clean: 0, refused: 0 };
    for (let i = 0; i < SANITIZE_CASES; i++) {
      const base = bases[i % bases.length] as Base;
      const { bytes, label } = mutate(base, r, true);
      const input = path.join(tmp.dir, `in-${i}.mp4`);
      const output = path.join(tmp.dir, `out-${i}.mp4`);
      await fsp.writeFile(input, bytes);
      const format = sniffVideo(bytes.subarray(0, 4096)) ?? (base.name === 'keys-location' || base.name === 'osmo-djmd' ? 'mov' : 'mp4');
      const where = `case ${i} (seed ${SEED}, ${base.name}: ${label})`;
      try {
        await sanitizeVideo(input, output, { thermal: 'keep' }, format);
      } catch (err) {
        if (!(err instanceof KluisError) || !err.code.startsWith('E_SANITIZE_')) throw new Error(`${where} threw ${String(err)}`);
        expect(existsSync(output), where).toBe(false);
        outcomes.refused += 1;
        continue;
      }
      const raw = readFileSync(output).toString('latin1');
      for (const id of [...base.identifiers, 'SN=1SFOJ8J0AB0GAM']) expect(raw.includes(id), `${where}: ${id}`).toBe(false);
      const exif = JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', output]).toString('utf8'))[0] as Record<string, unknown>;
      const groups = new Set(Object.keys(exif).map((k) => k.split(':')[0]));
      for (const g of groups) expect(['SourceFile', 'ExifTool', 'System', 'File', 'QuickTime', 'Composite'].includes(g ?? '') || /^Track\d+$/.test(g ?? ''), `${where}: group ${g}`).toBe(true);
      const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-of', 'json', '-show_streams', output]).toString('utf8')) as { streams: Array<{ codec_type: string }> };
      for (const s of probe.streams) expect(['video', 'audio'], where).toContain(s.codec_type);
      outcomes.clean += 1;
    }
    console.log(`sanitize fuzz outcomes: ${JSON.stringify(outcomes)}`);
    expect(outcomes.clean + outcomes.refused).toBe(SANITIZE_CASES);
    expect(outcomes.clean).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  }, 120_000);
});
