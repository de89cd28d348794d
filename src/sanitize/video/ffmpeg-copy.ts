/**
 * The ffmpeg fallback of MP4/MOV sanitizing (kluis's own rewriter, ./stream.ts, is the normal
 * path; this one is used for layouts the rewriter does not take, such as fragmented MP4).
 * `sanitizeVideoByFfmpeg(input, output, policy, format)` writes to `output` a copy of
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
import { ffprobeJson, inputArgs, runFfmpeg, type ProbeResult, type ProbeStream } from '../../wrappers/ffmpeg.js';
import { packetHashes, packetHashesInNode } from './packets.js';
import { FileSource, walkBoxes, type BoxTree } from './boxes.js';
import { DEFAULT_NEEDLES, type TrackKind } from './rules.js';
import { inventoryInput } from './rules-input.js';
import { checkOutputBoxes } from './rules-output.js';
import { exiftoolFindings } from './exiftool.js';
import { sniffVideo, type VideoFormat } from './sniff.js';
import { probeFindings } from './probe-check.js';
// The one list of kept codecs, shared with the box rewriter: a stream in another codec fails closed.
import { KEEP_CODECS } from './codecs.js';
import { videoInputSize } from './input.js';

interface KeptStream {
  index: number;
  trackId: number;
  kind: TrackKind;
  codec: string;
}

export async function sanitizeVideoByFfmpeg(
  input: string,
  output: string,
  policy: SanitizePolicy,
  format: VideoFormat,
): Promise<SanitizeResult> {
  // The thermal switch is about radiometric JPEG segments; video has no policy switch: every
  // non-essence structure goes.
  void policy;
  const size = await videoInputSize(input);
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
    // The stream by its index in the sanitized file (which the recheck needs); `about` is for people.
    proofs.push({
      method: 'ffmpeg-framehash-sha256',
      stream: i,
      before: b.digest,
      after: a.digest,
      about: { kind: k.kind, codec: k.codec, packets: b.packets, bytes: b.bytes, cardStream: k.index },
    });
  }
  return proofs;
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
