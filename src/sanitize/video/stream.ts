/**
 * MP4/MOV sanitizing by kluis's own box rewriter, in one read of the input.
 * `sanitizeVideoStream(src, sink, policy, opts)` reads the box tree by offset (moov may be at the
 * end), keeps the video and audio tracks the allow-list keeps, and hands to `sink`, in order:
 * ftyp, a new moov (./rewrite.ts), and one mdat holding only the kept tracks' chunks, copied in
 * input order. It never re-encodes, never changes a sample, a timing table or a sample
 * description a decoder reads, and never lets a byte of the input's mdat that no kept sample
 * references reach the output.
 *
 * Before the first byte goes out, the serialized header is parsed back and checked by our own
 * box walker against the allow-list (with the needles the removed metadata carried). While the
 * bytes go out: the essence (./proof.ts, `mp4-samples-sha256:t<track_ID>`) before is taken from
 * the INPUT's tables over the input bytes read, after from the OUTPUT's tables (parsed back from
 * the written moov) over the bytes handed to the sink, which must tile the output mdat exactly;
 * the SHA-256 of the output is taken as it passes; ExifTool, ffprobe and one keyframe decode run
 * on the output's first bytes (./checks.ts). It resolves only when every proof held, otherwise it
 * throws KluisError E_SANITIZE_* and the caller discards what the sink got. Memory: the moov and
 * its tables, two read windows of 1 MiB; never the media data as a whole.
 *
 * Layouts the rewriter does not copy (fragmented MP4, a track whose chunks are out of file order,
 * uncompressed sound whose stsz disagrees with its description) go to the ffmpeg stream copy
 * (./ffmpeg-copy.ts), which keeps its own proofs and method ids; the result's `kept` says so.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../../errors.js';
import { inputArgs, runFfmpeg } from '../../wrappers/ffmpeg.js';
import type {
  ByteSink, ByteSource as StreamSource, EssenceProof, RemovedItem, SanitizePolicy, StreamSanitizeOptions, StreamSanitizeResult,
} from '../types.js';
import { walkBoxes, type Box, type BoxTree, type ByteSource } from './boxes.js';
import { OutputReaders } from './checks.js';
import { pcmBytesPerFrame, trackCodec } from './codecs.js';
import { sanitizeVideoByFfmpeg } from './ffmpeg-copy.js';
import { SAMPLES_METHOD_ID, SampleDataProof, describeTrack, differingParts, essenceValue, type TrackDescription } from './proof.js';
import { HeadSource, mdatRanges, planCopy, writeHead, type CopyPlan, type KeptTrack, type Ranges } from './rewrite.js';
import type { TrackKind } from './rules.js';
import { inventoryInput } from './rules-input.js';
import { checkOutputBoxes } from './rules-output.js';
import { sniffVideo, type VideoFormat } from './sniff.js';
import { chunkOfSample, readSampleTables, trackBoxes, trackIdentity, type SampleTables } from './tables.js';

/** The largest moov kluis rewrites (it is held in memory, with its tables expanded). */
export const MAX_MOOV = 64 << 20;
const WINDOW = 1 << 20;
const MAX_GAP = 64 << 10;
/** The checks' prefix: at least this much mdat, at most this much (a keyframe further in is not waited for). */
const PREFIX_MIN = 1 << 20;
const PREFIX_MAX = 256 << 20;
const DEFAULT_EDGE = 160;

/** The contract's exact-read source as the walker's read-up-to source. */
class ClampedSource implements ByteSource {
  readonly size: number;
  constructor(private readonly src: StreamSource) {
    this.size = src.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    return n === 0 ? Buffer.alloc(0) : this.src.read(offset, n);
  }
}

interface Fallback {
  fallback: string;
}

