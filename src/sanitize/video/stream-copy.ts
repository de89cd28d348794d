/**
 * Writing a planned rewrite out (see ./stream.ts): the new header (./rewrite.ts) is parsed back
 * and checked against the allow-list before a byte goes out; then the kept chunks are read in
 * input order, in windows of at most 1 MiB (two buffers used in turn), and handed to the sink
 * while the essence is taken on both sides (input tables over the bytes read, output tables over
 * the bytes written, ./output-router.ts), the output is hashed, and the outside readers
 * (./checks.ts) read its first bytes. Resolves with the result only when every proof held.
 */
import { createHash } from 'node:crypto';
import { KluisError } from '../../errors.js';
import type { ByteSink, ByteSource as StreamSource, EssenceProof, StreamSanitizeOptions, StreamSanitizeResult } from '../types.js';
import { walkBoxes } from './boxes.js';
import { OutputReaders } from './checks.js';
import { OutputRouter } from './output-router.js';
import type { Prepared } from './prepare.js';
import { SAMPLES_METHOD_ID, SampleDataProof, describeTrack, differingParts, essenceValue, type TrackDescription } from './proof.js';
import { HeadSource, writeHead, type CopyPlan, type KeptTrack } from './rewrite.js';
import type { TrackKind } from './rules.js';
import { checkOutputBoxes } from './rules-output.js';
import { sniffVideo } from './sniff.js';
import { chunkOfSample, readSampleTables, trackBoxes, trackIdentity, type SampleTables } from './tables.js';

const WINDOW = 1 << 20;
const MAX_GAP = 64 << 10;
/** The checks' prefix: at least this much mdat, at most this much (a keyframe further in is not waited for). */
const PREFIX_MIN = 1 << 20;
const PREFIX_MAX = 256 << 20;
const DEFAULT_EDGE = 160;

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

/** Writes the planned rewrite to `sink`, proving it as it goes (see the module comment). */
export async function copyRewritten(src: StreamSource, sink: ByteSink, opts: StreamSanitizeOptions, p: Prepared): Promise<StreamSanitizeResult> {
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
    head: head.bytes,
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
      { tool: 'mp4box', found: tools.mp4box },
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
