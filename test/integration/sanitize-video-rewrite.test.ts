/**
 * kluis's own MP4/MOV rewriter (src/sanitize/video/stream.ts), checked by readers it does not
 * control: ffprobe counting every decoded frame, ffmpeg framemd5 of every decoded picture and
 * sound frame, a whole-file byte search, and a box parser of the test's own
 * (./video-layouts.ts). Each case would fail with the ffmpeg stream copy it replaced or with a
 * rewriter that copied the mdat instead of the kept chunks: markers in removed samples and in
 * unreferenced mdat bytes, interleaving, co64, moov at the end, a multi-GB sparse input read only
 * where it keeps, truncation, shared bytes, and the fallback for fragmented files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { KluisError } from '../../src/errors.js';
import { recomputeEssence, sanitizeStream, essenceMethodOf, type ByteSource, type SanitizeResult } from '../../src/sanitize/index.js';
import { openFileSource } from '../../src/sanitize/stream-io.js';
import { sanitizeVideo, sanitizeVideoStream } from '../../src/sanitize/video/index.js';
import { allBoxes, walkFile } from '../../src/sanitize/video/boxes.js';
import { REPO, realVideo, scratch } from './sanitize-video-helpers.js';
import { chunkTracks, offsetBoxes, relayout, topLevel } from './video-layouts.js';

const tmp = scratch('video-rewrite');
afterAll(() => tmp.done());
const POLICY = { thermal: 'keep' as const };
const at = (name: string): string => path.join(tmp.dir, name);
const ff = (args: string[]): void => void execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });

/** ffmpeg's MD5 of every decoded picture and sound frame (attached pictures and data left out). */
function framemd5(file: string): string[] {
  const out = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:V', '-map', '0:a?', '-f', 'framemd5', '-'], { maxBuffer: 64 << 20 });
  return out.toString('utf8').split('\n').filter((l) => l.length > 0 && !l.startsWith('#'));
}

/** ffprobe decodes every frame of every stream and counts them. */
function decodedFrames(file: string): Array<[string, number]> {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames', '-of', 'json', file]);
  const p = JSON.parse(out.toString('utf8')) as { streams: Array<{ codec_type: string; nb_read_frames?: string }> };
  return p.streams.filter((s) => s.codec_type === 'video' || s.codec_type === 'audio').map((s) => [s.codec_type, Number(s.nb_read_frames ?? 0)]);
}

function has(file: string, marker: string): boolean {
  return readFileSync(file).includes(Buffer.from(marker, 'latin1'));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KluisError);
    return (err as KluisError).code;
  }
  return 'no error';
}

async function sanitized(input: string, format: 'mp4' | 'mov' = 'mp4'): Promise<{ out: string; res: SanitizeResult }> {
  const out = `${input}.clean.${format}`;
  const res = await sanitizeVideo(input, out, POLICY, format);
  return { out, res };
}

describe('real vendor clips round-trip through the rewriter', () => {
  const cases: Array<{ file: string; format: 'mp4' | 'mov'; gone: string[] }> = [
    { file: 'dji-mini2_udta.mp4', format: 'mp4', gone: ['1SFOJ8J0AB0GAM', 'FC7303', '+60.1813+25.0086', 'GPS'] },
    { file: 'DJI_20260315180109_0003_D.MP4', format: 'mov', gone: ['DJI AC004', 'DJI meta', 'Lavf62'] },
    { file: 'DJI_20250723102139_0001_D.MP4', format: 'mp4', gone: ['Lavf62.3.100'] },
    // Not DJI: a GoPro on the Karma drone, its GPMF telemetry (drone GPS, attitude) in a gpmd track.
    { file: 'gopro_karma.mp4', format: 'mp4', gone: ['GoPro Karma v1.0', 'GPS RAW', 'LAE6101112400243', 'GoPro MET', 'GoPro AVC'] },
  ];
  it.each(cases)('$file', async (c) => {
    const input = at(c.file);
    await fsp.copyFile(realVideo(c.file), input);
    for (const s of c.gone) expect(has(input, s), s).toBe(true);
    const { out, res } = await sanitized(input, c.format);
    expect(res.essence.length).toBeGreaterThan(0);
    for (const e of res.essence) {
      expect(essenceMethodOf(e)?.method).toBe('mp4-samples-sha256');
      expect(e.after).toBe(e.before);
      expect(await recomputeEssence(out, c.format, e)).toBe(e.after);
    }
    for (const s of c.gone) expect(has(out, s), s).toBe(false);
    const types = [...allBoxes((await walkFile(out)).boxes)].map((b) => b.type);
    for (const t of ['djmd', 'dbgi', 'priv', 'gpmd', 'fdsc', 'text', 'tmcd', 'gmhd', 'udta', 'meta', 'tref']) expect(types, t).not.toContain(t);
    expect(topLevel(out)).toEqual(['ftyp', 'moov', 'mdat']);
    expect(decodedFrames(out)).toEqual(decodedFrames(input));
    expect(framemd5(out)).toEqual(framemd5(input));
  });
});