export async function sanitizeVideoStream(
  src: StreamSource,
  sink: ByteSink,
  policy: SanitizePolicy,
  opts: StreamSanitizeOptions,
  /** The input's path when the caller has one (spares the ffmpeg fallback a scratch copy). */
  inputPath?: string,
): Promise<StreamSanitizeResult> {
  try {
    const planned = await prepare(src, opts);
    if ('fallback' in planned) return await viaFfmpeg(src, sink, policy, opts, planned.fallback, inputPath);
    return await rewrite(src, sink, opts, planned);
  } catch (err) {
    throw asKluisError(err, 'E_SANITIZE_FAILED');
  }
}

interface Prepared {
  format: VideoFormat;
  box: ByteSource;
  tree: BoxTree;
  moov: Box;
  kept: KeptTrack[];
  plan: CopyPlan;
  removed: RemovedItem[];
  needles: string[];
}

async function prepare(src: StreamSource, opts: StreamSanitizeOptions): Promise<Prepared | Fallback> {
  // The thermal switch is about radiometric JPEG segments; video has no policy switch: every
  // non-essence structure goes.
  if (opts.format !== 'mp4' && opts.format !== 'mov') {
    throw new KluisError('E_SANITIZE_FORMAT', `the video sanitizer was given a ${opts.format} file`, { hint: 'classify the file by its first bytes (sniff) and pass that format' });
  }
  const format = opts.format;
  if (src.size === 0) {
    throw new KluisError('E_SANITIZE_EMPTY', 'the video file is empty', { hint: 'the recording was never written; there is nothing to sanitize' });
  }
  const box = new ClampedSource(src);
  const sniffed = sniffVideo(await box.read(0, 4096));
  if (sniffed === null) {
    throw new KluisError('E_SANITIZE_FORMAT', 'the file does not start like an MP4 or MOV video', { hint: 'it may be damaged or a different format; it is not stored' });
  }
  if (sniffed !== format) {
    throw new KluisError('E_SANITIZE_FORMAT', `the file is ${sniffed.toUpperCase()}, not ${format.toUpperCase()} as asked`, {
      hint: 'classify the file by its first bytes (sniffVideo) and pass that format',
    });
  }
  const tree = await walkBoxes(box);
  const moovs = tree.boxes.filter((b) => b.type === 'moov');
  if (moovs.length === 0) {
    throw new KluisError('E_SANITIZE_NO_MOOV', 'the video has no moov box (its index), so it cannot be read', {
      hint: 'the recording was probably interrupted (battery, card pulled); repair a copy with a tool such as untrunc; kluis will not store a file it cannot check',
    });
  }
  if (moovs.length > 1) throw new KluisError('E_SANITIZE_FORMAT', 'the video has more than one moov box', { hint: 'readers disagree on which one counts; the file is not stored' });
  const moov = moovs[0]!;
  if (moov.size > MAX_MOOV) {
    throw new KluisError('E_SANITIZE_TOO_LARGE', `the video's index (moov) is ${moov.size} bytes, more than the ${MAX_MOOV} kluis rewrites`, {
      hint: 'split the recording; the original is kept sealed as it is',
    });
  }
  if ((moov.children ?? []).some((b) => b.type === 'mvex') || tree.boxes.some((b) => b.type === 'moof')) {
    return { fallback: 'the file is fragmented (moof/mvex)' };
  }

  const kept: KeptTrack[] = [];
  const removedRanges: Ranges = [];
  for (const trak of (moov.children ?? []).filter((b) => b.type === 'trak')) {
    const { id, handler } = await trackIdentity(box, trak);
    if (handler === 'vide' || handler === 'soun') {
      const kind: TrackKind = handler === 'vide' ? 'video' : 'audio';
      const boxes = trackBoxes(trak);
      const codec = await trackCodec(box, boxes.stsd, kind, format, id);
      const tables = await readSampleTables(box, boxes);
      if (tables.sampleCount === 0) {
        throw new KluisError('E_SANITIZE_ESSENCE', `track ${id} (${kind} ${codec}) has no samples`, { hint: 'an empty picture or sound track cannot be proven; the file is not stored' });
      }
      if (codec.startsWith('pcm_')) {
        // QuickTime lets stsz say 1 for uncompressed sound whose frames are larger; readers then
        // take the size from the sample description. Copy only what both agree on.
        const entry = (boxes.stsd.children ?? [])[0]!;
        const frame = await pcmBytesPerFrame(box, entry);
        if (tables.sizes !== null || frame === null || tables.fixedSize !== frame) {
          return { fallback: `track ${id}'s uncompressed sound has sample sizes (${tables.sizes ? 'per sample' : tables.fixedSize}) other than its description's frame size (${frame ?? '?'})` };
        }
      }
      kept.push({ trackId: id, kind, codec, boxes, tables });
    } else {
      try {
        const t = await readSampleTables(box, trackBoxes(trak));
        for (let c = 0; c < t.chunkOffsets.length; c++) removedRanges.push([t.chunkOffsets[c]!, t.chunkOffsets[c]! + t.chunkBytes[c]!]);
      } catch {
        // A removed track's broken index: none of its bytes are copied, whatever it says.
      }
    }
  }
  if (kept.length === 0) throw new KluisError('E_SANITIZE_NO_ESSENCE', 'the file has no video or audio stream to keep', { hint: 'it holds only metadata or is damaged; it is not stored' });
  const ids = new Set(kept.map((k) => k.trackId));
  if (ids.size !== kept.length || ids.has(-1) || ids.has(0)) {
    // The essence names a track by its id (t<track_ID>), so it must be unique and valid (not 0).
    throw new KluisError('E_SANITIZE_TRACK_MAP', 'two kept tracks share a track id (or one has none, or 0)', { hint: 'readers disagree about the file; it is not stored' });
  }
  const inventory = await inventoryInput(box, tree, ids);
  const plan = planCopy(kept, src.size, mdatRanges(tree), removedRanges);
  if ('fallback' in plan) return plan;
  const removed = [...inventory.removed];
  const mdatBytes = mdatRanges(tree).reduce((a, [s, e]) => a + (e - s), 0);
  const removedBytes = removedRanges.reduce((a, [s, e]) => a + Math.max(0, e - s), 0);
  const loose = mdatBytes - plan.payloadBytes - removedBytes;
  if (loose > 0) removed.push({ where: 'mdat (bytes no track references)', what: 'other', bytes: loose });
  return { format, box, tree, moov, kept, plan, removed, needles: inventory.needles };
}

