/**
 * MP4/MOV sanitizing. `sanitizeVideo(input, output, policy, format)` writes to `output` a copy of
 * the input's picture and sound packets, bit for bit (ffmpeg stream copy, never a re-encode), in a
 * fresh container that carries no metadata, no vendor atoms, no timed-metadata, subtitle, data or
 * timecode tracks, no cover art, no creation times, no encoder strings and only neutral handler
 * names. Before it renames the result into place it proves it:
 * - the per-packet hashes (size + SHA-256 of every packet, per stream) of the kept input streams
 *   equal those of the output streams;
 * - three independent readers find nothing: our own box walker over the whole output against an
 *   allow-list (plus a scan for the strings the removed metadata carried), ExifTool, and ffprobe.
 * Anything else (empty, truncated, no moov, unknown codec, a finding) throws E_SANITIZE_* and
 * leaves no output behind. What was removed is listed, with where, class and size.
 * It never reads a whole video into memory: boxes are read by offset, ffmpeg streams.
 */
import { promises as fsp, createReadStream } from 'node:fs';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../../errors.js';
import { fsyncDir, fsyncFile } from '../../util/fsx.js';
import type { EssenceProof, IndependentCheck, RemovedItem, SanitizePolicy, SanitizeResult } from '../types.js';
import { ffprobeJson, inputArgs, packetHashes, packetHashesInNode, runFfmpeg, type ProbeResult, type ProbeStream } from '../../wrappers/ffmpeg.js';
import { FileSource, walkBoxes, fourcc, type BoxTree } from './boxes.js';
import { checkOutputBoxes, inventoryInput, NEUTRAL_HANDLER_NAMES, DEFAULT_NEEDLES, type TrackKind } from './rules.js';
import { exiftoolFindings } from './exiftool.js';

export type VideoFormat = 'mp4' | 'mov';

const MP4_BRANDS = new Set([
  'isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6', 'iso7', 'iso8', 'iso9', 'mp41', 'mp42', 'avc1', 'M4V ',
  'M4VP', 'mmp4', 'MSNV', 'XAVC', '3gp4', '3gp5', '3gp6', '3g2a', 'hvc1', 'dash', 'f4v ', 'NDAS',
]);
const QT_FIRST_BOXES = new Set(['moov', 'mdat', 'wide', 'pnot']);

/**
 * 'mp4' or 'mov' from the first bytes of a file (at least 12; more lets it look past leading
 * free/skip/wide boxes), or null. Decided by the `ftyp` major brand (`qt  ` is MOV), then by the
 * compatible brands; a QuickTime file without `ftyp` starts with moov, mdat, wide or pnot.
 */
export function sniffVideo(head: Uint8Array): VideoFormat | null {
  let pos = 0;
  for (let hop = 0; hop < 8 && pos + 8 <= head.length; hop++) {
    const size = (((head[pos] ?? 0) << 24) >>> 0) + ((head[pos + 1] ?? 0) << 16) + ((head[pos + 2] ?? 0) << 8) + (head[pos + 3] ?? 0);
    const type = fourcc(head, pos + 4);
    if (type === 'ftyp') {
      if (size < 16 || pos + 12 > head.length) return null;
      const major = fourcc(head, pos + 8);
      if (major === 'qt  ') return 'mov';
      if (MP4_BRANDS.has(major)) return 'mp4';
      const brands: string[] = [];
      for (let at = pos + 16; at + 4 <= Math.min(head.length, pos + size); at += 4) brands.push(fourcc(head, at));
      if (brands.includes('qt  ')) return 'mov';
      if (brands.some((b) => MP4_BRANDS.has(b))) return 'mp4';
      return null;
    }
    if (QT_FIRST_BOXES.has(type) && size >= 8) return 'mov';
    if ((type === 'free' || type === 'skip') && size >= 8) {
      pos += size;
      continue;
    }
    return null;
  }
  return null;
}

/** Codecs kept by stream copy, per container; a video or audio stream in another codec fails closed. */
const KEEP_CODECS: Record<VideoFormat, { video: Set<string>; audio: Set<string> }> = {
  mp4: {
    video: new Set(['h264', 'hevc', 'av1', 'vp9', 'mpeg4']),
    audio: new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac', 'opus']),
  },
  mov: {
    video: new Set(['h264', 'hevc', 'av1', 'vp9', 'mpeg4', 'prores']),
    audio: new Set([
      'aac', 'mp3', 'ac3', 'eac3', 'alac', 'pcm_s16le', 'pcm_s16be', 'pcm_s24le', 'pcm_s24be', 'pcm_s32le',
      'pcm_s32be', 'pcm_f32le', 'pcm_f32be',
    ]),
  },
};

