// Per-packet hashing in node (packetHashesInNode, used by the video essence) against ffmpeg's own
// framehash SHA-256 (packetHashes, the earlier implementation): same packets, same sizes, same
// hashes, and byte-for-byte the same essence values, on every real and generated video fixture.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createAdler32 } from 'hash-wasm';
import { ffprobeJson } from '../../src/wrappers/ffmpeg.js';
import { PacketCutter, packetHashes, packetHashesInNode } from '../../src/sanitize/video/packets.js';
import { essence, essenceFramehash } from '../../src/sanitize/video/index.js';

const root = path.resolve(__dirname, '../fixtures');
const fixtures = [
  ...readdirSync(path.join(root, 'real/video')).filter((f) => /\.(mp4|mov)$/i.test(f)).map((f) => path.join(root, 'real/video', f)),
  ...readdirSync(path.join(root, 'generated-video')).filter((f) => /\.(mp4|mov)$/i.test(f)).map((f) => path.join(root, 'generated-video', f)),
];

let tmp = '';
let bigFrames = '';
let multi = '';
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kluis-packet-hash-'));
  // Raw 4K RGB frames: every packet (~24 MiB) is larger than the payload node keeps waiting for a
  // line, so the pause/resume path and packets spanning many pipe chunks are exercised.
  bigFrames = path.join(tmp, 'raw4k.mov');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=3840x2160:r=5', '-frames:v', '3',
    '-c:v', 'rawvideo', '-pix_fmt', 'rgb24', bigFrames]);
  // Two video streams and two audio streams (one AAC with priming side data, one PCM), B-frames.
  multi = path.join(tmp, 'multi.mov');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=2', '-f', 'lavfi', '-i', 'sine=r=48000:d=2',
    '-f', 'lavfi', '-i', 'testsrc=s=160x120:r=10:d=2',
    '-map', '0', '-map', '1', '-map', '2', '-map', '1',
    '-c:v', 'libx264', '-bf', '2', '-c:a:0', 'aac', '-c:a:1', 'pcm_s16le', multi]);
}, 120_000);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function avMaps(file: string): Promise<string[]> {
  const probe = await ffprobeJson(file);
  return probe.streams.filter((s) => s.codec_type === 'video' || s.codec_type === 'audio').map((s) => `0:${s.index}`);
}

async function compare(file: string): Promise<{ streams: number; sideData: number }> {
  const maps = await avMaps(file);
  expect(maps.length).toBeGreaterThan(0);
  const old: Array<Array<{ size: number; sha256: string; sideData: string }>> = maps.map(() => []);
  await packetHashes(file, maps, (p) => old[p.stream]!.push({ size: p.size, sha256: p.sha256, sideData: p.sideData }));
  const mine: Array<Array<{ size: number; sha256: string }>> = maps.map(() => []);
  const { sideData } = await packetHashesInNode(file, maps, (p) => mine[p.stream]!.push({ size: p.size, sha256: p.sha256 }));
  for (let i = 0; i < maps.length; i++) {
    const withSide = old[i]!.some((p) => p.sideData !== '');
    expect(sideData.includes(i), `${path.basename(file)} stream ${maps[i]} side data`).toBe(withSide);
    if (!withSide) {
      expect(old[i]!.length).toBeGreaterThan(0);
      expect(mine[i], `${path.basename(file)} stream ${maps[i]}`).toEqual(old[i]!.map((p) => ({ size: p.size, sha256: p.sha256 })));
    }
  }
  // The values the proof and verify's recompute depend on: exactly equal, strings and counts.
  expect(await essence(file, maps, 120_000)).toEqual(await essenceFramehash(file, maps, 120_000));
  return { streams: maps.length, sideData: sideData.length };
}

describe('packet hashes in node equal ffmpeg framehash sha256', () => {
  it.each(fixtures.map((f) => [path.basename(f), f]))('fixture %s', async (_name, file) => {
    await compare(file);
  }, 60_000);

  it('has fixtures with and without packet side data (both paths are covered)', async () => {
    let side = 0;
    let plain = 0;
    for (const f of fixtures) {
      const r = await compare(f);
      side += r.sideData;
      plain += r.streams - r.sideData;
    }
    expect(side).toBeGreaterThan(0);
    expect(plain).toBeGreaterThan(0);
  }, 120_000);

  it('packets of ~24 MiB, each spanning many pipe chunks (raw 4K frames)', async () => {
    const r = await compare(bigFrames);
    expect(r).toEqual({ streams: 1, sideData: 0 });
  }, 120_000);

  it('four streams at once: two video (B-frames), AAC with priming, PCM', async () => {
    const r = await compare(multi);
    expect(r.streams).toBe(4);
    expect(r.sideData).toBe(1);
  }, 120_000);

  it('fails closed when one output would carry more than one stream', async () => {
    // cover-art.mp4 has two video streams; "0:v" maps both into one output, which is refused.
    const file = path.join(root, 'generated-video/cover-art.mp4');
    await expect(packetHashesInNode(file, ['0:v'], () => undefined)).rejects.toMatchObject({ code: expect.stringMatching(/^E_SANITIZE_TOOL_/) });
  }, 60_000);

  it('fails closed on a file ffmpeg cannot read', async () => {
    const junk = path.join(tmp, 'junk.mp4');
    writeFileSync(junk, Buffer.alloc(4096, 0x5a));
    await expect(packetHashesInNode(junk, ['0:0'], () => undefined)).rejects.toMatchObject({ code: 'E_SANITIZE_TOOL_FAILED' });
  }, 60_000);
});

