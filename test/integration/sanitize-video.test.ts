/**
 * Round trips of sanitizeVideo on every real vendor video and every generated fixture, each result
 * re-read by readers the module does not control here: ExifTool, ffprobe, a whole-file byte search
 * for the known identifiers, our box walker, and an ffmpeg streamhash of the essence.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../src/errors.js';
import { sanitizeVideo, sniffVideo } from '../../src/sanitize/video/index.js';
import { allBoxes, walkFile } from '../../src/sanitize/video/boxes.js';
import type { SanitizeResult } from '../../src/sanitize/types.js';
import { bytesOf, exiftoolJson, ffprobe, generatedVideo, realVideo, scratch } from './sanitize-video-helpers.js';

const tmp = scratch('sanitize-video');
afterAll(() => tmp.done());

const POLICY = { thermal: 'keep' as const };

/** Identifiers that must be gone, per fixture (they are all in the input: checked below). */
interface Case {
  name: string;
  file: string;
  gone: string[];
  removedClasses: string[];
  streams: string[];
}

const CASES: Case[] = [
  {
    name: 'real DJI Mini 2 (udta atoms, ilst comment, Xtra, text GPS track, priv track)',
    file: realVideo('dji-mini2_udta.mp4'),
    gone: ['1SFOJ8J0AB0GAM', 'FC7303', '+60.1813+25.0086', 'WM/Category', 'GPAC'],
    removedClasses: ['gps', 'serial', 'speed', 'attitude', 'make-model', 'firmware', 'timed-metadata', 'creation-time'],
    streams: ['video'],
  },
  {
    name: 'real DJI Osmo Action (djmd protobuf track, tmcd)',
    file: realVideo('DJI_20260315180109_0003_D.MP4'),
    gone: ['DJI AC004', 'DJI meta', 'Lavf62'],
    removedClasses: ['timed-metadata', 'firmware'],
    streams: ['video', 'audio'],
  },
  {
    name: 'real DJI re-encoded (creation_time, encoder)',
    file: realVideo('DJI_20250723102139_0001_D.MP4'),
    gone: ['Lavf62.3.100'],
    removedClasses: ['creation-time', 'firmware'],
    streams: ['video'],
  },
  {
    name: 'generated MOV with QuickTime keys (location, make, model, software)',
    file: generatedVideo('keys-location.mov'),
    gone: ['+52.0907+005.1214', 'FC7303', 'v01.02.0300', 'pilot-7', 'com.apple.quicktime', 'DJI'],
    removedClasses: ['gps', 'make-model', 'firmware', 'creation-time'],
    streams: ['video', 'audio'],
  },
  {
    name: 'generated MP4 with uuid XMP, tx3g GPS track, binary dbgi track, DJI udta',
    file: generatedVideo('xmp-text-data.mp4'),
    gone: ['3N1SFXK0023ABC', 'FC7303', '+52.0907+005.1214', 'drone-dji', 'xmpmeta', 'DJI', 'GPS ('],
    removedClasses: ['gps', 'serial', 'make-model', 'vendor-xmp', 'timed-metadata', 'firmware'],
    streams: ['video', 'audio'],
  },
  {
    name: 'generated MP4 with cover art carrying EXIF GPS',
    file: generatedVideo('cover-art.mp4'),
    gone: ['DJI', 'Exif'],
    removedClasses: ['thumbnail'],
    streams: ['video', 'audio'],
  },
];

/** ffmpeg's own per-stream hash of the picture/sound packets (attached pictures excluded by 0:V). */
function streamhash(file: string): string[] {
  const out = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:V', '-map', '0:a?', '-c', 'copy', '-f', 'streamhash', '-hash', 'sha256', '-']);
  return out.toString('utf8').trim().split('\n');
}

const FORBIDDEN_EXIF = /GPS|Location|Serial|Make|Model|Software|Comment|Encoder|Author|XMP|Firmware|Gimbal|Yaw|Pitch|Roll|Speed|Title|Text|Subtitle|TimeCode/i;

