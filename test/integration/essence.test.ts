// recomputeEssence: for each method id the sanitizers write, the value recomputed from the
// sanitized file equals the recorded `after` (real sanitizer runs on real vendor files and on
// files made here with ffmpeg); methods are recorded as data ({ method, track | stream }) and the
// older strings are still read, both deliberately (unknown id -> null, known id with a bad
// parameter -> E_ESSENCE_METHOD); the legacy video form finds its stream even
// when a removed stream came before it; and a file of the wrong kind is named, never hashed.
// Video files sanitized by the ffmpeg stream copy (what manifests before the own rewriter hold,
// and what its fallback still writes) keep being rechecked through their ffmpeg-framehash ids.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  sanitizeFile, sniffFile, recomputeEssence, essenceLabel, essenceMethodOf, parseEssenceMethod, ESSENCE_METHOD_IDS, type EssenceProof, type SanitizeResult,
} from '../../src/sanitize/index.js';
import { jpegScanSha256 } from '../../src/sanitize/jpeg/sanitize.js';
import { decodedPixelSha256 } from '../../src/sanitize/verify/tools.js';
import { essence, sanitizeVideoByFfmpeg } from '../../src/sanitize/video/index.js';

const real = path.resolve(__dirname, '..', 'fixtures', 'real');
const generated = path.resolve(__dirname, '..', 'fixtures', 'generated');
let dir: string;

const ff = (args: string[]): void => void execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });

async function sanitized(input: string, name: string): Promise<{ out: string; res: SanitizeResult }> {
  const out = path.join(dir, name);
  const res = await sanitizeFile(input, out, { thermal: 'keep' });
  return { out, res };
}

/** Sanitized the way kluis did before its own rewriter (and still does as the fallback). */
async function sanitizedByFfmpeg(input: string, name: string): Promise<{ out: string; res: SanitizeResult }> {
  const out = path.join(dir, name);
  const format = await sniffFile(input);
  expect(format === 'mp4' || format === 'mov').toBe(true);
  const res = await sanitizeVideoByFfmpeg(input, out, { thermal: 'keep' }, format as 'mp4' | 'mov');
  return { out, res };
}

/** Every recorded proof, recomputed from the sanitized file, equals its `after`. */
async function expectAllRecompute(out: string, res: SanitizeResult): Promise<string[]> {
  const ids: string[] = [];
  for (const e of res.essence) {
    const got = await recomputeEssence(out, res.format, e);
    expect(got, essenceLabel(e)).toBe(e.after);
    ids.push(essenceMethodOf(e)!.method);
  }
  return ids;
}