/** The output's tables, cut at the positions its own chunk offsets say, for the output side of the proof. */
class OutputRouter {
  private readonly track: Uint32Array;
  private readonly start: Float64Array;
  private readonly length: Float64Array;
  private i = 0;
  private pos: number;

  constructor(
    tables: readonly SampleTables[],
    private readonly mdatStart: number,
    private readonly end: number,
    private readonly proof: SampleDataProof,
  ) {
    const n = tables.reduce((a, t) => a + t.chunkBytes.filter((b) => b > 0).length, 0);
    this.track = new Uint32Array(n);
    this.start = new Float64Array(n);
    this.length = new Float64Array(n);
    const cursor = tables.map(() => 0);
    const next = (ti: number): void => {
      const t = tables[ti]!;
      while (cursor[ti]! < t.chunkOffsets.length && t.chunkBytes[cursor[ti]!] === 0) cursor[ti]! += 1;
    };
    tables.forEach((_, ti) => next(ti));
    let at = mdatStart;
    for (let k = 0; k < n; k++) {
      let best = -1;
      for (let ti = 0; ti < tables.length; ti++) {
        const c = cursor[ti]!;
        if (c < tables[ti]!.chunkOffsets.length && (best < 0 || tables[ti]!.chunkOffsets[c]! < tables[best]!.chunkOffsets[cursor[best]!]!)) best = ti;
      }
      const t = tables[best]!;
      const c = cursor[best]!;
      if (t.chunkOffsets[c] !== at) {
        throw new KluisError('E_SANITIZE_ESSENCE', `the output's tables leave bytes of its mdat to no sample, or give bytes to two (at ${at})`, {
          hint: 'the rewrite is inconsistent; the file is not stored (this is a bug in kluis, please report it)',
        });
      }
      this.track[k] = best;
      this.start[k] = at;
      this.length[k] = t.chunkBytes[c]!;
      at += t.chunkBytes[c]!;
      cursor[best]! += 1;
      next(best);
    }
    if (at !== end) {
      throw new KluisError('E_SANITIZE_ESSENCE', `the output's samples end at ${at}, its mdat at ${end}`, {
        hint: 'the rewrite is inconsistent; the file is not stored (this is a bug in kluis, please report it)',
      });
    }
    this.pos = mdatStart;
  }

