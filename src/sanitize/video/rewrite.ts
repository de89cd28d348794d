/**
 * The plan and the header of a sanitized MP4/MOV: `planCopy` decides which input byte ranges
 * (the kept tracks' chunks, in input order) become the one output `mdat`, and `writeHead`
 * serializes `ftyp` + a new `moov` + the `mdat` header, with every kept chunk's new offset
 * (stco, or co64 when the output passes 4 GiB).
 *
 * It promises: only the canonical forms of ./normalize.ts go into the new moov (times zeroed,
 * neutral handler names, self-contained data references, allow-listed boxes only); the output
 * mdat holds exactly the kept chunks, back to back, so no byte of the input's mdat that no kept
 * sample references can reach the output; a layout it cannot copy faithfully is either refused
 * (KluisError: samples past the end of the file E_SANITIZE_TRUNCATED, samples outside every mdat
 * E_SANITIZE_SAMPLE_RANGE, kept chunks sharing bytes with each other or with a removed track
 * E_SANITIZE_SAMPLE_OVERLAP, an external data reference E_SANITIZE_EXTERNAL_DATA) or handed back
 * as `{ fallback: reason }` (a track whose chunks are not in file order) for the ffmpeg path. It reads only the boxes of
 * moov; the media data is the caller's to copy.
 */
import { KluisError } from '../../errors.js';
import { readPayload, type Box, type BoxTree, type ByteSource } from './boxes.js';
import { box, keptGrouping, normalStsd, normalTable, normalTimes } from './normalize.js';
import type { TrackKind } from './rules.js';
import { MP4_BRANDS, type VideoFormat } from './sniff.js';
import type { SampleTables, TrackBoxes } from './tables.js';

export interface KeptTrack {
  trackId: number;
  kind: TrackKind;
  codec: string;
  boxes: TrackBoxes;
  tables: SampleTables;
}

export interface CopyPlan {
  /** The kept chunks that hold bytes, in input order: track (index into kept) and chunk index. */
  orderTrack: Uint32Array;
  orderChunk: Uint32Array;
  /** Output offset of every chunk relative to the start of the mdat payload, per kept track. */
  relOffsets: Float64Array[];
  payloadBytes: number;
}

/** Byte ranges [start, end) of a removed track's chunks, for the overlap check. */
export type Ranges = Array<[number, number]>;

function overlapError(message: string): KluisError {
  return new KluisError('E_SANITIZE_SAMPLE_OVERLAP', message, {
    hint: 'two tracks claim the same bytes; kluis cannot tell picture and sound from the rest, so the file is not stored',
  });
}

/**
 * Orders the kept chunks by input offset and checks the layout. `mdats` are the payload ranges
 * of the input's mdat boxes; `removed` the chunk ranges of the tracks that go.
 */
