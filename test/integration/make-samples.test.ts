/**
 * scripts/make-samples really plants the telemetry the demo claims: the script is run into a
 * temporary folder and every item of samples/README.md is read back with ExifTool and ffprobe.
 * The card's videos then go through sanitizeVideo, so the demo is a real strip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { sanitizeVideo } from '../../src/sanitize/video/index.js';
import { REPO, exiftoolJson, ffprobe, scratch } from './sanitize-video-helpers.js';

const tmp = scratch('make-samples');
const card = path.join(tmp.dir, 'card');
const media = path.join(card, 'DCIM', '100MEDIA');
const SERIAL = '1581F4QWB22A3001TEST';
const CAMSERIAL = '3N1SFXK0023ABC';

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  }
  return out.sort();
}

beforeAll(() => {
  execFileSync('bash', [path.join(REPO, 'scripts', 'make-samples'), card], { stdio: ['ignore', 'ignore', 'pipe'] });
}, 120_000);
afterAll(() => tmp.done());

describe('scripts/make-samples', () => {
  it('writes the DJI layout, the same files as the committed samples/card, under 5 MB', async () => {
    const files = await listFiles(card);
    expect(files).toEqual([
      'DCIM/100MEDIA/DJI_0001.JPG',
      'DCIM/100MEDIA/DJI_0002.LRF',
      'DCIM/100MEDIA/DJI_0002.MP4',
      'DCIM/100MEDIA/DJI_0002.SRT',
      'DCIM/100MEDIA/DJI_0003.MOV',
      'MISC/GIS/DJI_0002.GIS',
      'MISC/IDX/100/DJI_0002.IDX',
      'MISC/THM/100/DJI_0002.THM',
    ]);
    expect(await listFiles(path.join(REPO, 'samples', 'card'))).toEqual(files);
    let total = 0;
    for (const f of files) total += (await fsp.stat(path.join(card, f))).size;
    expect(total).toBeLessThan(5 * 1024 * 1024);
    // The text sidecars do not depend on tool versions: they must match the committed card byte for byte.
    for (const f of ['DCIM/100MEDIA/DJI_0002.SRT', 'MISC/IDX/100/DJI_0002.IDX', 'MISC/GIS/DJI_0002.GIS']) {
      expect(readFileSync(path.join(card, f)).equals(readFileSync(path.join(REPO, 'samples', 'card', f))), f).toBe(true);
    }
  });

  it('DJI_0001.JPG carries EXIF GPS/serial/make/model, XMP drone-dji, IPTC, COM, and a second JPEG with GPS after EOI', () => {
    const jpg = path.join(media, 'DJI_0001.JPG');
    const t = exiftoolJson(jpg);
    expect(t['IFD0:Make']).toBe('DJI');
    expect(t['IFD0:Model']).toBe('FC7303');
    expect(t['ExifIFD:SerialNumber']).toBe(CAMSERIAL);
    expect(t['GPS:GPSLatitude']).toBeCloseTo(52.0907, 4);
    expect(t['GPS:GPSLongitude']).toBeCloseTo(5.1214, 4);
    expect(t['XMP-drone-dji:GPSLatitude']).toBeCloseTo(52.0907, 4);
    expect(t['XMP-drone-dji:GimbalYawDegree']).toBeDefined();
    expect(t['XMP-drone-dji:SelfData']).toBe(SERIAL);
    expect(t['IPTC:By-line']).toBe('pilot-7');
    expect(String(t['File:Comment'])).toContain(CAMSERIAL);
    // The trailing image: everything after the main image's EOI is a JPEG of its own with EXIF GPS.
    const bytes = readFileSync(jpg);
    const second = bytes.indexOf(Buffer.from([0xff, 0xd8, 0xff]), 2);
    expect(second).toBeGreaterThan(0);
    expect(bytes.subarray(second - 2, second).equals(Buffer.from([0xff, 0xd9]))).toBe(true);
    const tail = path.join(tmp.dir, 'tail.jpg');
    execFileSync('dd', [`if=${jpg}`, `of=${tail}`, 'bs=1', `skip=${second}`], { stdio: 'ignore' });
    const tt = exiftoolJson(tail);
    expect(tt['GPS:GPSLatitude']).toBeCloseTo(52.0907, 4);
    expect(tt['IFD0:Make']).toBe('DJI');
  });

  it('DJI_0002.MP4 has H.264 + AAC, a tx3g GPS track, a djmd data track, and udta location/make/model/serial', () => {
    const f = path.join(media, 'DJI_0002.MP4');
    const p = ffprobe(f);
    expect(p.streams.map((s) => `${s.codec_type}:${s.codec_tag_string}`)).toEqual(['video:avc1', 'audio:mp4a', 'subtitle:tx3g', 'data:djmd']);
    expect(p.streams[0]?.codec_name).toBe('h264');
    expect(p.streams[1]?.codec_name).toBe('aac');
    const t = exiftoolJson(f);
    expect(String(t['UserData:GPSCoordinates'])).toMatch(/^52\.0907 5\.1214/);
    expect(t['UserData:Make']).toBe('DJI');
    const texts = Object.entries(t).filter(([k]) => k.endsWith(':Text')).map(([, v]) => String(v));
    expect(texts.join('\n')).toContain(`GPS(5.1214,52.0907,14)`);
    const raw = readFileSync(f).toString('latin1');
    expect(raw).toMatch(new RegExp(`\u00a9csn[\\s\\S]{4}${SERIAL}`));
    expect(raw).toMatch(/\u00a9mdl[\s\S]{4}FC7303/);
    expect(raw).toMatch(/\u00a9xyz[\s\S]{4}\+52\.0907\+005\.1214\//);
    const djmd = execFileSync('ffmpeg', ['-v', 'error', '-i', f, '-map', '0:3', '-c', 'copy', '-f', 'data', '-']).toString('latin1');
    expect(djmd).toContain(`sn=${SERIAL}`);
    expect(djmd).toMatch(/lat=52\.09\d\d lon=5\.12\d\d/);
  });

  it('DJI_0002.SRT has per-frame GPS in the DJI layout, one entry per video frame', () => {
    const srt = readFileSync(path.join(media, 'DJI_0002.SRT'), 'utf8');
    const entries = srt.trim().split(/\n\n/);
    const frames = Number(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', path.join(media, 'DJI_0002.MP4')]).toString().trim());
    expect(entries).toHaveLength(frames);
    for (const e of entries) expect(e).toMatch(/FrameCnt: \d+.*\n.*\n\[iso: .*\[latitude: 52\.\d+\] \[longitude: 5\.\d+\] \[rel_alt: [\d.]+ abs_alt: [\d.]+\]/);
  });

  it('DJI_0002.LRF is a proxy MP4 with its own location and serial; DJI_0003.MOV has QuickTime keys', () => {
    const lrf = path.join(media, 'DJI_0002.LRF');
    expect(ffprobe(lrf).streams.map((s) => s.codec_type)).toEqual(['video', 'audio']);
    expect(readFileSync(lrf).toString('latin1')).toContain(SERIAL);
    const mov = exiftoolJson(path.join(media, 'DJI_0003.MOV'));
    expect(String(mov['Keys:GPSCoordinates'])).toMatch(/^52\.0907 5\.1214/);
    expect(mov['Keys:Make']).toBe('DJI');
    expect(mov['Keys:Model']).toBe('FC7303');
    expect(mov['Keys:Software']).toBeDefined();
    expect(ffprobe(path.join(media, 'DJI_0003.MOV')).streams.map((s) => s.codec_name)).toEqual(['h264', 'pcm_s16le']);
  });

  it('MISC/ holds a THM thumbnail with GPS and IDX/GIS sidecars with the serial', () => {
    const thm = exiftoolJson(path.join(card, 'MISC/THM/100/DJI_0002.THM'));
    expect(thm['GPS:GPSLatitude']).toBeCloseTo(52.0907, 4);
    expect(readFileSync(path.join(card, 'MISC/IDX/100/DJI_0002.IDX')).toString('latin1')).toContain(SERIAL);
    expect(readFileSync(path.join(card, 'MISC/GIS/DJI_0002.GIS'), 'utf8')).toContain(SERIAL);
  });

  it("the card's videos come out of sanitizeVideo without their telemetry (a real strip)", async () => {
    for (const [name, format] of [['DJI_0002.MP4', 'mp4'], ['DJI_0003.MOV', 'mov'], ['DJI_0002.LRF', 'mp4']] as const) {
      const out = path.join(tmp.dir, `clean-${name}`);
      const r = await sanitizeVideo(path.join(media, name), out, { thermal: 'keep' }, format);
      const classes = new Set(r.removed.map((x) => x.what));
      expect([...classes], name).toContain('gps');
      const raw = readFileSync(out).toString('latin1');
      for (const id of [SERIAL, 'FC7303', '+52.0907', 'DJI']) expect(raw.includes(id), `${name}: ${id}`).toBe(false);
    }
  }, 60_000);
});