/** A video proof as the ffmpeg stream copy wrote it before methods were data: "ID:s<N> text". */
function framehashString(e: EssenceProof): string {
  if (e.method !== 'ffmpeg-framehash-sha256' || !e.about) throw new Error(`not an ffmpeg proof: ${essenceLabel(e)}`);
  const a = e.about;
  return `ffmpeg-framehash-sha256:s${e.stream} per packet, stream ${a.cardStream} (${a.kind} ${a.codec}, ${a.packets} packets, ${a.bytes} bytes)`;
}
/** The same in the legacy form, before the :s<N> parameter existed. */
const legacyFramehash = (e: EssenceProof): string => framehashString(e).replace(/^ffmpeg-framehash-sha256:s\d+ /, 'ffmpeg-framehash-sha256 ');
const isAac = (e: EssenceProof): boolean => e.about?.kind === 'audio' && e.about.codec === 'aac';

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-essence-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('parseEssenceMethod: the method strings of older manifests', () => {
  it('reads each id the sanitizers wrote, with the human text after the first space ignored', () => {
    expect(parseEssenceMethod('jpeg-decoder-segments-sha256')).toEqual({ method: 'jpeg-decoder-segments-sha256' });
    expect(parseEssenceMethod('jpeg-scan-sha256')).toEqual({ method: 'jpeg-scan-sha256' });
    expect(parseEssenceMethod('decoded-pixels-sha256 (ffmpeg, native pix_fmt, first picture, no autorotate)')).toEqual({ method: 'decoded-pixels-sha256' });
    expect(parseEssenceMethod('decoded-pixels-sha256 (ffmpeg, native pix_fmt, first picture)')).toEqual({ method: 'decoded-pixels-sha256' });
    expect(parseEssenceMethod('tiff-image-data-and-decoding-tags-sha256')).toEqual({ method: 'tiff-image-data-and-decoding-tags-sha256' });
    expect(parseEssenceMethod('ffmpeg-framehash-sha256:s1 per packet, stream 2 (audio aac, 10 packets, 99 bytes)')).toEqual({ method: 'ffmpeg-framehash-sha256', stream: 1 });
    expect(parseEssenceMethod('mp4-samples-sha256:t2 per track, track 2 (audio aac, 10 samples, 99 bytes)')).toEqual({ method: 'mp4-samples-sha256', track: 2 });
    expect(parseEssenceMethod('mp4-samples-sha256:t4294967295')).toEqual({ method: 'mp4-samples-sha256', track: 4294967295 });
  });

  it('reads the legacy video form by its fixed layout', () => {
    expect(parseEssenceMethod('ffmpeg-framehash-sha256 per packet, stream 3 (audio aac, 47 packets, 12345 bytes)')).toEqual({
      method: 'ffmpeg-framehash-sha256',
      legacy: { inputIndex: 3, kind: 'audio', codec: 'aac', packets: 47, bytes: 12345 },
    });
  });

  it('gives null for an id it does not know, and only then', () => {
    for (const m of ['test-essence', 'decoded-pixels-sha512', 'jpeg-scan', 'JPEG-SCAN-SHA256', '', ' jpeg-scan-sha256', 'decoded-pixels-sha256(ffmpeg)', 'sha256 of jpeg-scan-sha256']) {
      expect(parseEssenceMethod(m), m).toBeNull();
    }
    const param: Record<string, string> = { 'ffmpeg-framehash-sha256': ':s0', 'mp4-samples-sha256': ':t1' };
    expect(ESSENCE_METHOD_IDS.every((id) => parseEssenceMethod(`${id}${param[id] ?? ''}`)?.method === id)).toBe(true);
  });

  it('refuses a known id with a parameter it cannot read (E_ESSENCE_METHOD), rather than calling it unknown', () => {
    for (const m of [
      'jpeg-scan-sha256:s1',
      'ffmpeg-framehash-sha256:x1 per packet',
      'ffmpeg-framehash-sha256:s01',
      'ffmpeg-framehash-sha256',
      'ffmpeg-framehash-sha256 per packet, stream 1 (subtitle mov_text, 1 packets, 2 bytes)',
      'ffmpeg-framehash-sha256 per packet, stream one (audio aac, 1 packets, 2 bytes)',
      'mp4-samples-sha256',
      'mp4-samples-sha256 per track, track 1 (video h264, 1 samples, 2 bytes)',
      'mp4-samples-sha256:s1',
      'mp4-samples-sha256:t0',
      'mp4-samples-sha256:t01',
      'mp4-samples-sha256:t4294967296',
    ]) {
      expect(() => parseEssenceMethod(m), m).toThrow(expect.objectContaining({ code: 'E_ESSENCE_METHOD' }));
    }
  });
});