export function planCopy(
  kept: readonly KeptTrack[],
  fileSize: number,
  mdats: Ranges,
  removed: Ranges,
): CopyPlan | { fallback: string } {
  let total = 0;
  for (const k of kept) {
    const t = k.tables;
    let prevEnd = -1;
    for (let c = 0; c < t.chunkOffsets.length; c++) {
      const len = t.chunkBytes[c]!;
      if (len === 0) continue;
      const start = t.chunkOffsets[c]!;
      const end = start + len;
      if (end > fileSize) {
        throw new KluisError('E_SANITIZE_TRUNCATED', `track ${k.trackId} lists samples up to byte ${end}, but the file ends at ${fileSize}`, {
          hint: 'the file was cut short (card pulled, copy interrupted); the original is kept sealed as it is',
        });
      }
      if (!mdats.some(([a, b]) => start >= a && end <= b)) {
        // Sample bytes that lie in moov or another box would carry that box's bytes (metadata
        // included) into the output's mdat, where no check looks for them.
        throw new KluisError('E_SANITIZE_SAMPLE_RANGE', `track ${k.trackId} lists samples at bytes ${start}-${end}, outside the media data (mdat)`, {
          hint: "the file's index points outside its media data (damaged, or built to smuggle bytes); the file is not stored",
        });
      }
      if (start < prevEnd) return { fallback: `track ${k.trackId} keeps its chunks out of file order` };
      prevEnd = end;
      total += 1;
    }
  }
  // k-way merge of the tracks' chunk lists (each already in file order).
  const orderTrack = new Uint32Array(total);
  const orderChunk = new Uint32Array(total);
  const cursor = kept.map(() => 0);
  const skipEmpty = (ti: number): void => {
    const t = kept[ti]!.tables;
    while (cursor[ti]! < t.chunkOffsets.length && t.chunkBytes[cursor[ti]!] === 0) cursor[ti]! += 1;
  };
  kept.forEach((_, ti) => skipEmpty(ti));
  let lastEnd = -1;
  for (let n = 0; n < total; n++) {
    let best = -1;
    let bestOffset = Infinity;
    for (let ti = 0; ti < kept.length; ti++) {
      const t = kept[ti]!.tables;
      const c = cursor[ti]!;
      if (c < t.chunkOffsets.length && t.chunkOffsets[c]! < bestOffset) {
        best = ti;
        bestOffset = t.chunkOffsets[c]!;
      }
    }
    const c = cursor[best]!;
    if (bestOffset < lastEnd) throw overlapError(`track ${kept[best]!.trackId} chunk ${c + 1} shares bytes with another kept chunk`);
    lastEnd = bestOffset + kept[best]!.tables.chunkBytes[c]!;
    orderTrack[n] = best;
    orderChunk[n] = c;
    cursor[best]! += 1;
    skipEmpty(best);
  }
  // Removed tracks' chunks must not lie inside a kept chunk: their bytes would be copied.
  const sorted = [...removed].filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let r = 0;
  for (let n = 0; n < total && sorted.length > 0; n++) {
    const t = kept[orderTrack[n]!]!.tables;
    const a = t.chunkOffsets[orderChunk[n]!]!;
    const b = a + t.chunkBytes[orderChunk[n]!]!;
    while (r < sorted.length && sorted[r]![1] <= a) r++;
    for (let i = r; i < sorted.length && sorted[i]![0] < b; i++) {
      if (sorted[i]![1] > a) throw overlapError(`a removed track's samples lie inside kept chunk at byte ${a}`);
    }
  }
  const relOffsets = kept.map((k) => new Float64Array(k.tables.chunkOffsets.length));
  let rel = 0;
  for (let n = 0; n < total; n++) {
    const ti = orderTrack[n]!;
    const c = orderChunk[n]!;
    relOffsets[ti]![c] = rel;
    rel += kept[ti]!.tables.chunkBytes[c]!;
  }
  // Chunks without bytes point where their track's previous chunk ended.
  for (const [ti, k] of kept.entries()) {
    const t = k.tables;
    for (let c = 0; c < t.chunkOffsets.length; c++) {
      if (t.chunkBytes[c] === 0) relOffsets[ti]![c] = c === 0 ? 0 : relOffsets[ti]![c - 1]! + t.chunkBytes[c - 1]!;
    }
  }
  return { orderTrack, orderChunk, relOffsets, payloadBytes: rel };
}

// ---------------------------------------------------------------------------------------------
// The header