  /** Output mdat bytes at `position`, in order: each chunk's part goes to its track on the output side of the proof. */
  feed(position: number, bytes: Uint8Array): void {
    if (position !== this.pos) throw new KluisError('E_INTERNAL', `output bytes at ${position}, expected ${this.pos}`);
    let done = 0;
    while (done < bytes.length) {
      if (this.i >= this.track.length) throw new KluisError('E_SANITIZE_ESSENCE', 'the output carries bytes past its last sample', { hint: 'the file is not stored' });
      const chunkEnd = this.start[this.i]! + this.length[this.i]!;
      const n = Math.min(bytes.length - done, chunkEnd - (this.pos + done));
      this.proof.output(this.track[this.i]!, bytes.subarray(done, done + n));
      done += n;
      if (this.pos + done === chunkEnd) this.i += 1;
    }
    this.pos += bytes.length;
  }

  complete(): boolean {
    return this.pos === this.end && this.i === this.track.length && this.mdatStart <= this.end;
  }
}

interface Piece {
  track: number;
  start: number;
  length: number;
}

interface ReadWindow {
  start: number;
  length: number;
  pieces: Piece[];
}

/** The read windows over the kept chunks, in input order: at most WINDOW bytes, gaps up to MAX_GAP read through. */
function* readWindows(kept: readonly KeptTrack[], plan: CopyPlan): Generator<ReadWindow> {
  let w: ReadWindow | null = null;
  for (let n = 0; n < plan.orderTrack.length; n++) {
    const track = plan.orderTrack[n]!;
    const t = kept[track]!.tables;
    const c = plan.orderChunk[n]!;
    const a = t.chunkOffsets[c]!;
    const len = t.chunkBytes[c]!;
    for (let done = 0; done < len; ) {
      const p = a + done;
      let l = Math.min(len - done, WINDOW);
      if (w && p >= w.start + w.length && p - (w.start + w.length) <= MAX_GAP && p + 1 - w.start <= WINDOW) {
        l = Math.min(l, w.start + WINDOW - p);
        w.pieces.push({ track, start: p, length: l });
        w.length = p + l - w.start;
      } else {
        if (w) yield w;
        w = { start: p, length: l, pieces: [{ track, start: p, length: l }] };
      }
      done += l;
    }
  }
  if (w) yield w;
}

/** Where the checks' prefix ends: past the first video keyframe's chunk and at least PREFIX_MIN into mdat, on a chunk end. */
function prefixEnd(out: readonly SampleTables[], kinds: readonly TrackKind[], mdatStart: number, size: number): number {
  const chunkEndAt = (t: SampleTables, c: number): number => t.chunkOffsets[c]! + t.chunkBytes[c]!;
  let end = mdatStart;
  const v = kinds.indexOf('video');
  if (v >= 0) {
    const t = out[v]!;
    end = chunkEndAt(t, chunkOfSample(t, t.firstSync));
  }
  const want = Math.min(size, mdatStart + PREFIX_MIN);
  // The end of whichever chunk holds the byte just before `want`.
  for (const t of out) {
    for (let c = 0; c < t.chunkOffsets.length; c++) {
      const a = t.chunkOffsets[c]!;
      const b = a + t.chunkBytes[c]!;
      if (a < want && b >= want) end = Math.max(end, b);
    }
  }
  end = Math.max(end, Math.min(want, size));
  return Math.min(end, size, mdatStart + PREFIX_MAX);
}