describe('essenceMethodOf: methods as data, and the older strings', () => {
  it('reads the structured form each sanitizer writes', () => {
    expect(essenceMethodOf({ method: 'jpeg-decoder-segments-sha256', before: 'a', after: 'a' })).toEqual({ method: 'jpeg-decoder-segments-sha256' });
    expect(essenceMethodOf({ method: 'tiff-image-data-and-decoding-tags-sha256' })).toEqual({ method: 'tiff-image-data-and-decoding-tags-sha256' });
    expect(essenceMethodOf({ method: 'mp4-samples-sha256', track: 2, about: { kind: 'audio', codec: 'aac', samples: 10, bytes: 99 } })).toEqual({ method: 'mp4-samples-sha256', track: 2 });
    expect(essenceMethodOf({ method: 'ffmpeg-framehash-sha256', stream: 0 })).toEqual({ method: 'ffmpeg-framehash-sha256', stream: 0 });
  });

  it('reads an older string in `method` as parseEssenceMethod does, and a bare string too', () => {
    const old = 'mp4-samples-sha256:t2 per track, track 2 (audio aac, 10 samples, 99 bytes)';
    expect(essenceMethodOf({ method: old, before: 'a', after: 'a' })).toEqual({ method: 'mp4-samples-sha256', track: 2 });
    expect(essenceMethodOf(old)).toEqual({ method: 'mp4-samples-sha256', track: 2 });
    expect(essenceMethodOf({ method: 'ffmpeg-framehash-sha256 per packet, stream 3 (audio aac, 47 packets, 12345 bytes)' })).toEqual({
      method: 'ffmpeg-framehash-sha256',
      legacy: { inputIndex: 3, kind: 'audio', codec: 'aac', packets: 47, bytes: 12345 },
    });
  });

  it('gives null for an id it does not know, and refuses a known id without its parameter (E_ESSENCE_METHOD)', () => {
    expect(essenceMethodOf({ method: 'test-essence' })).toBeNull();
    expect(essenceMethodOf({ method: 'mp4-samples-sha512', track: 1 })).toBeNull();
    for (const e of [
      { method: 'mp4-samples-sha256' },
      { method: 'mp4-samples-sha256', track: 0 },
      { method: 'mp4-samples-sha256', track: 1.5 },
      { method: 'mp4-samples-sha256', track: '1' },
      { method: 'mp4-samples-sha256', track: 4294967296 },
      { method: 'mp4-samples-sha256', stream: 1 },
      { method: 'ffmpeg-framehash-sha256' },
      { method: 'ffmpeg-framehash-sha256', stream: -1 },
      { method: 'ffmpeg-framehash-sha256', track: 1 },
    ]) {
      expect(() => essenceMethodOf(e), JSON.stringify(e)).toThrow(expect.objectContaining({ code: 'E_ESSENCE_METHOD' }));
    }
  });

  it('names an entry in words: an older string as it is, the structured form with its track or stream', () => {
    const old = 'mp4-samples-sha256:t1 per track, track 1 (video h264, 42 samples, 1000 bytes)';
    expect(essenceLabel({ method: old })).toBe(old);
    expect(essenceLabel({ method: 'jpeg-decoder-segments-sha256' })).toBe('jpeg-decoder-segments-sha256');
    expect(essenceLabel({ method: 'mp4-samples-sha256', track: 1, about: { kind: 'video', codec: 'h264', samples: 42, bytes: 1000 } })).toBe(
      'mp4-samples-sha256 track 1 (video h264, 42 samples, 1000 bytes)',
    );
    expect(essenceLabel({ method: 'ffmpeg-framehash-sha256', stream: 1, about: { kind: 'audio', codec: 'aac', packets: 47, bytes: 12345, cardStream: 2 } })).toBe(
      'ffmpeg-framehash-sha256 stream 1 (card stream 2, audio aac, 47 packets, 12345 bytes)',
    );
  });
});

