/**
 * The synthetic cards the benchmark reads, each `DCIM/100MEDIA/` like a DJI card:
 * - the photo-heavy card (buildCard): a few large 4K H.264/AAC MP4s that carry DJI-like telemetry
 *   in udta (location, serial number in a comment), one small SRT sidecar per video, and many
 *   4000×3000 JPEGs with DJI-like EXIF (make, model, serial, GPS), about half the bytes each;
 * - the video-heavy card (buildClipsCard): many short 1080p H.264/AAC clips with the same udta
 *   telemetry, plus 12 MP JPEGs like the above;
 * - a single-video card (buildVideoCard) for the memory runs.
 *
 * Fast to make and deterministic: one short clip per clip spec is encoded once (fixed test
 * pattern, fixed tone), longer videos repeat its packets with `ffmpeg -stream_loop N -c copy` (no
 * re-encode) and carry their own name in udta; one large JPEG is encoded once and copied with a
 * distinct COM segment after SOI, so every file has its own bytes and hash. Cards are cached
 * under os.tmpdir()/kluis-bench-cache keyed by what they hold and the generator version; a card
 * is used only when its completion marker exists, so an interrupted build is never taken for a
 * card, and a cached card needs no base media at all.
 *
 * Never touches anything outside its cache folder; never writes into a finished card.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { KluisError } from '../errors.js';
import type { CardInfo } from './result.js';

/** Bump when the generated content changes, so old caches are not reused. */
export const CARD_GENERATOR_VERSION = 2;

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

/**
 * What the video-heavy card holds. The clip is encoded once for `baseSeconds` and repeated to
 * `clipSeconds`; each clip gets its own name in udta, so every file differs.
 */
export interface ClipsCardSpec {
  clips: number;
  clipSeconds: number;
  jpegs: number;
  /** The encoded base; `videoKbps` is the x264 target (ABR, capped by maxrate). */
  base: ClipSpec & { videoKbps: number };
}

/**
 * The video-heavy card of issue 14: 58 clips of 20 s 1080p30 H.264/AAC and 60 12 MP JPEGs, about
 * 1.5 GB. Issue 14's table gives that card as 1.56 GB, which at 58 × 20 s is about 8 Mbit/s per
 * clip (its "40 Mbit/s" would make 5.8 GB of clips alone), so the bitrate follows the size here.
 */
export const VIDEO_CARD: ClipsCardSpec = {
  clips: 58,
  clipSeconds: 20,
  jpegs: 60,
  base: { width: 1920, height: 1080, seconds: 2, fps: 30, videoKbps: 6500 },
};
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

/**
 * The video-heavy card at `scale` (0.1 = a tenth of the clips and of the JPEGs, at least one of
 * each): clip names DJI_0001.MP4…, then the JPEGs after them. Pure.
 */