describe('layouts', () => {
  let base: string; // ffmpeg's layout: ftyp, free, mdat, moov; interleaved H.264 (B-frames) + AAC
  let withTelemetry: string; // + a djmd track whose samples carry a marker, in a second mdat
  let baseResult: SanitizeResult;
  const MARK = 'KLUIS-TELEMETRY-MARKER';

  beforeAll(async () => {
    base = at('base.mp4');
    ff(['-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=3', '-f', 'lavfi', '-i', 'sine=f=440:r=48000:d=3',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', base]);
    const samples = at('telemetry.txt');
    writeFileSync(samples, Array.from({ length: 3 }, (_, i) => `${MARK}-${i} lat=52.0907 lon=5.1214\n`).join(''));
    withTelemetry = at('telemetry.mp4');
    execFileSync('node', [path.join(REPO, 'scripts/make-samples-add-track.mjs'), base, withTelemetry, '--track', `djmd:DJI meta:${samples}`]);
    baseResult = (await sanitized(base)).res;
  });

  it("a removed track's sample bytes never reach the output", async () => {
    expect(has(withTelemetry, MARK)).toBe(true);
    const { out, res } = await sanitized(withTelemetry);
    expect(has(out, MARK)).toBe(false);
    expect(res.removed.some((r) => r.what === 'timed-metadata' && /djmd/.test(r.where))).toBe(true);
    // Adding the track changed the movie's next_track_ID and moved every chunk, nothing a
    // decoder reads: the kept tracks' essence is the base file's.
    expect(res.essence.map((e) => e.before)).toEqual(baseResult.essence.map((e) => e.before));
    expect(framemd5(out)).toEqual(framemd5(base));
  });

  it('an interleaved file keeps its interleaving, and moov moves to the front', async () => {
    const order = chunkTracks(withTelemetry).filter((t) => t !== 3);
    const transitions = new Set(order.slice(1).map((t, i) => `${order[i]}>${t}`));
    expect([...transitions].sort()).toEqual(['1>2', '2>1']);
    expect(topLevel(withTelemetry).indexOf('moov')).toBeGreaterThan(topLevel(withTelemetry).indexOf('mdat'));
    const { out } = await sanitized(withTelemetry);
    expect(chunkTracks(out)).toEqual(order);
    expect(topLevel(out)).toEqual(['ftyp', 'moov', 'mdat']);
  });

  it('co64 input; bytes no sample references, inside the mdat and in another mdat, stay behind', async () => {
    const input = at('co64.mp4');
    await relayout(base, input, { co64: true, gap: 8192, marker: Buffer.from('KLUIS-GAP-MARKER'), trailingMdat: Buffer.from('KLUIS-TRAILING-MARKER') });
    expect(offsetBoxes(input)).toEqual(['co64', 'co64']);
    expect(has(input, 'KLUIS-GAP-MARKER') && has(input, 'KLUIS-TRAILING-MARKER')).toBe(true);
    const { out, res } = await sanitized(input);
    expect(offsetBoxes(out)).toEqual(['stco', 'stco']);
    expect(has(out, 'KLUIS-GAP-MARKER')).toBe(false);
    expect(has(out, 'KLUIS-TRAILING-MARKER')).toBe(false);
    const loose = res.removed.find((r) => r.where.startsWith('mdat (bytes no track references)'));
    expect(loose?.bytes).toBe(8192 + 'KLUIS-TRAILING-MARKER'.length);
    // Only where the samples lie changed: the essence is the base file's, and so is every frame.
    expect(res.essence.map((e) => e.before)).toEqual(baseResult.essence.map((e) => e.before));
    expect(framemd5(out)).toEqual(framemd5(base));
  });

  it('a 5 GB sparse input with its samples past 4 GiB (co64, 64-bit mdat) is read only where it keeps', async () => {
    const input = at('sparse-5g.mp4');
    await relayout(base, input, { gap: 5 * 1024 ** 3, marker: Buffer.from('KLUIS-GAP-MARKER') });
    const size = (await fsp.stat(input)).size;
    expect(size).toBeGreaterThan(5 * 1024 ** 3);
    expect(offsetBoxes(input)).toEqual(['co64', 'co64']);
    const file = await openFileSource(input);
    let read = 0;
    const counting: ByteSource = {
      size: file.size,
      read: async (p, l) => {
        read += l;
        return file.read(p, l);
      },
    };
    const chunks: Buffer[] = [];
    const scratchDir = at('scratch-sparse');
    await fsp.mkdir(scratchDir);
    let res;
    try {
      res = await sanitizeVideoStream(counting, { write: async (b) => void chunks.push(Buffer.from(b)) }, POLICY, { format: 'mp4', scratchDir });
    } finally {
      await file.close();
    }
    const out = Buffer.concat(chunks);
    expect(read).toBeLessThan(2 * (await fsp.stat(base)).size);
    expect(out.length).toBe(res.size);
    expect(createHash('sha256').update(out).digest('hex')).toBe(res.sha256);
    expect(out.includes(Buffer.from('KLUIS-GAP-MARKER'))).toBe(false);
    expect(res.essence.map((e) => e.before)).toEqual(baseResult.essence.map((e) => e.before));
    expect(await fsp.readdir(scratchDir)).toEqual([]);
    const clean = at('sparse-5g.clean.mp4');
    writeFileSync(clean, out);
    expect(offsetBoxes(clean)).toEqual(['stco', 'stco']);
    expect(framemd5(clean)).toEqual(framemd5(base));
  });

  it('samples listed past the end of the file: E_SANITIZE_TRUNCATED, nothing left behind', async () => {
    // moov first, then an mdat that says "to the end of the file", cut short: the walker cannot
    // see the cut, the sample tables can.
    const fast = at('fast.mp4');
    ff(['-i', base, '-c', 'copy', '-movflags', '+faststart', fast]);
    const buf = readFileSync(fast);
    const mdat = buf.indexOf(Buffer.from('mdat')) - 4;
    buf.writeUInt32BE(0, mdat);
    const cut = at('cut.mp4');
    writeFileSync(cut, buf.subarray(0, buf.length - 5000));
    const dir = path.dirname(cut);
    const before = (await fsp.readdir(dir)).sort();
    expect(await codeOf(sanitizeVideo(cut, at('cut.clean.mp4'), POLICY, 'mp4'))).toBe('E_SANITIZE_TRUNCATED');
    expect((await fsp.readdir(dir)).sort()).toEqual(before);
  });

  it('a source that ends while it is read: E_SANITIZE_TRUNCATED', async () => {
    const file = await openFileSource(base);
    const shrinking: ByteSource = {
      size: file.size,
      read: async (p, l) => {
        if (p + l > file.size - 20_000 && p > 100_000) throw new KluisError('E_SANITIZE_TRUNCATED', 'the source ended early');
        return file.read(p, l);
      },
    };
    const scratchDir = at('scratch-shrink');
    await fsp.mkdir(scratchDir);
    try {
      expect(await codeOf(sanitizeVideoStream(shrinking, { write: async () => undefined }, POLICY, { format: 'mp4', scratchDir }))).toBe('E_SANITIZE_TRUNCATED');
    } finally {
      await file.close();
    }
    expect(await fsp.readdir(scratchDir)).toEqual([]);
  });

  it('two kept tracks that claim the same bytes are refused (E_SANITIZE_SAMPLE_OVERLAP)', async () => {
    const buf = readFileSync(base);
    // The audio track's first chunk is made to point at the video track's first chunk.
    const stcos: number[] = [];
    for (let i = buf.indexOf('stco'); i >= 0; i = buf.indexOf('stco', i + 4)) stcos.push(i);
    expect(stcos).toHaveLength(2);
    buf.writeUInt32BE(buf.readUInt32BE(stcos[0]! + 12), stcos[1]! + 12);
    const f = at('overlap.mp4');
    writeFileSync(f, buf);
    expect(await codeOf(sanitizeVideo(f, at('overlap.clean.mp4'), POLICY, 'mp4'))).toBe('E_SANITIZE_SAMPLE_OVERLAP');
  });

  it('two kept tracks with one track id are refused (E_SANITIZE_TRACK_MAP): the essence names tracks by id', async () => {
    const buf = readFileSync(base);
    const tkhds: number[] = [];
    for (let i = buf.indexOf('tkhd'); i >= 0; i = buf.indexOf('tkhd', i + 4)) tkhds.push(i);
    expect(tkhds).toHaveLength(2);
    buf.writeUInt32BE(buf.readUInt32BE(tkhds[0]! + 16), tkhds[1]! + 16); // version 0: track_ID after the two times
    const f = at('same-id.mp4');
    writeFileSync(f, buf);
    expect(await codeOf(sanitizeVideo(f, at('same-id.clean.mp4'), POLICY, 'mp4'))).toBe('E_SANITIZE_TRACK_MAP');
  });

  it('an index that points into moov (it would carry metadata into the mdat) is refused (E_SANITIZE_SAMPLE_RANGE)', async () => {
    // The DJI Mini 2 file keeps moov first; its video track's first chunk is pointed at the
    // ©xyz location atom, whose bytes would become the first frame's.
    const buf = Buffer.from(readFileSync(realVideo('dji-mini2_udta.mp4')));
    const gps = buf.indexOf(Buffer.from('\u00a9xyz', 'latin1'));
    const stco = buf.indexOf('stco');
    expect(gps).toBeGreaterThan(0);
    expect(buf.indexOf('mdat')).toBeGreaterThan(gps);
    buf.writeUInt32BE(gps, stco + 12);
    const f = at('into-moov.mp4');
    writeFileSync(f, buf);
    expect(await codeOf(sanitizeVideo(f, at('into-moov.clean.mp4'), POLICY, 'mp4'))).toBe('E_SANITIZE_SAMPLE_RANGE');
  });

  it('the essence covers timing and decoder configuration, not where samples lie or who wrote them', async () => {
    const { out, res } = await sanitized(base);
    const video = res.essence[0]!;
    const patch = async (name: string, edit: (b: Buffer) => void): Promise<string | null> => {
      const b = readFileSync(out);
      edit(b);
      const f = at(name);
      writeFileSync(f, b);
      return recomputeEssence(f, 'mp4', video);
    };
    expect(await patch('same.mp4', () => undefined)).toBe(video.after);
    // A frame shown later (stts), a changed decoder configuration (avcC): other values.
    expect(await patch('stts.mp4', (b) => {
      const s = b.indexOf('stts');
      b.writeUInt32BE(b.readUInt32BE(s + 16) + 1, s + 16);
    })).not.toBe(video.after);
    expect(await patch('avcc.mp4', (b) => {
      const s = b.indexOf('avcC');
      b[s + 8] = (b[s + 8] ?? 0) ^ 1;
    })).not.toBe(video.after);
    // A compressor name (not read by decoders; the sanitizer zeroes it): the same value.
    expect(await patch('compressor.mp4', (b) => {
      const e = b.indexOf('avc1', b.indexOf('stsd'));
      b.write('\x05DJIxx', e + 4 + 42, 'latin1');
    })).toBe(video.after);
  });

  it('a fragmented MP4 goes to the ffmpeg stream copy, from a path and from a stream', async () => {
    const frag = at('frag.mp4');
    ff(['-i', base, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', frag]);
    const { out, res } = await sanitized(frag);
    expect(res.kept.some((k) => /ffmpeg stream copy.*fragmented/.test(k))).toBe(true);
    expect(res.essence.map((e) => essenceMethodOf(e)?.method)).toEqual(['ffmpeg-framehash-sha256', 'ffmpeg-framehash-sha256']);
    for (const e of res.essence) expect(await recomputeEssence(out, 'mp4', e)).toBe(e.after);
    const src = await openFileSource(frag);
    const chunks: Buffer[] = [];
    const scratchDir = at('scratch-frag');
    await fsp.mkdir(scratchDir);
    try {
      const r = await sanitizeStream(src, { write: async (b) => void chunks.push(Buffer.from(b)) }, POLICY, { format: 'mp4', scratchDir });
      expect(createHash('sha256').update(Buffer.concat(chunks)).digest('hex')).toBe(r.sha256);
      expect(r.essence.map((e) => e.after)).toEqual(res.essence.map((e) => e.after));
    } finally {
      await src.close();
    }
    expect(await fsp.readdir(scratchDir)).toEqual([]);
  });

  it('sanitizeStream hands the sink exactly the bytes it hashed, the same as the file path writes, and a thumbnail when asked', async () => {
    const { out, res } = await sanitized(withTelemetry);
    const src = await openFileSource(withTelemetry);
    const chunks: Buffer[] = [];
    const scratchDir = at('scratch-stream');
    await fsp.mkdir(scratchDir);
    try {
      const r = await sanitizeStream(src, { write: async (b) => void chunks.push(Buffer.from(b)) }, POLICY, { format: 'mp4', scratchDir, thumbnail: { maxEdge: 120 } });
      const bytes = Buffer.concat(chunks);
      expect(bytes.equals(readFileSync(out))).toBe(true);
      expect(r.sha256).toBe(res.sha256);
      expect(r.size).toBe(bytes.length);
      expect(r.thumbnail?.subarray(0, 2).toString('hex')).toBe('ffd8');
      const meta = await sharp(r.thumbnail!).metadata();
      expect(Math.max(meta.width ?? 0, meta.height ?? 0)).toBe(120);
    } finally {
      await src.close();
    }
    expect(await fsp.readdir(scratchDir)).toEqual([]);
  });
});
