/**
 * The spine end to end, through the real `kluis` command: init, ingest of a generated card
 * (real ffmpeg + ExifTool), export with the evidence key, and the promises of issue 3: the
 * exported picture and sound equal the card's, no GPS/serial/drone-dji is left, the store holds
 * no plaintext and no names, a wrong key decrypts nothing, and bad input is reported per file
 * without stopping the rest.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fsp, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '..', '..');
const bin = path.join(repo, 'bin', 'kluis.js');

function kluis(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function essence(file: string): string {
  // Decoded picture and sound, frame by frame: equal output means bit-exact essence.
  const out = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v?', '-map', '0:a?', '-f', 'framemd5', '-'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return out.split('\n').filter((l) => l && !l.startsWith('#')).join('\n');
}

function exiftool(file: string): Record<string, unknown> {
  const out = execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', file], { encoding: 'utf8' });
  return (JSON.parse(out) as Array<Record<string, unknown>>)[0]!;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

let work: string;
let card: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kluis-spine-'));
  card = path.join(work, 'card');
  const media = path.join(card, 'DCIM', '100MEDIA');
  await fsp.mkdir(media, { recursive: true });
  await fsp.mkdir(path.join(card, 'MISC', 'THM'), { recursive: true });
  const jpg = path.join(media, 'DJI_0001.JPG');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=1', '-frames:v', '1', '-q:v', '3', jpg]);
  execFileSync('exiftool', ['-q', '-overwrite_original', '-GPSLatitude=52.0907', '-GPSLatitudeRef=N', '-GPSLongitude=5.1214', '-GPSLongitudeRef=E',
    '-SerialNumber=SPINE0SERIAL42', '-Make=DJI', '-Model=FC7303', '-XMP-drone-dji:GpsLatitude=52.0907', '-Comment=flight 7', jpg]);
  const mp4 = path.join(media, 'DJI_0002.MP4');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest',
    '-metadata', 'location=+52.0907+005.1214/', '-metadata', 'comment=SN=SPINE0SERIAL42', '-metadata', 'make=DJI', mp4]);
  writeFileSync(path.join(media, 'DJI_0002.SRT'), '1\n00:00:00,000 --> 00:00:00,033\n[latitude: 52.0907] [longitude: 5.1214]\n');
  writeFileSync(path.join(card, 'MISC', 'THM', 'x.THM'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]));
  writeFileSync(path.join(media, 'EMPTY.JPG'), '');
  symlinkSync('/etc/passwd', path.join(media, 'LINK.JPG'));
  // A truncated MP4: the start of a real one, cut before its moov.
  const whole = readFileSync(mp4);
  writeFileSync(path.join(media, 'DJI_0003.MP4'), whole.subarray(0, Math.floor(whole.length / 3)));
  const r = kluis(['init', '--dir', path.join(work, 'station'), '--station', 'test-station']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

describe('kluis ingest → export (the spine)', () => {
  let result: { batchId: string; status: string; files: Array<{ path: string; class: string; status: string; sha256?: string; error?: { code: string; message: string } }> };
  let ingest: { code: number | null; stdout: string; stderr: string };

  it('secures the footage and reports every bad file with a code, exit code partial', () => {
    ingest = kluis(['ingest', card, '--config', path.join(work, 'station', 'kluis.json'), '--json']);
    result = JSON.parse(ingest.stdout);
    const by = (p: string) => result.files.find((f) => f.path === p)!;
    expect(by('DCIM/100MEDIA/DJI_0001.JPG')).toMatchObject({ class: 'footage', status: 'secured' });
    expect(by('DCIM/100MEDIA/DJI_0002.MP4')).toMatchObject({ class: 'footage', status: 'secured' });
    expect(by('DCIM/100MEDIA/DJI_0002.SRT')).toMatchObject({ class: 'sidecar', status: 'withheld' });
    expect(by('MISC/THM/x.THM')).toMatchObject({ status: 'withheld' });
    expect(by('DCIM/100MEDIA/EMPTY.JPG')).toMatchObject({ status: 'rejected', error: { code: 'E_INPUT_EMPTY' } });
    expect(by('DCIM/100MEDIA/LINK.JPG')).toMatchObject({ status: 'rejected', error: { code: 'E_CARD_SYMLINK' } });
    // Not sanitized, but never lost (issue 15): its sealed original is held on the station.
    const trunc = by('DCIM/100MEDIA/DJI_0003.MP4') as { status: string; error?: { code: string }; heldAt?: string };
    expect(trunc.status).toBe('held');
    expect(trunc.error?.code).toMatch(/^E_SANITIZE_/);
    expect(statSync(trunc.heldAt!).isFile()).toBe(true);
    expect(result.status).toBe('partial');
    expect(ingest.code).toBe(3);
    expect(ingest.stderr).toContain('kluis: error:');
    expect(ingest.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no stack traces
    const sha = execFileSync('sha256sum', [path.join(card, 'DCIM/100MEDIA/DJI_0001.JPG')], { encoding: 'utf8' }).split(' ')[0];
    expect(by('DCIM/100MEDIA/DJI_0001.JPG').sha256).toBe(sha);
  });

  it('stores no plaintext and no names', () => {
    const store = path.join(work, 'station', 'store');
    const files = walk(store);
    expect(files.length).toBeGreaterThanOrEqual(4); // 2 footage + report + manifest
    for (const f of files) {
      const rel = path.relative(store, f);
      expect(rel).not.toMatch(/DJI|JPG|MP4|\d{4}-\d\d-\d\d/i);
      if (path.basename(f) === 'manifest.json') {
        const text = readFileSync(f, 'utf8');
        expect(text).not.toContain('DJI_0001');
        continue;
      }
      const head = readFileSync(f).subarray(0, 16);
      expect(head.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))).toBe(false);
      expect(head.subarray(4, 8).toString('latin1')).not.toBe('ftyp');
      expect(readFileSync(f).includes(Buffer.from('SPINE0SERIAL42'))).toBe(false);
    }
  });

  it('exports files whose picture and sound equal the card and carry no telemetry', () => {
    const out = path.join(work, 'export');
    const r = kluis(['export', result.batchId, '--config', path.join(work, 'station', 'kluis.json'), '--identity', path.join(work, 'station', 'keys', 'evidence.key'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    for (const name of ['DJI_0001.JPG', 'DJI_0002.MP4']) {
      const exported = path.join(out, 'sanitized', 'DCIM', '100MEDIA', name);
      expect(essence(exported)).toBe(essence(path.join(card, 'DCIM', '100MEDIA', name)));
      const tags = JSON.stringify(exiftool(exported));
      expect(tags).not.toMatch(/GPS|SPINE0SERIAL42|drone-dji|52\.09|FC7303/);
      const probe = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format_tags:stream_tags', '-of', 'json', exported], { encoding: 'utf8' });
      expect(probe).not.toMatch(/location|SPINE0SERIAL42|comment|DJI/i);
    }
    expect(statSync(path.join(out, 'report.html')).size).toBeGreaterThan(0);
    expect(readdirSync(path.join(out, 'ascmhl')).some((n) => n.endsWith('.mhl'))).toBe(true);
    // The sidecar and the bad files are not exported.
    expect(() => statSync(path.join(out, 'sanitized', 'DCIM', '100MEDIA', 'DJI_0002.SRT'))).toThrow();
  });

  it('refuses a wrong key with a clear error and writes nothing', () => {
    const wrongDir = path.join(work, 'other');
    expect(kluis(['init', '--dir', wrongDir]).code).toBe(0);
    const out = path.join(work, 'export-wrong');
    const r = kluis(['export', result.batchId, '--config', path.join(work, 'station', 'kluis.json'), '--identity', path.join(wrongDir, 'keys', 'evidence.key'), '--out', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/kluis: error: .*\[E_SEAL_NO_RECIPIENT\]/);
    const written = (() => { try { return walk(out); } catch { return []; } })();
    expect(written).toEqual([]);
    // The station's own key cannot decrypt either.
    const obj = walk(path.join(work, 'station', 'store')).find((f) => path.basename(f) !== 'manifest.json')!;
    const d = kluis(['decrypt', obj, '--identity', path.join(work, 'station', 'keys', 'station.key'), '-o', path.join(work, 'x.out')]);
    expect(d.code).not.toBe(0);
    expect(() => statSync(path.join(work, 'x.out'))).toThrow();
  });

  it('recognises an already secured card instead of copying it again', () => {
    // A card with only good files, ingested twice.
    const good = path.join(work, 'good');
    execFileSync('mkdir', ['-p', path.join(good, 'DCIM', '100MEDIA')]);
    execFileSync('cp', [path.join(card, 'DCIM', '100MEDIA', 'DJI_0001.JPG'), path.join(good, 'DCIM', '100MEDIA')]);
    const cfg = path.join(work, 'station', 'kluis.json');
    const first = kluis(['ingest', good, '--config', cfg, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const a = JSON.parse(first.stdout);
    expect(a.status).toBe('secured');
    const second = kluis(['ingest', good, '--config', cfg, '--json']);
    expect(second.code).toBe(0);
    const b = JSON.parse(second.stdout);
    expect(b.batchId).toBe(a.batchId);
    expect(b.alreadySecured).toBe(true);
  });
});