export function planClipsCard(spec: ClipsCardSpec, scale = 1): { clips: string[]; jpegs: string[]; loops: number } {
  if (!(scale > 0)) throw new KluisError('E_USAGE', `the card scale must be more than 0 (got ${scale})`, { hint: 'give a scale like 0.1 or 1' });
  const nClips = Math.max(1, Math.round(spec.clips * scale));
  const nJpegs = Math.max(1, Math.round(spec.jpegs * scale));
  const name = (i: number): string => `DJI_${String(i).padStart(4, '0')}`;
  return {
    clips: Array.from({ length: nClips }, (_, i) => `${name(i + 1)}.MP4`),
    jpegs: Array.from({ length: nJpegs }, (_, i) => `${name(nClips + i + 1)}.JPG`),
    loops: Math.max(0, Math.round(spec.clipSeconds / spec.base.seconds) - 1),
  };
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

/**
 * Encodes the short clip every video repeats: testsrc2 picture, 440 Hz sine, DJI-like udta. At
 * constant quality (crf 14), or at `videoKbps` when given.
 */
export async function makeClip(file: string, spec: ClipSpec & { videoKbps?: number } = DEFAULT_CLIP): Promise<void> {
  const rate = spec.videoKbps ? ['-b:v', `${spec.videoKbps}k`, '-maxrate', `${spec.videoKbps}k`, '-bufsize', `${spec.videoKbps}k`] : ['-crf', '14'];
  await run('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=s=${spec.width}x${spec.height}:r=${spec.fps}:d=${spec.seconds}`,
    '-f', 'lavfi', '-i', `sine=f=440:r=48000:d=${spec.seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', ...rate, '-pix_fmt', 'yuv420p', '-g', String(spec.fps),
    '-c:a', 'aac', '-b:a', '128k',
    '-metadata', `location=${TELEMETRY.location}`,
    '-metadata', `comment=${TELEMETRY.comment}`,
    '-metadata', 'title=DJI_0001',
    '-movflags', '+faststart',
    file,
  ]);
}

/**
 * Repeats the clip's packets `loops` more times without re-encoding; keeps its udta, with
 * `title` (the clip's own name, which makes its bytes its own) when given.
 */
export async function loopClip(clip: string, loops: number, file: string, title?: string): Promise<void> {
  await run('ffmpeg', [
    '-v', 'error', '-y', '-stream_loop', String(loops), '-i', clip,
    '-map', '0', '-c', 'copy', '-map_metadata', '0',
    '-metadata', `location=${TELEMETRY.location}`, '-metadata', `comment=${TELEMETRY.comment}`,
    ...(title ? ['-metadata', `title=${title}`] : []),
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
  /** The base clip of the photo-heavy card and the memory videos. */
  clip?: ClipSpec;
  jpeg?: JpegSpec;
  /** The video-heavy card (default VIDEO_CARD). */
  clips?: ClipsCardSpec;
  log?: (line: string) => void;
}

export function cacheDirDefault(): string {
  return path.join(os.tmpdir(), 'kluis-bench-cache');
}

function clipKey(clip: ClipSpec & { videoKbps?: number }): string {
  return `${clip.width}x${clip.height}x${clip.seconds}s${clip.fps}${clip.videoKbps ? `b${clip.videoKbps}` : ''}`;
}

function jpegKey(jpeg: JpegSpec): string {
  return `${jpeg.width}x${jpeg.height}n${jpeg.noise}`;
}

/** Makes (or reuses) one base file in the cache: `make` writes it, a marker says it is whole. */
async function cachedBase(opts: BuildOptions, key: string, name: string, what: string, make: (file: string) => Promise<void>): Promise<string> {
  const dir = path.join(opts.cacheDir ?? cacheDirDefault(), `base-v${CARD_GENERATOR_VERSION}-${key}`);
  const file = path.join(dir, name);
  if (!(await isFile(path.join(dir, '.complete')))) {
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.mkdir(dir, { recursive: true });
    opts.log?.(`encoding ${what} once`);
    await make(file);
    await fsp.writeFile(path.join(dir, '.complete'), 'ok\n');
  }
  return file;
}

/** The base clip every video of a card repeats (made once per spec). */
export function baseClip(spec: ClipSpec & { videoKbps?: number }, opts: BuildOptions = {}): Promise<string> {
  return cachedBase(opts, `clip-${clipKey(spec)}`, 'clip.mp4', `the base clip (${spec.width}x${spec.height}, ${spec.seconds} s)`, (f) => makeClip(f, spec));
}

/** The base JPEG every photo of a card is a variant of (made once per spec). */
export function baseJpeg(spec: JpegSpec, opts: BuildOptions = {}): Promise<string> {
  return cachedBase(opts, `jpeg-${jpegKey(spec)}`, 'still.jpg', `the base JPEG (${spec.width}x${spec.height})`, (f) => makeJpeg(f, spec));
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isFile();
  } catch {
    return false;
  }
}

/** What a builder reports; `id` is the caller's name for the card. */
type Made = Omit<CardInfo, 'cached' | 'id'>;

/**
 * A card in the cache folder `dir`: the one made before when its completion marker is there, or
 * a fresh one made by `make` into DIR/card/DCIM/100MEDIA, marked complete only when it is whole.
 */
async function cachedCard(id: string, dir: string, make: (card: string, media: string) => Promise<Made>): Promise<CardInfo> {
  const card = path.join(dir, 'card');
  const marker = path.join(dir, '.complete');
  if (await isFile(marker)) return { ...(JSON.parse(await fsp.readFile(marker, 'utf8')) as Made), id, cached: true };
  await fsp.rm(dir, { recursive: true, force: true });
  const media = path.join(card, 'DCIM', '100MEDIA');
  await fsp.mkdir(media, { recursive: true });
  const made = await make(card, media);
  await fsp.writeFile(marker, JSON.stringify(made));
  return { ...made, id, cached: false };
}

/** "1 clip", "3 clips". */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

async function mediaSize(media: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const name of await fsp.readdir(media)) {
    bytes += (await fsp.stat(path.join(media, name))).size;
    files++;
  }
  return { bytes, files };
}

async function writeJpegs(media: string, base: string, names: string[]): Promise<void> {
  const bytes = await fsp.readFile(base);
  for (const [i, name] of names.entries()) await fsp.writeFile(path.join(media, name), jpegVariant(bytes, i + 1));
}

/** A single-video card (for the memory runs): `DCIM/100MEDIA/DJI_0001.MP4` of about `bytes`. */
export async function buildVideoCard(id: string, bytes: number, opts: BuildOptions = {}): Promise<CardInfo> {
  const spec = opts.clip ?? DEFAULT_CLIP;
  const dir = path.join(opts.cacheDir ?? cacheDirDefault(), `video-v${CARD_GENERATOR_VERSION}-${bytes}-${clipKey(spec)}`);
  return cachedCard(id, dir, async (card, media) => {
    const clip = await baseClip(spec, opts);
    const loops = Math.max(0, Math.round(bytes / (await fsp.stat(clip)).size) - 1);
    opts.log?.(`making a ${(bytes / 1e9).toFixed(2)} GB video card (${loops + 1} clip repeats, stream copy)`);
    await loopClip(clip, loops, path.join(media, 'DJI_0001.MP4'));
    const size = (await fsp.stat(path.join(media, 'DJI_0001.MP4'))).size;
    const description = `one ${spec.width}x${spec.height} H.264/AAC video of ${(size / 1e9).toFixed(2)} GB`;
    return { path: card, description, bytes: size, files: 1, jpegs: 0, videos: 1, sidecars: 0 };
  });
}

/** The photo-heavy card of about `totalBytes` (see the module comment). */
export async function buildCard(id: string, totalBytes: number, opts: BuildOptions = {}): Promise<CardInfo> {
  const clipSpec = opts.clip ?? DEFAULT_CLIP;
  const jpegSpec = opts.jpeg ?? DEFAULT_JPEG;
  const dir = path.join(opts.cacheDir ?? cacheDirDefault(), `card-v${CARD_GENERATOR_VERSION}-${totalBytes}-${clipKey(clipSpec)}-${jpegKey(jpegSpec)}`);
  return cachedCard(id, dir, async (card, media) => {
    const clip = await baseClip(clipSpec, opts);
    const jpeg = await baseJpeg(jpegSpec, opts);
    const plan = planCard(totalBytes, (await fsp.stat(clip)).size, (await fsp.stat(jpeg)).size);
    opts.log?.(`making a ${(totalBytes / 1e9).toFixed(2)} GB photo-heavy card: ${plan.videos.length} videos, ${plan.jpegs.length} JPEGs in ${card}`);
    for (const v of plan.videos) {
      await loopClip(clip, v.loops, path.join(media, v.name));
      await fsp.writeFile(path.join(media, v.srt), srtFor(v.name, clipSpec.seconds * (v.loops + 1)));
    }
    await writeJpegs(media, jpeg, plan.jpegs);
    const { bytes, files } = await mediaSize(media);
    const description =
      `${count(plan.jpegs.length, 'JPEG')} of ${jpegSpec.width}x${jpegSpec.height} with GPS and a serial + ` +
      `${count(plan.videos.length, `${clipSpec.width}x${clipSpec.height} H.264/AAC video`)} with SRT sidecars`;
    return { path: card, description, bytes, files, jpegs: plan.jpegs.length, videos: plan.videos.length, sidecars: plan.videos.length };
  });
}

/** The video-heavy card (VIDEO_CARD unless `opts.clips`) at `scale` (see planClipsCard). */
export async function buildClipsCard(id: string, scale = 1, opts: BuildOptions = {}): Promise<CardInfo> {
  const spec = opts.clips ?? VIDEO_CARD;
  const jpegSpec = opts.jpeg ?? DEFAULT_JPEG;
  const plan = planClipsCard(spec, scale);
  const key = `${plan.clips.length}x${spec.clipSeconds}s-${clipKey(spec.base)}-${plan.jpegs.length}x${jpegKey(jpegSpec)}`;
  const dir = path.join(opts.cacheDir ?? cacheDirDefault(), `clips-v${CARD_GENERATOR_VERSION}-${key}`);
  return cachedCard(id, dir, async (card, media) => {
    const clip = await baseClip(spec.base, opts);
    const jpeg = await baseJpeg(jpegSpec, opts);
    opts.log?.(`making a video-heavy card: ${plan.clips.length} clips of ${spec.clipSeconds} s, ${plan.jpegs.length} JPEGs in ${card}`);
    for (const name of plan.clips) await loopClip(clip, plan.loops, path.join(media, name), path.basename(name, '.MP4'));
    await writeJpegs(media, jpeg, plan.jpegs);
    const { bytes, files } = await mediaSize(media);
    const seconds = spec.base.seconds * (plan.loops + 1);
    const description =
      `${count(plan.clips.length, 'clip')} of ${seconds} s ${spec.base.width}x${spec.base.height} H.264/AAC + ` +
      `${count(plan.jpegs.length, 'JPEG')} of ${jpegSpec.width}x${jpegSpec.height} with GPS and a serial`;
    return { path: card, description, bytes, files, jpegs: plan.jpegs.length, videos: plan.clips.length, sidecars: 0 };
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