async function rewrite(src: StreamSource, sink: ByteSink, opts: StreamSanitizeOptions, p: Prepared): Promise<StreamSanitizeResult> {
  const { format, box, tree, kept, plan } = p;
  const head = await writeHead(box, tree, format, kept, plan);
  if (sniffVideo(head.bytes.subarray(0, 4096)) !== format) {
    throw new KluisError('E_INTERNAL', `the rewritten header does not read as ${format.toUpperCase()}`, { hint: 'this is a bug in kluis, please report it' });
  }

  // Parse the output header back, as any reader would, and check it before a byte goes out.
  const out = new HeadSource(head.bytes, head.size);
  const outTree = await walkBoxes(out);
  const kinds = kept.map((k) => k.kind);
  const boxFindings = await checkOutputBoxes(out, outTree, { tracks: kinds, format, needles: p.needles });
  if (boxFindings.length > 0) throw residue(boxFindings.map((f) => `box-walker: ${f}`));
  const outMoov = outTree.boxes.find((b) => b.type === 'moov')!;
  const outTraks = (outMoov.children ?? []).filter((b) => b.type === 'trak');
  const outMvhd = (outMoov.children ?? []).find((b) => b.type === 'mvhd')!;
  const inMvhd = (p.moov.children ?? []).find((b) => b.type === 'mvhd')!;
  const outTables: SampleTables[] = [];
  const before: TrackDescription[] = [];
  const after: TrackDescription[] = [];
  for (let i = 0; i < kept.length; i++) {
    const k = kept[i]!;
    const trak = outTraks[i];
    const ident = trak ? await trackIdentity(out, trak) : undefined;
    if (!trak || ident?.id !== k.trackId || ident.handler !== (k.kind === 'video' ? 'vide' : 'soun')) {
      throw new KluisError('E_SANITIZE_TRACK_MAP', `the output's track ${i + 1} is not the kept track ${k.trackId}`, { hint: 'this is a bug in kluis, please report it' });
    }
    const tb = trackBoxes(trak);
    const t = await readSampleTables(out, tb);
    outTables.push(t);
    before.push(await describeTrack(box, inMvhd, k.boxes, k.tables, k.kind));
    after.push(await describeTrack(out, outMvhd, tb, t, k.kind));
    const diff = differingParts(before[i]!, after[i]!);
    if (diff.length > 0) {
      throw new KluisError('E_SANITIZE_ESSENCE', `track ${k.trackId} (${k.kind} ${k.codec}): the output's ${diff.join(', ')} differ from the input's`, {
        hint: 'the picture or sound would not be bit-exact; the file is not stored (this is a bug in kluis, please report it)',
      });
    }
  }

  const proof = new SampleDataProof(kept.length);
  const router = new OutputRouter(outTables, head.mdatPayloadStart, head.size, proof);
  const readers = new OutputReaders({
    scratchDir: opts.scratchDir,
    format,
    size: head.size,
    mdatPayloadStart: head.mdatPayloadStart,
    prefixEnd: prefixEnd(outTables, kinds, head.mdatPayloadStart, head.size),
    kept: kept.map((k) => ({ kind: k.kind, codec: k.codec })),
    needles: p.needles,
    maxEdge: opts.thumbnail?.maxEdge ?? DEFAULT_EDGE,
  });
  const fileHash = createHash('sha256');
  let position = 0;
  const emit = async (bytes: Buffer): Promise<void> => {
    fileHash.update(bytes);
    if (position >= head.mdatPayloadStart) router.feed(position, bytes);
    await readers.write(position, bytes);
    await sink.write(bytes);
    position += bytes.length;
  };

  let pendingRead: Promise<{ w: ReadWindow; buf: Buffer }> | null = null;
  try {
    await emit(head.bytes);
    const windows = readWindows(kept, plan);
    // Two window buffers, used in turn when the source can read into them: a window's buffer is
    // read into again only after every slice of it went through the proof and the sink.
    const pool = src.readInto ? [Buffer.allocUnsafe(WINDOW), Buffer.allocUnsafe(WINDOW)] : null;
    let turn = 0;
    const read = async (w: ReadWindow): Promise<{ w: ReadWindow; buf: Buffer }> => {
      if (!pool || !src.readInto) return { w, buf: await src.read(w.start, w.length) };
      const buf = pool[turn++ % 2]!.subarray(0, w.length);
      await src.readInto(w.start, buf);
      return { w, buf };
    };
    let next = windows.next();
    pendingRead = next.done ? null : read(next.value);
    while (pendingRead) {
      const { w, buf } = await pendingRead;
      next = windows.next();
      pendingRead = next.done ? null : read(next.value);
      // Input side: the input's tables cut the bytes read.
      for (const piece of w.pieces) proof.input(piece.track, buf.subarray(piece.start - w.start, piece.start - w.start + piece.length));
      // Output: back-to-back pieces go out as one write.
      let g = 0;
      while (g < w.pieces.length) {
        let h = g + 1;
        while (h < w.pieces.length && w.pieces[h]!.start === w.pieces[h - 1]!.start + w.pieces[h - 1]!.length) h++;
        const a = w.pieces[g]!.start - w.start;
        const last = w.pieces[h - 1]!;
        await emit(buf.subarray(a, last.start + last.length - w.start));
        g = h;
      }
      // Every slice hashed for this window went out where the output's tables say: nothing of
      // this buffer is still waiting when it is read into again.
      if (!proof.settled()) {
        throw new KluisError('E_SANITIZE_ESSENCE', `the output's tables do not place all the sample bytes read at ${w.start}`, {
          hint: 'the rewrite is inconsistent; the file is not stored (this is a bug in kluis, please report it)',
        });
      }
    }
    if (!router.complete() || position !== head.size) {
      throw new KluisError('E_SANITIZE_ESSENCE', `the output ended at byte ${position} of ${head.size}`, { hint: 'the file is not stored (this is a bug in kluis, please report it)' });
    }
    const data = proof.digests();
    const essence: EssenceProof[] = kept.map((k, i) => {
      if (proof.inputBytes[i] !== k.tables.totalBytes || proof.outputBytes[i] !== outTables[i]!.totalBytes) {
        throw new KluisError('E_SANITIZE_ESSENCE', `track ${k.trackId}: ${proof.inputBytes[i]} sample bytes read, ${proof.outputBytes[i]} written, ${k.tables.totalBytes} listed`, {
          hint: 'the picture or sound would not be complete; the file is not stored',
        });
      }
      const b = essenceValue(before[i]!, data[i]!);
      const a = essenceValue(after[i]!, data[i]!);
      if (a !== b) throw new KluisError('E_SANITIZE_ESSENCE', `track ${k.trackId} differs after the rewrite`, { hint: 'the file is not stored' });
      // The track by its track_ID (the same in the input and the output); `about` is for people.
      return {
        method: SAMPLES_METHOD_ID,
        track: k.trackId,
        before: b,
        after: a,
        about: { kind: k.kind, codec: k.codec, samples: k.tables.sampleCount, bytes: k.tables.totalBytes },
      };
    });
    const tools = await readers.result();
    const checks = [
      { tool: 'box-walker', found: [] as string[] },
      { tool: 'exiftool', found: tools.exiftool },
      { tool: 'ffprobe', found: tools.ffprobe },
    ];
    const found = checks.flatMap((c) => c.found.map((f) => `${c.tool}: ${f}`));
    if (found.length > 0) throw residue(found);
    return {
      format,
      sha256: fileHash.digest('hex'),
      size: position,
      essence,
      removed: p.removed,
      kept: [
        'video and audio samples, bit-exact (including any data the codec carries in-band, e.g. H.264 SEI), with their descriptions, timing and edit lists',
        ...kept.map((k) => `track ${k.trackId} (${k.kind} ${k.codec}, ${k.tables.sampleCount} samples)`),
      ],
      checks,
      ...(opts.thumbnail && tools.thumbnail ? { thumbnail: tools.thumbnail } : {}),
    };
  } finally {
    pendingRead?.catch(() => undefined);
    await readers.dispose();
  }
}

