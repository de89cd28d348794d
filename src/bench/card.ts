/**
 * The synthetic card the benchmark reads: `DCIM/100MEDIA/` with a few large H.264/AAC MP4s that
 * carry DJI-like telemetry in udta (location, serial number in a comment), one small SRT sidecar
 * per video, and many 4000×3000 JPEGs with DJI-like EXIF (make, model, serial, GPS).
 *
 * Fast to make: one short clip is encoded once, larger videos repeat its packets with
 * `ffmpeg -stream_loop N -c copy` (no re-encode); one large JPEG is encoded once and copied with a
 * distinct COM segment after SOI, so every file has its own bytes and hash. Cards are cached
 * under os.tmpdir()/kluis-bench-cache keyed by size and generator version; a card is used only
 * when its completion marker exists, so an interrupted build is never taken for a card.
 *
 * Never touches anything outside its cache folder; never writes into a finished card.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { KluisError } from '../errors.js';
import type { CardInfo } from './report.js';

/** Bump when the generated content changes, so old caches are not reused. */
export const CARD_GENERATOR_VERSION = 1;

export interface ClipSpec {
  width: number;
  height: number;
  seconds: number;
  fps: number;
}

export interface JpegSpec {
  width: number;
  height: number;
  /** ffmpeg noise strength: more noise, larger files (30 gives about 6 MB at 4000×3000, q 2). */
  noise: number;
}

/** DJI Mini/Air class 4K at roughly 100 Mbit/s. */
export const DEFAULT_CLIP: ClipSpec = { width: 3840, height: 2160, seconds: 4, fps: 30 };
/** A 12 MP still. */
export const DEFAULT_JPEG: JpegSpec = { width: 4000, height: 3000, noise: 30 };

export interface CardPlan {
  videos: Array<{ name: string; loops: number; srt: string }>;
  jpegs: string[];
}

/** Parses "2G", "1.5GB", "500M", "300000000" into bytes (powers of 10, as card makers count). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$/i.exec(text);
  if (!m) {
    throw new KluisError('E_USAGE', `cannot read the size '${text}'`, { hint: 'give a size like 2G, 500M or 1.5G' });
  }
  const unit = (m[2] ?? '').toLowerCase();
  const binary = (m[3] ?? '').toLowerCase().startsWith('i');
  const base = binary ? 1024 : 1000;
  const pow = unit === '' ? 0 : 'kmgt'.indexOf(unit) + 1;
  const n = Math.round(Number(m[1]) * base ** pow);
  if (!Number.isFinite(n) || n <= 0) throw new KluisError('E_USAGE', `the size '${text}' must be more than 0`);
  return n;
}

/**
 * Splits `totalBytes` between videos and JPEGs: about half the bytes in JPEGs (one per
 * `jpegBytes`), the rest in 1–3 videos, each a whole number of clip repeats. Pure.
 */