describe.each(CASES)('sanitizeVideo: $name', (c) => {
  let result: SanitizeResult;
  const out = path.join(tmp.dir, `${path.basename(c.file)}.out`);

  it('the input really carries what must go (the test can fail)', () => {
    const raw = bytesOf(c.file);
    for (const s of c.gone) expect(raw.includes(s) || raw.includes(Buffer.from(s, 'utf16le').toString('latin1')), s).toBe(true);
  });

  it('sanitizes with equal essence and lists what it removed', async () => {
    const head = (await fsp.readFile(c.file)).subarray(0, 4096);
    const format = sniffVideo(head);
    expect(format).not.toBeNull();
    result = await sanitizeVideo(c.file, out, POLICY, format as 'mp4' | 'mov');
    expect(result.essence.length).toBe(c.streams.length);
    for (const e of result.essence) expect(e.after).toBe(e.before);
    const classes = new Set(result.removed.map((r) => r.what));
    for (const cls of c.removedClasses) expect([...classes], cls).toContain(cls);
    for (const r of result.removed) expect(r.bytes).toBeGreaterThan(0);
    expect(result.checks.map((k) => k.tool).sort()).toEqual(['box-walker', 'exiftool', 'mp4box']);
    for (const k of result.checks) expect(k.found, k.tool).toEqual([]);
    const st = await fsp.stat(out);
    expect(result.size).toBe(st.size);
  });

  it('the output holds none of the identifiers anywhere in its bytes', () => {
    const raw = bytesOf(out);
    for (const s of c.gone) {
      expect(raw.includes(s), s).toBe(false);
      expect(raw.includes(Buffer.from(s, 'utf16le').toString('latin1')), `${s} (UTF-16)`).toBe(false);
    }
  });

  it('ExifTool finds no telemetry, identity or vendor group in the output', () => {
    const rec = exiftoolJson(out);
    const bad = Object.entries(rec).filter(([k, v]) => {
      const [group = '', name = ''] = k.split(':');
      if (k === 'SourceFile' || group === 'System' || group === 'File' || group === 'ExifTool') return false;
      if (!/^(QuickTime|Track\d+|Composite)$/.test(group)) return true;
      if (name === 'HandlerDescription') return !/^(VideoHandler|SoundHandler|DataHandler|)$/.test(String(v));
      if (/Date$/.test(name)) return !String(v).startsWith('0000:00:00');
      return FORBIDDEN_EXIF.test(name) && name !== 'SampleGroupDescription';
    });
    expect(bad).toEqual([]);
  });

  it('ffprobe shows only the picture and sound streams, without tags beyond neutral ones', () => {
    const p = ffprobe(out);
    expect(p.streams.map((s) => s.codec_type)).toEqual(c.streams);
    for (const s of p.streams) {
      expect(s.disposition?.attached_pic ?? 0).toBe(0);
      for (const [k, v] of Object.entries(s.tags ?? {})) {
        expect(['language', 'handler_name', 'vendor_id'], `${k}=${v}`).toContain(k);
        if (k === 'handler_name') expect(['VideoHandler', 'SoundHandler', '']).toContain(v);
      }
    }
    expect(Object.keys(p.format.tags ?? {}).sort()).toEqual(
      expect.arrayContaining(Object.keys(p.format.tags ?? {}).filter((k) => ['major_brand', 'minor_version', 'compatible_brands'].includes(k))),
    );
    expect(Object.keys(p.format.tags ?? {}).filter((k) => !['major_brand', 'minor_version', 'compatible_brands'].includes(k))).toEqual([]);
    expect(p.chapters ?? []).toEqual([]);
  });

  it('the box tree has no udta content, meta keys, uuid or extra tracks', async () => {
    const tree = await walkFile(out);
    const types = [...allBoxes(tree.boxes)].map((b) => b.type);
    for (const t of ['uuid', 'keys', 'Xtra', 'tref', 'gmhd', 'nmhd', 'tmcd', 'text', 'tx3g', 'djmd', 'dbgi', 'priv', 'covr']) {
      expect(types, t).not.toContain(t);
    }
    expect(types.filter((t) => t.startsWith('\u00a9'))).toEqual([]);
    expect(types.filter((t) => t === 'trak')).toHaveLength(c.streams.length);
  });

  it('the picture and sound packets are identical (ffmpeg streamhash, independent of the module)', () => {
    expect(streamhash(out)).toEqual(streamhash(c.file));
  });
});