describe('recomputeEssence per method id', () => {
  it('JPEG (real Mavic 3 Pro file): jpeg-decoder-segments-sha256 equals the recorded after', async () => {
    const { out, res } = await sanitized(path.join(real, 'image', 'mavic3pro_xmp.jpg'), 'm3.jpg');
    const ids = await expectAllRecompute(out, res);
    expect(ids).toEqual(['jpeg-decoder-segments-sha256']);
  });

  it('JPEG: the methods of older manifests (decoded-pixels-sha256, jpeg-scan-sha256) still recompute to what they recorded', async () => {
    // What the sanitizer recorded then: the value of the card file (before), equal to the output's (after).
    const input = path.join(real, 'image', 'mavic3pro_xmp.jpg');
    const { out } = await sanitized(input, 'm3-old.jpg');
    const old = [
      { method: 'decoded-pixels-sha256 (ffmpeg, native pix_fmt, first picture, no autorotate)', before: (await decodedPixelSha256(input)).sha256 },
      { method: 'jpeg-scan-sha256', before: jpegScanSha256(readFileSync(input)) },
    ];
    for (const o of old) expect(await recomputeEssence(out, 'jpeg', o.method), o.method).toBe(o.before);
  });

  it('JPEG: a re-encoded copy gives other values for the new method and the older ones', async () => {
    const { out, res } = await sanitized(path.join(real, 'image', 'mavic3pro_xmp.jpg'), 'm3b.jpg');
    const again = path.join(dir, 'm3-reencoded.jpg');
    ff(['-i', out, '-q:v', '2', again]);
    const methods = [...res.essence, 'decoded-pixels-sha256', 'jpeg-scan-sha256'];
    expect(methods).toHaveLength(3);
    for (const m of methods) {
      const got = await recomputeEssence(again, 'jpeg', m);
      const name = typeof m === 'string' ? m : essenceLabel(m);
      expect(got, name).toMatch(/^[0-9a-f]{64}$/);
      expect(got, name).not.toBe(await recomputeEssence(out, 'jpeg', m));
    }
  });

  it('TIFF (real XT2 radiometric file): tiff-image-data-and-decoding-tags-sha256 (and decoded pixels where ffmpeg decodes it)', async () => {
    const { out, res } = await sanitized(path.join(real, 'image', 'xt2_radiometric.tiff'), 'xt2.tiff');
    const ids = await expectAllRecompute(out, res);
    expect(ids).toContain('tiff-image-data-and-decoding-tags-sha256');
  });

  it('TIFF and DNG (generated 16-bit files): the structural method, and decoded-pixels-sha256 of older manifests', async () => {
    for (const f of ['tagged.tiff', 'tagged-dng.tiff']) {
      const input = path.join(generated, f);
      const { out, res } = await sanitized(input, `g-${f}`);
      const ids = await expectAllRecompute(out, res);
      expect(ids, f).toEqual(['tiff-image-data-and-decoding-tags-sha256']);
      // An older manifest recorded the decoded pixels too (before = the card file's value).
      const px = (await decodedPixelSha256(input)).sha256;
      expect(await recomputeEssence(out, res.format, 'decoded-pixels-sha256 (ffmpeg, native pix_fmt, first picture)'), f).toBe(px);
    }
  });

  it('MP4 (real DJI Osmo file: video, audio and two data streams): mp4-samples-sha256 per kept track by its track_ID, the same value on the card file', async () => {
    const card = path.join(real, 'video', 'DJI_20260315180109_0003_D.MP4');
    const { out, res } = await sanitized(card, 'osmo-own.mp4');
    // Recorded as data: the method id and the track, with what the track is beside it.
    expect(res.essence.map(({ before: _b, after: _a, about, ...m }) => ({ ...m, kind: about?.kind }))).toEqual([
      { method: 'mp4-samples-sha256', track: 1, kind: 'video' },
      { method: 'mp4-samples-sha256', track: 2, kind: 'audio' },
    ]);
    await expectAllRecompute(out, res);
    // The recompute reads any file: on the card file it gives the recorded `before`.
    for (const e of res.essence) {
      expect(e.before).toBe(e.after);
      expect(await recomputeEssence(card, 'mov', e)).toBe(e.before);
    }
    // Track 3 (djmd telemetry) is on the card but not picture or sound; track 9 exists nowhere.
    await expect(recomputeEssence(card, 'mov', 'mp4-samples-sha256:t3')).rejects.toMatchObject({ code: 'E_ESSENCE_STREAM' });
    await expect(recomputeEssence(out, 'mov', 'mp4-samples-sha256:t3')).rejects.toMatchObject({ code: 'E_ESSENCE_STREAM' });
    await expect(recomputeEssence(out, 'mov', 'mp4-samples-sha256:t9')).rejects.toMatchObject({ code: 'E_ESSENCE_STREAM' });
    // The earlier proof agrees on the new output: ffmpeg's packet hashes of the kept card streams
    // (what the ffmpeg path recorded) recompute from the rewriter's file, stream by stream.
    const cardPackets = await essence(card, ['0:0', '0:1'], 120_000);
    expect(await recomputeEssence(out, 'mov', 'ffmpeg-framehash-sha256:s0 per packet')).toBe(cardPackets[0]!.digest);
    expect(await recomputeEssence(out, 'mov', 'ffmpeg-framehash-sha256:s1 per packet')).toBe(cardPackets[1]!.digest);
  });

  it('MP4 sanitized by the ffmpeg stream copy (real DJI Osmo file): ffmpeg-framehash-sha256 per kept stream by its index', async () => {
    const { out, res } = await sanitizedByFfmpeg(path.join(real, 'video', 'DJI_20260315180109_0003_D.MP4'), 'osmo.mp4');
    expect(res.essence.map((e) => essenceMethodOf(e))).toEqual([
      { method: 'ffmpeg-framehash-sha256', stream: 0 },
      { method: 'ffmpeg-framehash-sha256', stream: 1 },
    ]);
    await expectAllRecompute(out, res);
    // The same recorded values through the strings the sanitizer used to write: with :s<N>, and
    // the legacy form without it.
    for (const e of res.essence) {
      expect(await recomputeEssence(out, 'mp4', framehashString(e))).toBe(e.after);
      expect(await recomputeEssence(out, 'mp4', legacyFramehash(e))).toBe(e.after);
    }
    await expect(recomputeEssence(out, 'mp4', 'ffmpeg-framehash-sha256:s2 per packet')).rejects.toMatchObject({ code: 'E_ESSENCE_STREAM' });
  });

  it('legacy video form: finds the stream when a removed stream came before it on the card', async () => {
    const srt = path.join(dir, 'first.srt');
    writeFileSync(srt, '1\n00:00:00,000 --> 00:00:00,900\n[latitude: 52.0907] [longitude: 5.1214]\n');
    const input = path.join(dir, 'subs-first.mp4');
    ff(['-i', srt, '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-map', '0', '-map', '1', '-map', '2', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-c:s', 'mov_text', input]);
    const { out, res } = await sanitizedByFfmpeg(input, 'subs-first-clean.mp4');
    const audio = res.essence.find(isAac)!;
    expect(audio).toMatchObject({ method: 'ffmpeg-framehash-sha256', stream: 1, about: { cardStream: 2, kind: 'audio', codec: 'aac' } });
    await expectAllRecompute(out, res);
    const legacy = legacyFramehash(audio);
    expect(legacy).toMatch(/^ffmpeg-framehash-sha256 per packet, stream 2 \(audio aac, /);
    expect(await recomputeEssence(out, 'mp4', legacy)).toBe(audio.after);
  });

  it('legacy video form: two streams of the same kind and codec are told apart by packet and byte counts, else E_ESSENCE_AMBIGUOUS', async () => {
    const input = path.join(dir, 'two-audio.mp4');
    ff(['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-f', 'lavfi', '-t', '1', '-i', 'sine=frequency=440:sample_rate=48000',
      '-f', 'lavfi', '-t', '0.5', '-i', 'sine=frequency=880:sample_rate=48000',
      '-map', '0', '-map', '1', '-map', '2', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', input]);
    const own = await sanitized(input, 'two-audio-own.mp4');
    const ownAudios = own.res.essence.filter(isAac);
    expect(ownAudios.map((e) => essenceMethodOf(e))).toEqual([{ method: 'mp4-samples-sha256', track: 2 }, { method: 'mp4-samples-sha256', track: 3 }]);
    expect(ownAudios[0]!.after).not.toBe(ownAudios[1]!.after);
    await expectAllRecompute(own.out, own.res);
    const { out, res } = await sanitizedByFfmpeg(input, 'two-audio-clean.mp4');
    const audios = res.essence.filter(isAac);
    expect(audios).toHaveLength(2);
    expect(audios[0]!.after).not.toBe(audios[1]!.after);
    for (const a of audios) expect(await recomputeEssence(out, 'mp4', legacyFramehash(a))).toBe(a.after);
    // Counts that fit neither (or both) cannot name a stream: said so, never guessed.
    await expect(recomputeEssence(out, 'mp4', 'ffmpeg-framehash-sha256 per packet, stream 2 (audio aac, 1 packets, 1 bytes)')).rejects.toMatchObject({ code: 'E_ESSENCE_AMBIGUOUS' });
    await expect(recomputeEssence(out, 'mp4', 'ffmpeg-framehash-sha256 per packet, stream 2 (audio opus, 1 packets, 1 bytes)')).rejects.toMatchObject({ code: 'E_ESSENCE_STREAM' });
  });

  it('MP4: a re-encoded copy gives other per-stream values', async () => {
    const { out, res } = await sanitized(path.join(real, 'video', 'DJI_20260315180109_0003_D.MP4'), 'osmo2.mp4');
    const again = path.join(dir, 'osmo-reencoded.mp4');
    ff(['-i', out, '-map', '0', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '30', '-c:a', 'aac', '-b:a', '64k', again]);
    for (const e of res.essence) {
      const got = await recomputeEssence(again, 'mp4', e);
      expect(got, essenceLabel(e)).toMatch(/^[0-9a-f]{64}$/);
      expect(got, essenceLabel(e)).not.toBe(e.after);
    }
  });

  it('names a file of the wrong kind (E_ESSENCE_FORMAT) instead of hashing it', async () => {
    const jpeg = path.join(generated, 'base.jpg');
    await expect(recomputeEssence(jpeg, 'jpeg', 'tiff-image-data-and-decoding-tags-sha256')).rejects.toMatchObject({ code: 'E_ESSENCE_FORMAT' });
    await expect(recomputeEssence(jpeg, 'jpeg', 'ffmpeg-framehash-sha256:s0 per packet')).rejects.toMatchObject({ code: 'E_ESSENCE_FORMAT' });
    await expect(recomputeEssence(jpeg, 'mp4', 'jpeg-scan-sha256')).rejects.toMatchObject({ code: 'E_ESSENCE_FORMAT' });
    await expect(recomputeEssence(path.join(generated, 'tagged.tiff'), 'tiff', 'jpeg-decoder-segments-sha256')).rejects.toMatchObject({ code: 'E_ESSENCE_FORMAT' });
    await expect(recomputeEssence(path.join(generated, 'tagged.tiff'), 'jpeg', 'decoded-pixels-sha256')).rejects.toMatchObject({ code: 'E_ESSENCE_FORMAT' });
    // DNG and TIFF are one family (a DNG is a TIFF by its first bytes).
    expect(await recomputeEssence(path.join(generated, 'tagged-dng.tiff'), 'tiff', 'decoded-pixels-sha256')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('returns null for an unknown method without reading the file', async () => {
    expect(await recomputeEssence(path.join(dir, 'does-not-exist'), 'jpeg', 'test-essence')).toBeNull();
  });
});