export function planCard(totalBytes: number, clipBytes: number, jpegBytes: number): CardPlan {
  if (clipBytes <= 0 || jpegBytes <= 0) throw new KluisError('E_INTERNAL', 'planCard needs positive clip and JPEG sizes');
  const nJpeg = Math.max(2, Math.round((totalBytes * 0.5) / jpegBytes));
  const videoBytes = Math.max(clipBytes, totalBytes - nJpeg * jpegBytes);
  const nVideo = videoBytes >= 0.75e9 ? 3 : videoBytes >= 0.3e9 ? 2 : 1;
  const per = videoBytes / nVideo;
  const loops = Math.max(0, Math.round(per / clipBytes) - 1);
  const name = (i: number): string => `DJI_${String(i).padStart(4, '0')}`;
  const videos = Array.from({ length: nVideo }, (_, i) => ({ name: `${name(i + 1)}.MP4`, loops, srt: `${name(i + 1)}.SRT` }));
  const jpegs = Array.from({ length: nJpeg }, (_, i) => `${name(nVideo + i + 1)}.JPG`);
  return { videos, jpegs };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err = (err + d).slice(-4000);
    });
    child.once('error', (e) =>
      reject(new KluisError('E_BENCH_TOOL', `cannot run ${cmd}: ${e.message}`, { hint: `install ${cmd} (see scripts/setup-system.sh)`, cause: e })),
    );
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new KluisError('E_BENCH_CARD', `${cmd} failed while building the bench card (exit ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

export const TELEMETRY = {
  location: '+52.3676+004.9041/',
  serial: '1581F4XFC22A1234',
  comment: 'DJI FC3582 SN:1581F4XFC22A1234 GPS(52.3676,4.9041,12.3) F-PY:0.1,2.3,-4.5',
};

/** Encodes the short clip every video repeats: testsrc2 picture, 440 Hz sine, DJI-like udta. */
export async function makeClip(file: string, spec: ClipSpec = DEFAULT_CLIP): Promise<void> {
  await run('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=s=${spec.width}x${spec.height}:r=${spec.fps}:d=${spec.seconds}`,
    '-f', 'lavfi', '-i', `sine=f=440:r=48000:d=${spec.seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '14', '-pix_fmt', 'yuv420p', '-g', String(spec.fps),
    '-c:a', 'aac', '-b:a', '128k',
    '-metadata', `location=${TELEMETRY.location}`,
    '-metadata', `comment=${TELEMETRY.comment}`,
    '-metadata', 'title=DJI_0001',
    '-movflags', '+faststart',
    file,
  ]);
}

/** Repeats the clip's packets `loops` more times without re-encoding; keeps its udta. */
export async function loopClip(clip: string, loops: number, file: string): Promise<void> {
  await run('ffmpeg', [
    '-v', 'error', '-y', '-stream_loop', String(loops), '-i', clip,
    '-map', '0', '-c', 'copy', '-map_metadata', '0',
    '-metadata', `location=${TELEMETRY.location}`, '-metadata', `comment=${TELEMETRY.comment}`,
    file,
  ]);
}

/** One large JPEG with DJI-like EXIF/XMP written by exiftool. */
export async function makeJpeg(file: string, spec: JpegSpec = DEFAULT_JPEG): Promise<void> {
  await run('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=s=${spec.width}x${spec.height},noise=alls=${spec.noise}:allf=u`,
    '-frames:v', '1', '-q:v', '2', file,
  ]);
  await run('exiftool', [
    '-q', '-overwrite_original', '-Make=DJI', '-Model=FC3582', `-SerialNumber=${TELEMETRY.serial}`,
    '-GPSLatitude=52.3676', '-GPSLatitudeRef=N', '-GPSLongitude=4.9041', '-GPSLongitudeRef=E', '-GPSAltitude=12.3',
    '-XMP-exif:GPSLatitude=52.3676', '-XMP-exif:GPSLongitude=4.9041', '-Software=10.00.00.00', file,
  ]);
}

/** The same JPEG with a COM segment right after SOI whose text makes the file distinct. */
export function jpegVariant(base: Uint8Array, n: number): Buffer {
  if (base[0] !== 0xff || base[1] !== 0xd8) throw new KluisError('E_BENCH_CARD', 'base JPEG does not start with SOI');
  const text = Buffer.from(`kluis bench variant ${n} ${'x'.repeat(n % 97)}`, 'latin1');
  const com = Buffer.alloc(4 + text.length);
  com[0] = 0xff;
  com[1] = 0xfe;
  com.writeUInt16BE(text.length + 2, 2);
  text.copy(com, 4);
  return Buffer.concat([base.subarray(0, 2), com, base.subarray(2)]);
}

function srtFor(name: string, seconds: number): string {
  const lines: string[] = [];
  for (let i = 0; i < seconds; i++) {
    const t = (s: number): string => `00:00:${String(s).padStart(2, '0')},000`;
    lines.push(`${i + 1}`, `${t(i)} --> ${t(i + 1)}`, `<font size="28">${name} FrameCnt: ${i * 30 + 1} [latitude: 52.3676] [longitude: 4.9041] [rel_alt: 12.3]</font>`, '');
  }
  return lines.join('\n');
}

export interface BuildOptions {
  /** Cache folder (default os.tmpdir()/kluis-bench-cache). */
  cacheDir?: string;
  clip?: ClipSpec;
  jpeg?: JpegSpec;
  log?: (line: string) => void;
}

export function cacheDirDefault(): string {
  return path.join(os.tmpdir(), 'kluis-bench-cache');
}

function specKey(clip: ClipSpec, jpeg: JpegSpec): string {
  return `v${CARD_GENERATOR_VERSION}-${clip.width}x${clip.height}x${clip.seconds}s-${jpeg.width}x${jpeg.height}n${jpeg.noise}`;
}