function u32be(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

function fourccBytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/**
 * ftyp: the input's major brand and printable compatible brands (QuickTime's when it had none);
 * the minor version is the neutral 0x200 (a writer's own number says which writer it was).
 */
async function writeFtyp(src: ByteSource, tree: BoxTree, format: VideoFormat): Promise<Buffer> {
  const ftyp = tree.boxes.find((b) => b.type === 'ftyp');
  const minor = u32be(0x200);
  if (!ftyp) return box('ftyp', fourccBytes('qt  '), minor, fourccBytes('qt  '));
  const p = Buffer.from(await readPayload(src, ftyp, 4096));
  const printable = (s: string): boolean => /^[\x20-\x7e]{4}$/.test(s);
  const major = p.toString('latin1', 0, 4);
  const brands: string[] = [];
  for (let at = 8; at + 4 <= p.length; at += 4) {
    const b = p.toString('latin1', at, at + 4);
    if (printable(b) && !brands.includes(b)) brands.push(b);
  }
  if (!printable(major)) {
    // Keep the file what it was by its first bytes: a known brand as the major one.
    const known = format === 'mov' ? 'qt  ' : (brands.find((b) => MP4_BRANDS.has(b)) ?? 'isom');
    return box('ftyp', fourccBytes(known), minor, ...brands.map(fourccBytes));
  }
  return box('ftyp', p.subarray(0, 4), minor, ...brands.map(fourccBytes));
}

/** A handler box with a neutral name: C string in MP4, Pascal string (QuickTime) in MOV. */
function hdlrBox(format: VideoFormat, component: 'mhlr' | 'dhlr', type: string, name: string): Buffer {
  const pre = format === 'mov' ? fourccBytes(component) : Buffer.alloc(4);
  const text = format === 'mov' ? Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1')]) : Buffer.from(`${name}\0`, 'latin1');
  return box('hdlr', Buffer.alloc(4), pre, fourccBytes(type), Buffer.alloc(12), text);
}

/** dref with `count` self-contained entries; throws when a kept description points at another file. */
async function drefBox(src: ByteSource, k: KeptTrack): Promise<Buffer> {
  const entries = k.boxes.dref?.children ?? [];
  const count = Math.max(1, entries.length);
  const selfContained: boolean[] = [];
  for (const e of entries) {
    const p = await readPayload(src, e, 1 << 16);
    selfContained.push(p.length >= 4 && ((p[3] ?? 0) & 1) === 1);
  }
  for (const e of k.boxes.stsd.children ?? []) {
    const fixed = await src.read(e.offset + e.headerSize, 8);
    const index = fixed.length >= 8 ? ((fixed[6] ?? 0) << 8) | (fixed[7] ?? 0) : 0;
    if (index < 1 || index > count) {
      throw new KluisError('E_SANITIZE_SAMPLE_TABLE', `track ${k.trackId}: sample description names data reference ${index} of ${count}`, {
        hint: "the track's index is damaged; the file is not stored",
      });
    }
    if (entries.length > 0 && !selfContained[index - 1]) {
      throw new KluisError('E_SANITIZE_EXTERNAL_DATA', `track ${k.trackId} keeps its samples in another file (an external data reference)`, {
        hint: 'a reference file is not footage by itself; store the media file it points to',
      });
    }
  }
  const url = box('url ', u32be(1));
  return box('dinf', box('dref', u32be(0, count), ...Array.from({ length: count }, () => url)));
}

interface TrakParts {
  head: Buffer[]; // tkhd, edts
  mdhd: Buffer;
  hdlr: Buffer;
  minfHead: Buffer[]; // media header, data handler, dinf
  stbl: Buffer[]; // every stbl child but the offsets
}

async function trakParts(src: ByteSource, k: KeptTrack, format: VideoFormat): Promise<TrakParts> {
  const b = k.boxes;
  const n = k.tables.sampleCount;
  const head = [box('tkhd', await normalTimes(src, b.tkhd))];
  if (b.elst) head.push(box('edts', box('elst', await normalTable(src, b.elst, n))));
  const minfHead: Buffer[] = [];
  const want = k.kind === 'video' ? 'vmhd' : 'smhd';
  const mh = b.mediaHeader?.type === want ? Buffer.from(await readPayload(src, b.mediaHeader, 4096)) : null;
  if (k.kind === 'video') {
    const p = mh && mh.length >= 12 ? mh.subarray(0, 12) : u32be(1, 0, 0);
    minfHead.push(box('vmhd', p));
  } else {
    minfHead.push(box('smhd', mh && mh.length >= 8 ? mh.subarray(0, 8) : u32be(0, 0)));
  }
  if (format === 'mov' && b.dataHandler) minfHead.push(hdlrBox(format, 'dhlr', 'url ', 'DataHandler'));
  minfHead.push(await drefBox(src, k));
  const stbl: Buffer[] = [box('stsd', await normalStsd(src, b.stsd, k.kind))];
  for (const t of ['stts', 'ctts', 'cslg', 'stss', 'stps', 'sdtp']) {
    const tb = b.tables.get(t);
    if (tb) stbl.push(box(t, await normalTable(src, tb, n)));
  }
  for (const g of b.groupings) if (await keptGrouping(src, g)) stbl.push(box(g.type, await readPayload(src, g, 4 << 20)));
  stbl.push(box('stsc', await normalTable(src, b.tables.get('stsc')!, n)));
  const sizes = b.tables.get('stsz') ?? b.tables.get('stz2')!;
  stbl.push(box(sizes.type, await normalTable(src, sizes, n)));
  return {
    head,
    mdhd: box('mdhd', await normalTimes(src, b.mdhd)),
    hdlr: hdlrBox(format, 'mhlr', k.kind === 'video' ? 'vide' : 'soun', k.kind === 'video' ? 'VideoHandler' : 'SoundHandler'),
    minfHead,
    stbl,
  };
}

/** stco or co64 with `base` + each relative offset; with `base` null only the size is right (values 0). */
function offsetsBox(rel: Float64Array, base: number | null, wide: boolean): Buffer {
  const out = Buffer.alloc(8 + rel.length * (wide ? 8 : 4));
  out.writeUInt32BE(rel.length, 4);
  for (let i = 0; base !== null && i < rel.length; i++) {
    const v = base + rel[i]!;
    if (wide) out.writeBigUInt64BE(BigInt(v), 8 + i * 8);
    else out.writeUInt32BE(v, 8 + i * 4);
  }
  return box(wide ? 'co64' : 'stco', out);
}

export interface Head {
  /** ftyp + moov + mdat header: the first bytes of the output. */
  bytes: Buffer;
  /** The whole output's size. */
  size: number;
  mdatPayloadStart: number;
}

/** Serializes the output's header for `plan`. */
export async function writeHead(src: ByteSource, tree: BoxTree, format: VideoFormat, kept: readonly KeptTrack[], plan: CopyPlan): Promise<Head> {
  const moovBox = tree.boxes.find((b) => b.type === 'moov')!;
  const mvhd = (moovBox.children ?? []).filter((b) => b.type === 'mvhd');
  if (mvhd.length !== 1) {
    throw new KluisError('E_SANITIZE_SAMPLE_TABLE', `moov holds ${mvhd.length} mvhd boxes, not one`, { hint: "the video's index is damaged; the file is not stored" });
  }
  const ftyp = await writeFtyp(src, tree, format);
  const mvhdBox = box('mvhd', await normalTimes(src, mvhd[0] as Box));
  const parts: TrakParts[] = [];
  for (const k of kept) parts.push(await trakParts(src, k, format));
  const mdatHeader = plan.payloadBytes + 8 > 0xffffffff ? 16 : 8;
  const moov = (base: number | null, wide: boolean): Buffer =>
    box(
      'moov',
      mvhdBox,
      ...parts.map((p, i) =>
        box('trak', ...p.head, box('mdia', p.mdhd, p.hdlr, box('minf', ...p.minfHead, box('stbl', ...p.stbl, offsetsBox(plan.relOffsets[i]!, base, wide))))),
      ),
    );
  // The moov's size depends only on stco vs co64; co64 when the output passes 4 GiB.
  let wide = false;
  let m = moov(null, false);
  if (ftyp.length + m.length + mdatHeader + plan.payloadBytes > 0xffffffff) {
    wide = true;
    m = moov(null, true);
  }
  const base = ftyp.length + m.length + mdatHeader;
  m = moov(base, wide);
  const mh = Buffer.alloc(mdatHeader);
  if (mdatHeader === 8) mh.writeUInt32BE(8 + plan.payloadBytes, 0);
  else {
    mh.writeUInt32BE(1, 0);
    mh.writeBigUInt64BE(BigInt(16 + plan.payloadBytes), 8);
  }
  mh.write('mdat', 4, 'latin1');
  const bytes = Buffer.concat([ftyp, m, mh]);
  return { bytes, size: bytes.length + plan.payloadBytes, mdatPayloadStart: bytes.length };
}

/** The output as far as the header goes; reads past it see zeros (the mdat payload is not here). */
export class HeadSource implements ByteSource {
  constructor(
    private readonly head: Buffer,
    readonly size: number,
  ) {}
  async read(offset: number, length: number): Promise<Uint8Array> {
    const len = Math.max(0, Math.min(length, this.size - offset));
    const out = Buffer.alloc(len);
    if (offset < this.head.length) this.head.copy(out, 0, offset, Math.min(this.head.length, offset + len));
    return out;
  }
}

/** The mdat payload ranges of a tree. */
export function mdatRanges(tree: BoxTree): Ranges {
  return tree.boxes.filter((b) => b.type === 'mdat').map((b) => [b.offset + b.headerSize, b.offset + b.size] as [number, number]);
}

