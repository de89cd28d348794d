/**
 * The plan for rewriting one MP4/MOV input (see ./stream.ts): the input is checked to be the
 * format asked for with one moov of bounded size, its video and audio tracks are kept (their
 * codecs, sample tables and track ids checked), the other tracks' chunks are marked as bytes
 * that must not be copied, and the allow-list's inventory (./rules-input.ts) lists everything the
 * output will not carry. A layout the rewriter does not copy is answered with a fallback reason
 * instead of a plan. Reads the box tree and the tables, never the media data.
 */
import { KluisError } from '../../errors.js';
import type { ByteSource as StreamSource, RemovedItem, StreamSanitizeOptions } from '../types.js';
import { walkBoxes, type Box, type BoxTree, type ByteSource } from './boxes.js';
import { pcmBytesPerFrame, trackCodec } from './codecs.js';
import { mdatRanges, planCopy, type CopyPlan, type KeptTrack, type Ranges } from './rewrite.js';
import type { TrackKind } from './rules.js';
import { inventoryInput } from './rules-input.js';
import { sniffVideo, type VideoFormat } from './sniff.js';
import { readSampleTables, trackBoxes, trackIdentity } from './tables.js';

/** The largest moov kluis rewrites (it is held in memory, with its tables expanded). */
export const MAX_MOOV = 64 << 20;

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

/** A layout the rewriter does not copy, and why: it goes to the ffmpeg stream copy. */
export interface Fallback {
  fallback: string;
}

export interface Prepared {
  format: VideoFormat;
  box: ByteSource;
  tree: BoxTree;
  moov: Box;
  kept: KeptTrack[];
  plan: CopyPlan;
  removed: RemovedItem[];
  needles: string[];
}

export async function prepare(src: StreamSource, opts: StreamSanitizeOptions): Promise<Prepared | Fallback> {
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