interface KeptStream {
  index: number;
  trackId: number;
  kind: TrackKind;
  codec: string;
}

export async function sanitizeVideo(
  input: string,
  output: string,
  policy: SanitizePolicy,
  format: VideoFormat,
): Promise<SanitizeResult> {
  // The thermal switch is about radiometric JPEG segments; video has no policy switch: every
  // non-essence structure goes.
  void policy;
  const size = await inputSize(input);
  const src = await FileSource.open(input);
  let tree: BoxTree;
  let inventory: Awaited<ReturnType<typeof inventoryInput>>;
  let kept: KeptStream[];
  const removed: RemovedItem[] = [];
  try {
    const sniffed = sniffVideo(await src.read(0, 4096));
    if (sniffed === null) {
      throw new KluisError('E_SANITIZE_FORMAT', 'the file does not start like an MP4 or MOV video', {
        hint: 'it may be damaged or a different format; it is not stored',
      });
    }
    if (sniffed !== format) {
      throw new KluisError('E_SANITIZE_FORMAT', `the file is ${sniffed.toUpperCase()}, not ${format.toUpperCase()} as asked`, {
        hint: 'classify the file by its first bytes (sniffVideo) and pass that format',
      });
    }
    tree = await walkBoxes(src);
    const moov = tree.boxes.filter((b) => b.type === 'moov');
    if (moov.length === 0) {
      throw new KluisError('E_SANITIZE_NO_MOOV', 'the video has no moov box (its index), so it cannot be read', {
        hint: 'the recording was probably interrupted (battery, card pulled); repair a copy with a tool such as untrunc; kluis will not store a file it cannot check',
      });
    }
    if (moov.length > 1) {
      throw new KluisError('E_SANITIZE_FORMAT', 'the video has more than one moov box', {
        hint: 'readers disagree on which one counts; the file is not stored',
      });
    }
    const probe = await ffprobeJson(input, { timeoutMs: 120_000 });
    kept = chooseStreams(probe, format);
    inventory = await inventoryInput(src, tree, new Set(kept.map((k) => k.trackId)));
    for (const k of kept) {
      const t = inventory.tracks.find((x) => x.id === k.trackId);
      if (!t || (t.handler === 'vide' ? 'video' : t.handler === 'soun' ? 'audio' : null) !== k.kind) {
        throw new KluisError('E_SANITIZE_TRACK_MAP', `ffprobe stream ${k.index} (track ${k.trackId}) does not match the box tree`, {
          hint: 'the readers disagree about the file; it is not stored',
        });
      }
    }
    removed.push(...inventory.removed);
  } finally {
    await src.close();
  }

  const timeoutMs = 120_000 + Math.ceil(size / (2 << 20)) * 1000;
  const before = await essence(input, kept.map((k) => `0:${k.index}`), timeoutMs);

  const dir = path.dirname(path.resolve(output));
  const tmp = path.join(dir, `.${path.basename(output)}.kluis-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  try {
    const args = ['-v', 'error', '-n', ...inputArgs(input)];
    for (const k of kept) args.push('-map', `0:${k.index}`);
    args.push(
      '-c', 'copy',
      '-map_metadata', '-1',
      '-map_chapters', '-1',
      '-fflags', '+bitexact',
      '-flags:v', '+bitexact',
      '-flags:a', '+bitexact',
      '-write_tmcd', '0',
      '-f', format,
      `file:${tmp}`,
    );
    await runFfmpeg(args, { timeoutMs });

    const after = await essence(tmp, kept.map((_, i) => `0:${i}`), timeoutMs);
    const proofs = compareEssence(kept, before, after);

    const needles = [...inventory.needles];
    const checks: IndependentCheck[] = [];
    const out = await FileSource.open(tmp);
    try {
      const outTree = await walkBoxes(out);
      checks.push({
        tool: 'box-walker',
        found: await checkOutputBoxes(out, outTree, { tracks: kept.map((k) => k.kind), format, needles }),
      });
    } finally {
      await out.close();
    }
    checks.push({ tool: 'ffprobe', found: probeFindings(await ffprobeJson(tmp), kept, [...DEFAULT_NEEDLES, ...needles]) });
    checks.push({ tool: 'exiftool', found: await exiftoolFindings(tmp, [...DEFAULT_NEEDLES, ...needles]) });
    const found = checks.flatMap((c) => c.found.map((f) => `${c.tool}: ${f}`));
    if (found.length > 0) {
      throw new KluisError('E_SANITIZE_RESIDUE', `after sanitizing, the video still carries ${found.length} thing(s) that must go: ${found.slice(0, 3).join('; ')}`, {
        hint: 'the file is not stored; report it with the details so the allow-list can be reviewed',
        details: { found },
      });
    }

    const { sha256, bytes } = await hashFile(tmp);
    await fsyncFile(tmp);
    await fsp.rename(tmp, output);
    await fsyncDir(dir);
    return {
      format,
      sha256,
      size: bytes,
      essence: proofs,
      removed,
      kept: [
        'video and audio packets, bit-exact (including any data the codec carries in-band, e.g. H.264 SEI)',
        ...kept.map((k) => `stream ${k.index} (track ${k.trackId}, ${k.kind} ${k.codec})`),
      ],
      checks,
    };
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw asKluisError(err, 'E_SANITIZE_FAILED');
  }
}

async function inputSize(input: string): Promise<number> {
  let st;
  try {
    st = await fsp.stat(input);
  } catch (err) {
    throw new KluisError('E_SANITIZE_READ', `cannot read ${path.basename(input)}: ${(err as Error).message}`, {
      hint: 'check that the file exists and is readable',
      cause: err,
    });
  }
  if (!st.isFile()) {
    throw new KluisError('E_SANITIZE_READ', `${path.basename(input)} is not a regular file`, { hint: 'pass a file' });
  }
  if (st.size === 0) {
    throw new KluisError('E_SANITIZE_EMPTY', 'the video file is empty', {
      hint: 'the recording was never written; there is nothing to sanitize',
    });
  }
  return st.size;
}

function chooseStreams(probe: ProbeResult, format: VideoFormat): KeptStream[] {
  const kept: KeptStream[] = [];
  for (const s of probe.streams) {
    const kind = s.codec_type;
    if (kind !== 'video' && kind !== 'audio') continue; // data, subtitle, timecode: removed (listed by the box inventory)
    if (kind === 'video' && s.disposition?.attached_pic === 1) {
      // Cover art/thumbnails are not essence; their boxes are listed by the inventory (ilst covr).
      continue;
    }
    const codec = s.codec_name ?? 'unknown';
    if (!KEEP_CODECS[format][kind].has(codec)) {
      throw new KluisError('E_SANITIZE_UNSUPPORTED_CODEC', `stream ${s.index} is ${kind} in ${codec}, which kluis does not stream-copy into ${format.toUpperCase()}`, {
        hint: kind === 'video' && codec === 'mjpeg'
          ? 'Motion-JPEG frames carry their own EXIF; such files are not stored until a frame-level strip exists'
          : 'the file is not stored rather than dropping picture or sound; report the codec so it can be reviewed',
      });
    }
    const trackId = trackIdOf(s);
    kept.push({ index: s.index, trackId, kind, codec });
  }
  if (kept.length === 0) {
    throw new KluisError('E_SANITIZE_NO_ESSENCE', 'the file has no video or audio stream to keep', {
      hint: 'it holds only metadata or is damaged; it is not stored',
    });
  }
  return kept;
}

function trackIdOf(s: ProbeStream): number {
  const raw = typeof s['id'] === 'string' ? (s['id'] as string) : '';
  const id = raw.startsWith('0x') ? Number.parseInt(raw.slice(2), 16) : Number.NaN;
  if (!Number.isInteger(id)) {
    throw new KluisError('E_SANITIZE_TRACK_MAP', `ffprobe gave stream ${s.index} no track id`, {
      hint: 'the readers disagree about the file; it is not stored',
    });
  }
  return id;
}

export interface StreamEssence {
  digest: string;
  packets: number;
  bytes: number;
}

/**
 * Per mapped stream: SHA-256 over "size:sha256:side data\n" of every packet, in demux order.
 * Exported for src/sanitize/essence.ts, which recomputes the `after` value from a sanitized file.
 * The packet SHA-256 runs in node (packetHashesInNode); a stream with packet side data is taken
 * whole from ffmpeg's framehash instead (essenceFramehash), as only that gives the side data's
 * SHA-256. Both give the same values (test/integration/packet-hash.test.ts).
 */
export async function essence(file: string, maps: string[], timeoutMs: number): Promise<StreamEssence[]> {
  const acc = maps.map(() => newAcc());
  const { sideData } = await packetHashesInNode(
    file,
    maps,
    (p) => {
      const a = acc[p.stream];
      if (!a) throw new KluisError('E_SANITIZE_TOOL_OUTPUT', `ffmpeg reported a packet of unexpected stream ${p.stream}`);
      a.hash.update(`${p.size}:${p.sha256}:\n`);
      a.packets += 1;
      a.bytes += p.size;
    },
    { timeoutMs },
  );
  const result = acc.map(doneAcc);
  if (sideData.length > 0) {
    const exact = await essenceFramehash(file, sideData.map((i) => maps[i] as string), timeoutMs);
    sideData.forEach((i, j) => {
      result[i] = exact[j] as StreamEssence;
    });
  }
  return result;
}

/** The same values as `essence`, with every packet hashed by ffmpeg (`framehash -hash sha256`). */
export async function essenceFramehash(file: string, maps: string[], timeoutMs: number): Promise<StreamEssence[]> {
  const acc = maps.map(() => newAcc());
  await packetHashes(
    file,
    maps,
    (p) => {
      const a = acc[p.stream];
      if (!a) throw new KluisError('E_SANITIZE_TOOL_OUTPUT', `ffmpeg reported a packet of unexpected stream ${p.stream}`);
      a.hash.update(`${p.size}:${p.sha256}:${p.sideData}\n`);
      a.packets += 1;
      a.bytes += p.size;
    },
    { timeoutMs },
  );
  return acc.map(doneAcc);
}

function newAcc(): { hash: Hash; packets: number; bytes: number } {
  return { hash: createHash('sha256'), packets: 0, bytes: 0 };
}

function doneAcc(a: { hash: Hash; packets: number; bytes: number }): StreamEssence {
  return { digest: a.hash.digest('hex'), packets: a.packets, bytes: a.bytes };
}

function compareEssence(kept: KeptStream[], before: StreamEssence[], after: StreamEssence[]): EssenceProof[] {
  const proofs: EssenceProof[] = [];
  for (let i = 0; i < kept.length; i++) {
    const k = kept[i] as KeptStream;
    const b = before[i];
    const a = after[i];
    if (!a || !b || a.digest !== b.digest || a.packets !== b.packets || b.packets === 0) {
      throw new KluisError(
        'E_SANITIZE_ESSENCE',
        `stream ${k.index} (${k.kind} ${k.codec}) differs after the copy: ${b?.packets ?? 0} packets before, ${a?.packets ?? 0} after`,
        { hint: 'the picture or sound would not be bit-exact; the file is not stored' },
      );
    }
    // "ffmpeg-framehash-sha256:s<i>": stable id, then the stream's index in the sanitized file
    // (which the recheck needs); the rest is for people. Parsed by ../essence.ts - change both.
    proofs.push({
      method: `ffmpeg-framehash-sha256:s${i} per packet, stream ${k.index} (${k.kind} ${k.codec}, ${b.packets} packets, ${b.bytes} bytes)`,
      before: b.digest,
      after: a.digest,
    });
  }
  return proofs;
}

const NEUTRAL_STREAM_TAGS: Record<string, (v: string) => boolean> = {
  language: (v) => /^[a-z]{3}$/.test(v),
  handler_name: (v) => NEUTRAL_HANDLER_NAMES.has(v),
  vendor_id: (v) => v === '[0][0][0][0]' || v === 'FFMP',
};
const NEUTRAL_FORMAT_TAGS = new Set(['major_brand', 'minor_version', 'compatible_brands']);

function probeFindings(probe: ProbeResult, kept: KeptStream[], needles: readonly string[]): string[] {
  const found: string[] = [];
  if (probe.streams.length !== kept.length) found.push(`${probe.streams.length} streams where ${kept.length} were kept`);
  for (const s of probe.streams) {
    const k = kept[s.index];
    if (!k || s.codec_type !== k.kind || s.codec_name !== k.codec) {
      found.push(`stream ${s.index} is ${s.codec_type ?? '?'} ${s.codec_name ?? '?'}, not the kept ${k ? `${k.kind} ${k.codec}` : 'nothing'}`);
    }
    if (s.disposition?.attached_pic === 1) found.push(`stream ${s.index} is an attached picture`);
    for (const [tag, value] of Object.entries(s.tags ?? {})) {
      const ok = NEUTRAL_STREAM_TAGS[tag];
      if (!ok || !ok(value)) found.push(`stream ${s.index} tag ${tag}=${value.slice(0, 60)}`);
    }
  }
  for (const [tag, value] of Object.entries(probe.format?.tags ?? {})) {
    if (!NEUTRAL_FORMAT_TAGS.has(tag)) found.push(`format tag ${tag}=${value.slice(0, 60)}`);
    else for (const n of needles) if (n.length >= 3 && value.includes(n)) found.push(`format tag ${tag} contains "${n}"`);
  }
  if ((probe.chapters ?? []).length > 0) found.push(`${probe.chapters?.length} chapter(s)`);
  return found;
}

async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}