function residue(found: string[]): KluisError {
  return new KluisError('E_SANITIZE_RESIDUE', `after sanitizing, the video still carries ${found.length} thing(s) that must go: ${found.slice(0, 3).join('; ')}`, {
    hint: 'the file is not stored; report it with the details so the allow-list can be reviewed',
    details: { found },
  });
}

/** The ffmpeg stream copy, for layouts the rewriter does not take; bounded memory, scratch files removed. */
async function viaFfmpeg(
  src: StreamSource,
  sink: ByteSink,
  policy: SanitizePolicy,
  opts: StreamSanitizeOptions,
  reason: string,
  inputPath: string | undefined,
): Promise<StreamSanitizeResult> {
  const format = opts.format as VideoFormat;
  const id = `kluis-${process.pid}-${randomBytes(6).toString('hex')}`;
  const scratchIn = path.join(opts.scratchDir, `${id}.in.${format}`);
  const scratchOut = path.join(opts.scratchDir, `${id}.out.${format}`);
  try {
    let input = inputPath;
    if (!input) {
      const fh = await fsp.open(scratchIn, 'wx', 0o600);
      try {
        for (let at = 0; at < src.size; at += WINDOW) {
          const b = await src.read(at, Math.min(WINDOW, src.size - at));
          await fh.write(b, 0, b.length, at);
        }
      } finally {
        await fh.close();
      }
      input = scratchIn;
    }
    const r = await sanitizeVideoByFfmpeg(input, scratchOut, policy, format);
    const h = createHash('sha256');
    const fh = await fsp.open(scratchOut, 'r');
    let size = 0;
    const b = Buffer.allocUnsafe(WINDOW); // the sink is done with a chunk when its write resolves
    try {
      for (;;) {
        const { bytesRead } = await fh.read(b, 0, WINDOW, size);
        if (bytesRead === 0) break;
        const chunk = b.subarray(0, bytesRead);
        h.update(chunk);
        await sink.write(chunk);
        size += bytesRead;
      }
    } finally {
      await fh.close();
    }
    if (h.digest('hex') !== r.sha256 || size !== r.size) {
      throw new KluisError('E_SANITIZE_FAILED', 'the sanitized file changed between its check and its hand-over', { hint: 'the scratch folder is not private; check its permissions' });
    }
    let thumbnail: Buffer | undefined;
    if (opts.thumbnail && r.essence.some((e) => e.about?.kind === 'video')) {
      const e = opts.thumbnail.maxEdge;
      const { stdout } = await runFfmpeg(
        ['-v', 'error', '-threads', '1', ...inputArgs(scratchOut), '-map', '0:v:0', '-frames:v', '1', '-vf', `scale=${e}:${e}:force_original_aspect_ratio=decrease`, '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '4', 'pipe:1'],
        { collectStdout: 16 << 20, timeoutMs: 120_000 },
      );
      if (stdout.length > 0) thumbnail = stdout;
    }
    return { ...r, kept: [...r.kept, `written by the ffmpeg stream copy, not kluis's rewriter: ${reason}`], ...(thumbnail ? { thumbnail } : {}) };
  } finally {
    await fsp.rm(scratchIn, { force: true });
    await fsp.rm(scratchOut, { force: true });
  }
}
