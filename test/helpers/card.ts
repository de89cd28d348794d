/**
 * Test cards: folders shaped like a drone's memory card (DCIM/100MEDIA/…), made with the real
 * ffmpeg (and ExifTool for telemetry), so sanitize and seal see real files.
 *
 * `makeCard(dir, files)` writes the files listed; each kind is documented where it is made:
 *   jpeg  - a 320x240 testsrc frame with GPS/serial/DJI XMP written by ExifTool (~10-20 KB)
 *   big   - a 1280x960 noisy frame (q=2) so the file is well over several 64 KiB seal chunks
 *   mp4   - H.264 + AAC, `seconds` long, 320x240 random noise so it does not compress (~1 MB per
 *           second: several 1 MiB read chunks and many 64 KiB seal chunks), with GPS metadata
 *   srt   - a DJI-style telemetry sidecar (withheld by policy)
 *   truncated - the first 30 kB of test/fixtures/real/video/DJI_20250723102139_0001_D.MP4 (a real
 *           DJI clip whose moov sits at the end): ftyp and the start of mdat, no moov, exactly what
 *           a camera that lost power while recording leaves; it cannot be sanitized
 * With no list, the default card holds one of each of jpeg, big, mp4 (2 s, ~2 MB), srt.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from './kluis.js';

export type CardFile =
  | { kind: 'jpeg'; name: string }
  | { kind: 'big'; name: string }
  | { kind: 'mp4'; name: string; seconds?: number }
  | { kind: 'srt'; name: string }
  | { kind: 'truncated'; name: string };

export const DEFAULT_CARD: CardFile[] = [
  { kind: 'jpeg', name: 'DJI_0001.JPG' },
  { kind: 'big', name: 'DJI_0002.JPG' },
  { kind: 'mp4', name: 'DJI_0003.MP4', seconds: 2 },
  { kind: 'srt', name: 'DJI_0003.SRT' },
];

const cache = new Map<string, string>();

/** Makes one file of `kind` at `file` (ffmpeg runs once per kind+size per process; later calls copy). */
export function makeMediaFile(file: string, f: CardFile): void {
  const key = f.kind === 'mp4' ? `mp4:${f.seconds ?? 3}` : f.kind;
  const cached = cache.get(key);
  if (cached && existsSync(cached)) {
    cpSync(cached, file);
    return;
  }
  const ff = (args: string[]): void => void execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  switch (f.kind) {
    case 'jpeg':
      ff(['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=1', '-frames:v', '1', '-q:v', '3', file]);
      execFileSync('exiftool', ['-q', '-overwrite_original', '-GPSLatitude=52.0907', '-GPSLatitudeRef=N', '-GPSLongitude=5.1214', '-GPSLongitudeRef=E',
        '-SerialNumber=TESTSERIAL42', '-Make=DJI', '-Model=FC7303', '-XMP-drone-dji:GpsLatitude=52.0907', file]);
      break;
    case 'big':
      ff(['-f', 'lavfi', '-i', 'nullsrc=size=1280x960,geq=random(1)*255:128:128', '-frames:v', '1', '-q:v', '2', file]);
      break;
    case 'mp4':
      ff(['-f', 'lavfi', '-i', 'nullsrc=size=320x240:rate=25,geq=random(1)*255:128:128', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
        '-t', String(f.seconds ?? 3), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest',
        '-metadata', 'location=+52.0907+005.1214/', '-metadata', 'make=DJI', file]);
      break;
    case 'srt':
      writeFileSync(file, '1\n00:00:00,000 --> 00:00:00,033\n[latitude: 52.0907] [longitude: 5.1214]\n');
      break;
    case 'truncated':
      writeFileSync(file, readFileSync(path.join(repoRoot, 'test', 'fixtures', 'real', 'video', 'DJI_20250723102139_0001_D.MP4')).subarray(0, 30_000));
      break;
  }
  cache.set(key, file);
}

/** A card folder at `dir` with DCIM/100MEDIA/<files>. Returns `dir`. */
export function makeCard(dir: string, files: CardFile[] = DEFAULT_CARD): string {
  const media = path.join(dir, 'DCIM', '100MEDIA');
  mkdirSync(media, { recursive: true });
  for (const f of files) makeMediaFile(path.join(media, f.name), f);
  return dir;
}

/** The generated sample card (samples/card), when the samples engineer's script has made it. */
export function sampleCard(): string | undefined {
  const p = path.join(repoRoot, 'samples', 'card');
  return existsSync(path.join(p, 'DCIM')) ? p : undefined;
}