describe('PacketCutter (the pairing of lines and payload bytes)', () => {
  // Adler-32 written out here (RFC 1950), independent of the hasher the code uses.
  const sumHex = (x: Buffer): string => {
    let s1 = 1;
    let s2 = 0;
    for (const byte of x) {
      s1 = (s1 + byte) % 65521;
      s2 = (s2 + s1) % 65521;
    }
    return ((s2 * 65536 + s1) >>> 0).toString(16).padStart(8, '0');
  };
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const line = (b: Buffer, extra = ''): string => `0,          0,          0,     1024, ${String(b.length).padStart(8)}, ${sumHex(b)}${extra}\n`;
  const a = Buffer.from('first packet');
  const b = Buffer.alloc(0);
  const c = Buffer.from('third, after an empty one');

  let hasher: Awaited<ReturnType<typeof createAdler32>>;
  beforeAll(async () => {
    hasher = await createAdler32();
  });
  function cut(lines: string, data: Buffer[]): { got: Array<{ size: number; sha256: string }>; cutter: PacketCutter } {
    const got: Array<{ size: number; sha256: string }> = [];
    const cutter = new PacketCutter((p) => got.push(p), 'test', hasher);
    for (const d of data) cutter.data(d);
    cutter.lines(Buffer.from(lines));
    cutter.end();
    return { got, cutter };
  }

  it('cuts at the sizes whatever the chunking, empty packets included', () => {
    const all = Buffer.concat([a, b, c]);
    const expected = [a, b, c].map((x) => ({ size: x.length, sha256: sha(x) }));
    const header = '#format: frame checksums\n#stream#, dts, pts, duration, size, hash\n';
    expect(cut(header + line(a) + line(b) + line(c), [all]).got).toEqual(expected);
    expect(cut(line(a) + line(b) + line(c), [...all].map((x) => Buffer.from([x]))).got).toEqual(expected);
    // Lines before bytes, in pieces, as the pipes may deliver them.
    const got: Array<{ size: number; sha256: string }> = [];
    const k = new PacketCutter((p) => got.push(p), 'test', hasher);
    const text = Buffer.from(line(a) + line(b) + line(c));
    k.lines(text.subarray(0, 7));
    k.data(all.subarray(0, 5));
    k.lines(text.subarray(7));
    k.data(all.subarray(5));
    k.end();
    expect(got).toEqual(expected);
  });

  it('stops reporting a stream once a packet carries side data', () => {
    const r = cut(line(a) + line(c, ', S=1,       10, 0123abcd') + line(a), [a, c, a]);
    expect(r.cutter.sideData).toBe(true);
    expect(r.got).toEqual([{ size: a.length, sha256: sha(a) }]);
  });

  it('refuses a checksum mismatch (bytes cut in the wrong place)', () => {
    const wrong = line(a).replace(sumHex(a), sumHex(c));
    expect(() => cut(wrong, [a])).toThrow(/Adler-32/);
    // Sizes that add up to the same total but cut elsewhere.
    const shifted = `0, 0, 0, 1, ${a.length - 1}, ${sumHex(a.subarray(0, -1))}\n0, 0, 0, 1, ${c.length + 1}, ${sumHex(c)}\n`;
    expect(() => cut(shifted, [a, c])).toThrow(/Adler-32/);
  });

  it('refuses bytes without a line and a line without bytes', () => {
    expect(() => cut(line(a), [a, c])).toThrow(/no packet line accounts for/);
    expect(() => cut(line(a) + line(c), [a])).toThrow(/never came/);
  });

  it('refuses malformed lines and a second stream in one output', () => {
    expect(() => cut('0, 0, 0, 1, 12, SHA\n', [a])).toThrow(/unexpected framehash line/);
    expect(() => cut(line(a).replace(/^0/, '1'), [a])).toThrow(/unexpected framehash line/);
    expect(() => cut(line(a).replace(` ${a.length},`, ' -1,'), [a])).toThrow(/unexpected framehash line/);
    expect(() => cut(line(a, ', X=1'), [a])).toThrow(/unexpected framehash line/);
    expect(() => cut('0, 0, 0, 1\n', [])).toThrow(/unexpected framehash line/);
  });
});