describe('sanitizeVideo fails closed on bad input and leaves nothing behind', () => {
  async function failure(input: string, format: 'mp4' | 'mov'): Promise<KluisError> {
    const dir = path.join(tmp.dir, `bad-${path.basename(input)}`);
    await fsp.mkdir(dir, { recursive: true });
    const out = path.join(dir, 'out.mp4');
    let caught: unknown;
    try {
      await sanitizeVideo(input, out, POLICY, format);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KluisError);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    const e = caught as KluisError;
    expect(e.code.startsWith('E_SANITIZE_')).toBe(true);
    expect(e.hint ?? '').not.toBe('');
    return e;
  }

  it('empty file', async () => {
    const f = path.join(tmp.dir, 'empty.mp4');
    await fsp.writeFile(f, '');
    expect((await failure(f, 'mp4')).code).toBe('E_SANITIZE_EMPTY');
  });

  it('truncated recording: moov at the end never written', async () => {
    const src = await fsp.readFile(realVideo('DJI_20260315180109_0003_D.MP4'));
    const f = path.join(tmp.dir, 'cut.mp4');
    await fsp.writeFile(f, src.subarray(0, 50_000));
    expect((await failure(f, 'mov')).code).toBe('E_SANITIZE_BOX_TRUNCATED');
  });

  it('complete boxes but no moov', async () => {
    const src = await fsp.readFile(realVideo('DJI_20250723102139_0001_D.MP4'));
    const f = path.join(tmp.dir, 'nomoov.mp4');
    // ftyp + free + mdat of the real file, without the moov that follows.
    await fsp.writeFile(f, src.subarray(0, 993_024));
    const e = await failure(f, 'mp4');
    expect(e.code).toBe('E_SANITIZE_NO_MOOV');
    expect(e.hint).toMatch(/interrupted/);
  });

  it('faststart file whose mdat was cut short', async () => {
    const fs = path.join(tmp.dir, 'faststart.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', generatedVideo('cover-art.mp4'), '-map', '0:0', '-c', 'copy', '-movflags', '+faststart', fs]);
    const buf = await fsp.readFile(fs);
    const f = path.join(tmp.dir, 'faststart-cut.mp4');
    await fsp.writeFile(f, buf.subarray(0, buf.length - 1000));
    expect((await failure(f, 'mp4')).code).toBe('E_SANITIZE_BOX_TRUNCATED');
  });

  it('not a video at all', async () => {
    const f = path.join(tmp.dir, 'noise.mp4');
    await fsp.writeFile(f, Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251)));
    expect((await failure(f, 'mp4')).code).toBe('E_SANITIZE_FORMAT');
  });

  it('a MOV passed as MP4', async () => {
    expect((await failure(realVideo('DJI_20260315180109_0003_D.MP4'), 'mp4')).code).toBe('E_SANITIZE_FORMAT');
  });

  it('Motion-JPEG video (frames carry their own EXIF) is refused, not passed', async () => {
    const f = path.join(tmp.dir, 'mjpeg.mov');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x36:rate=5:duration=1', '-c:v', 'mjpeg', '-f', 'mov', f]);
    expect((await failure(f, 'mov')).code).toBe('E_SANITIZE_UNSUPPORTED_CODEC');
  });

  it('a file with only a data track has no essence', async () => {
    const f = path.join(tmp.dir, 'dataonly.mov');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', realVideo('DJI_20260315180109_0003_D.MP4'), '-map', '0:3', '-c', 'copy', '-f', 'mov', f]);
    expect((await failure(f, 'mov')).code).toBe('E_SANITIZE_NO_ESSENCE');
  });
});