/** Makes (or reuses) the base clip and JPEG; returns their paths. */
export async function baseMedia(opts: BuildOptions = {}): Promise<{ clip: string; jpeg: string }> {
  const clipSpec = opts.clip ?? DEFAULT_CLIP;
  const jpegSpec = opts.jpeg ?? DEFAULT_JPEG;
  const dir = path.join(opts.cacheDir ?? cacheDirDefault(), `base-${specKey(clipSpec, jpegSpec)}`);
  await fsp.mkdir(dir, { recursive: true });
  const clip = path.join(dir, 'clip.mp4');
  const jpeg = path.join(dir, 'still.jpg');
  if (!(await isFile(path.join(dir, '.complete')))) {
    opts.log?.(`encoding the base clip (${clipSpec.width}x${clipSpec.height}, ${clipSpec.seconds} s) and JPEG (${jpegSpec.width}x${jpegSpec.height}) once`);
    await makeClip(clip, clipSpec);
    await makeJpeg(jpeg, jpegSpec);
    await fsp.writeFile(path.join(dir, '.complete'), 'ok\n');
  }
  return { clip, jpeg };
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isFile();
  } catch {
    return false;
  }
}

/** A single-video card (for --memory): `DCIM/100MEDIA/DJI_0001.MP4` of about `bytes`. */
export async function buildVideoCard(bytes: number, opts: BuildOptions = {}): Promise<CardInfo> {
  const { clip } = await baseMedia(opts);
  const clipBytes = (await fsp.stat(clip)).size;
  const loops = Math.max(0, Math.round(bytes / clipBytes) - 1);
  const dir = path.join(opts.cacheDir ?? cacheDirDefault(), `video-${bytes}-${specKey(opts.clip ?? DEFAULT_CLIP, opts.jpeg ?? DEFAULT_JPEG)}`);
  return cachedCard(dir, async (card, media) => {
    opts.log?.(`making a ${(bytes / 1e9).toFixed(1)} GB video card (${loops + 1} clip repeats, stream copy)`);
    await loopClip(clip, loops, path.join(media, 'DJI_0001.MP4'));
    const size = (await fsp.stat(path.join(media, 'DJI_0001.MP4'))).size;
    return { path: card, bytes: size, files: 1, jpegs: 0, videos: 1, sidecars: 0 };
  });
}

/**
 * A card in the cache folder `dir`: the one made before when its completion marker is there, or
 * a fresh one made by `make` into DIR/card/DCIM/100MEDIA, marked complete only when it is whole.
 */
async function cachedCard(dir: string, make: (card: string, media: string) => Promise<Omit<CardInfo, 'cached'>>): Promise<CardInfo> {
  const card = path.join(dir, 'card');
  const marker = path.join(dir, '.complete');
  if (await isFile(marker)) return { ...(JSON.parse(await fsp.readFile(marker, 'utf8')) as CardInfo), cached: true };
  await fsp.rm(dir, { recursive: true, force: true });
  const media = path.join(card, 'DCIM', '100MEDIA');
  await fsp.mkdir(media, { recursive: true });
  const info: CardInfo = { ...(await make(card, media)), cached: false };
  await fsp.writeFile(marker, JSON.stringify(info));
  return info;
}

/** The mixed card of about `totalBytes` (see the module comment). */
export async function buildCard(totalBytes: number, opts: BuildOptions = {}): Promise<CardInfo> {
  const clipSpec = opts.clip ?? DEFAULT_CLIP;
  const { clip, jpeg } = await baseMedia(opts);
  const dir = path.join(opts.cacheDir ?? cacheDirDefault(), `card-${totalBytes}-${specKey(clipSpec, opts.jpeg ?? DEFAULT_JPEG)}`);
  return cachedCard(dir, async (card, media) => {
    const clipBytes = (await fsp.stat(clip)).size;
    const base = await fsp.readFile(jpeg);
    const plan = planCard(totalBytes, clipBytes, base.length);
    opts.log?.(`making a ${(totalBytes / 1e9).toFixed(2)} GB card: ${plan.videos.length} videos, ${plan.jpegs.length} JPEGs in ${card}`);
    for (const v of plan.videos) {
      await loopClip(clip, v.loops, path.join(media, v.name));
      await fsp.writeFile(path.join(media, v.srt), srtFor(v.name, clipSpec.seconds * (v.loops + 1)));
    }
    for (let i = 0; i < plan.jpegs.length; i++) {
      await fsp.writeFile(path.join(media, plan.jpegs[i]!), jpegVariant(base, i + 1));
    }
    let bytes = 0;
    let files = 0;
    for (const name of await fsp.readdir(media)) {
      bytes += (await fsp.stat(path.join(media, name))).size;
      files++;
    }
    return { path: card, bytes, files, jpegs: plan.jpegs.length, videos: plan.videos.length, sidecars: plan.videos.length };
  });
}

/** Sums the bytes and counts the files under a folder (the card as the baselines see it). */
export async function treeSize(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    bytes += (await fsp.stat(path.join(e.parentPath, e.name))).size;
    files++;
  }
  return { bytes, files };
}
