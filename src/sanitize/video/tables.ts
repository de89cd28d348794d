/**
 * One track of an MP4/MOV as its own index describes it: the boxes a decoder needs (`trackBoxes`)
 * and its sample tables expanded into chunks (`readSampleTables`): where each chunk lies, how many
 * bytes and samples it holds, which sample description it uses, and every sample's size.
 *
 * It promises: the tables agree with each other (stsc covers exactly the chunks of stco/co64 and
 * exactly the samples of stsz/stz2, every description index names an entry of stsd) or it throws
 * KluisError E_SANITIZE_SAMPLE_TABLE naming the box; a table is read only when its entry count
 * fits its size, so a lying count never allocates. Memory is about 28 bytes per chunk plus 4 per
 * sample of a variable-size table; payloads are read by offset, never the media data.
 * It decides nothing about which tracks are kept or how they are written.
 */
import { KluisError } from '../../errors.js';
import { fourcc, readPayload, showType, type Box, type ByteSource } from './boxes.js';

/** The largest sample table kluis reads (a 10-hour 60 fps track's stsz is about 9 MB). */
export const MAX_TABLE = 64 << 20;

export function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) >>> 0) + ((b[at + 1] ?? 0) << 16) + ((b[at + 2] ?? 0) << 8) + (b[at + 3] ?? 0);
}

export function tableError(message: string, path: string): KluisError {
  return new KluisError('E_SANITIZE_SAMPLE_TABLE', `${message} (at ${path})`, {
    hint: "the track's index is damaged or inconsistent; kluis does not store a file it cannot fully read",
    details: { path },
  });
}

/** The boxes of one track that a decoder reads; each exactly once where it must be. */
export interface TrackBoxes {
  trak: Box;
  tkhd: Box;
  /** The edit list, when the track has one (`edts` with exactly one `elst`). */
  elst?: Box;
  mdia: Box;
  mdhd: Box;
  hdlr: Box;
  minf: Box;
  /** `vmhd` or `smhd`, when present. */
  mediaHeader?: Box;
  /** QuickTime's data handler `minf/hdlr`, when present. */
  dataHandler?: Box;
  dref?: Box;
  stbl: Box;
  stsd: Box;
  /** stbl children by type, in file order (the first of each; duplicates of a table are refused). */
  tables: Map<string, Box>;
  /** sgpd/sbgp boxes in file order. */
  groupings: Box[];
}

function only(parent: Box, type: string, required: true): Box;
function only(parent: Box, type: string, required: false): Box | undefined;
function only(parent: Box, type: string, required: boolean): Box | undefined {
  const found = (parent.children ?? []).filter((b) => b.type === type);
  if (found.length > 1) throw tableError(`more than one ${showType(type)} in ${showType(parent.type)}`, parent.path);
  if (required && found.length === 0) throw tableError(`no ${showType(type)} in ${showType(parent.type)}`, parent.path);
  return found[0];
}

/** Single sample tables of stbl (sgpd/sbgp may repeat, one per grouping type). */
const SINGLE_TABLES = ['stsd', 'stts', 'ctts', 'cslg', 'stss', 'stps', 'sdtp', 'stsc', 'stsz', 'stz2', 'stco', 'co64'];

/** The decoder's boxes of `trak`; throws E_SANITIZE_SAMPLE_TABLE when one is missing or doubled. */
export function trackBoxes(trak: Box): TrackBoxes {
  const tkhd = only(trak, 'tkhd', true);
  const edts = only(trak, 'edts', false);
  const elst = edts ? only(edts, 'elst', false) : undefined;
  const mdia = only(trak, 'mdia', true);
  const mdhd = only(mdia, 'mdhd', true);
  const hdlr = only(mdia, 'hdlr', true);
  const minf = only(mdia, 'minf', true);
  const vmhd = only(minf, 'vmhd', false);
  const smhd = only(minf, 'smhd', false);
  const dataHandler = only(minf, 'hdlr', false);
  const dinf = only(minf, 'dinf', false);
  const dref = dinf ? only(dinf, 'dref', false) : undefined;
  const stbl = only(minf, 'stbl', true);
  const tables = new Map<string, Box>();
  for (const t of SINGLE_TABLES) {
    const b = only(stbl, t, false);
    if (b) tables.set(t, b);
  }
  const stsd = tables.get('stsd');
  if (!stsd) throw tableError('no stsd in stbl', stbl.path);
  if (tables.has('stsz') === tables.has('stz2')) throw tableError('a track needs exactly one of stsz and stz2', stbl.path);
  if (tables.has('stco') === tables.has('co64')) throw tableError('a track needs exactly one of stco and co64', stbl.path);
  if (!tables.has('stsc')) throw tableError('no stsc in stbl', stbl.path);
  if (!tables.has('stts')) throw tableError('no stts in stbl', stbl.path);
  const groupings = (stbl.children ?? []).filter((b) => b.type === 'sgpd' || b.type === 'sbgp');
  const mediaHeader = vmhd ?? smhd;
  return {
    trak, tkhd, mdia, mdhd, hdlr, minf, stbl, stsd, tables, groupings,
    ...(elst ? { elst } : {}),
    ...(mediaHeader ? { mediaHeader } : {}),
    ...(dataHandler ? { dataHandler } : {}),
    ...(dref ? { dref } : {}),
  };
}

/** A track's id (tkhd track_ID) and handler type (mdia/hdlr), read without judging the rest. */
export async function trackIdentity(src: ByteSource, trak: Box): Promise<{ id: number; handler: string }> {
  const tkhd = trak.children?.find((b) => b.type === 'tkhd');
  const hdlr = trak.children?.find((b) => b.type === 'mdia')?.children?.find((b) => b.type === 'hdlr');
  let id = -1;
  if (tkhd) {
    const p = await readPayload(src, tkhd, 4096);
    if (p.length >= 24) id = p[0] === 1 ? u32(p, 20) : u32(p, 12);
  }
  let handler = '????';
  if (hdlr) {
    const p = await readPayload(src, hdlr, 4096);
    if (p.length >= 12) handler = fourcc(p, 8);
  }
  return { id, handler };
}

export interface SampleTables {
  sampleCount: number;
  /** The size of every sample when stsz gives one size for all, else 0. */
  fixedSize: number;
  /** Every sample's size when they vary (fixedSize 0). */
  sizes: Uint32Array | null;
  /** Per chunk, in chunk order: file offset, samples, first sample (0-based), bytes, description index (1-based). */
  chunkOffsets: Float64Array;
  chunkSamples: Uint32Array;
  chunkFirst: Float64Array;
  chunkBytes: Float64Array;
  chunkSdi: Uint32Array;
  totalBytes: number;
  /** Number of entries in stsd. */
  descriptions: number;
  /** 0-based index of the first sync sample (0 when there is no stss: every sample is one). */
  firstSync: number;
  /** Whether the chunk offsets came from co64. */
  co64: boolean;
}

async function table(src: ByteSource, box: Box): Promise<Uint8Array> {
  const p = await readPayload(src, box, MAX_TABLE);
  if (p.length < 8) throw tableError(`${showType(box.type)} is too short`, box.path);
  return p;
}

function dv(p: Uint8Array): DataView {
  return new DataView(p.buffer, p.byteOffset, p.byteLength);
}

/** Sizes from stsz or stz2. */
async function readSizes(src: ByteSource, tb: TrackBoxes): Promise<{ count: number; fixed: number; sizes: Uint32Array | null }> {
  const stsz = tb.tables.get('stsz');
  if (stsz) {
    const p = await table(src, stsz);
    if (p.length < 12) throw tableError('stsz is too short', stsz.path);
    const fixed = u32(p, 4);
    const count = u32(p, 8);
    if (fixed !== 0) return { count, fixed, sizes: null };
    if (p.length < 12 + count * 4) throw tableError(`stsz lists ${count} sizes but holds ${Math.floor((p.length - 12) / 4)}`, stsz.path);
    const v = dv(p);
    const sizes = new Uint32Array(count);
    for (let i = 0; i < count; i++) sizes[i] = v.getUint32(12 + i * 4);
    return { count, fixed: 0, sizes };
  }
  const stz2 = tb.tables.get('stz2')!;
  const p = await table(src, stz2);
  if (p.length < 12) throw tableError('stz2 is too short', stz2.path);
  const field = p[7] ?? 0;
  const count = u32(p, 8);
  if (field !== 4 && field !== 8 && field !== 16) throw tableError(`stz2 field size ${field} is not 4, 8 or 16`, stz2.path);
  if (p.length < 12 + Math.ceil((count * field) / 8)) throw tableError(`stz2 lists ${count} sizes but is too short for them`, stz2.path);
  const sizes = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    if (field === 16) sizes[i] = ((p[12 + i * 2] ?? 0) << 8) | (p[13 + i * 2] ?? 0);
    else if (field === 8) sizes[i] = p[12 + i] ?? 0;
    else {
      const byte = p[12 + (i >> 1)] ?? 0;
      sizes[i] = i % 2 === 0 ? byte >> 4 : byte & 0x0f;
    }
  }
  return { count, fixed: 0, sizes };
}

async function readOffsets(src: ByteSource, tb: TrackBoxes): Promise<{ offsets: Float64Array; co64: boolean }> {
  const box = tb.tables.get('stco') ?? tb.tables.get('co64')!;
  const co64 = box.type === 'co64';
  const p = await table(src, box);
  const n = u32(p, 4);
  const width = co64 ? 8 : 4;
  if (p.length < 8 + n * width) throw tableError(`${box.type} lists ${n} chunks but holds ${Math.floor((p.length - 8) / width)}`, box.path);
  const v = dv(p);
  const offsets = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (co64) {
      const hi = v.getUint32(8 + i * 8);
      if (hi > 0x1fffff) throw tableError('a 64-bit chunk offset is impossibly large', box.path);
      offsets[i] = hi * 0x1_0000_0000 + v.getUint32(12 + i * 8);
    } else {
      offsets[i] = v.getUint32(8 + i * 4);
    }
  }
  return { offsets, co64 };
}

/**
 * The track's tables, expanded per chunk and checked against each other. Throws
 * E_SANITIZE_SAMPLE_TABLE on any disagreement.
 */
export async function readSampleTables(src: ByteSource, tb: TrackBoxes): Promise<SampleTables> {
  const stsdHead = await src.read(tb.stsd.offset + tb.stsd.headerSize, 8);
  const descriptions = u32(stsdHead, 4);
  if (descriptions !== (tb.stsd.children ?? []).length) {
    throw tableError(`stsd says ${descriptions} entries but holds ${(tb.stsd.children ?? []).length}`, tb.stsd.path);
  }
  const { count: sampleCount, fixed, sizes } = await readSizes(src, tb);
  const { offsets, co64 } = await readOffsets(src, tb);
  const chunkCount = offsets.length;

  const stsc = tb.tables.get('stsc')!;
  const sp = await table(src, stsc);
  const entries = u32(sp, 4);
  if (sp.length < 8 + entries * 12) throw tableError(`stsc lists ${entries} entries but is too short for them`, stsc.path);
  const chunkSamples = new Uint32Array(chunkCount);
  const chunkSdi = new Uint32Array(chunkCount);
  if (chunkCount > 0 && entries === 0) throw tableError('stsc is empty but the track has chunks', stsc.path);
  for (let e = 0; e < entries; e++) {
    const first = u32(sp, 8 + e * 12);
    const per = u32(sp, 12 + e * 12);
    const sdi = u32(sp, 16 + e * 12);
    const next = e + 1 < entries ? u32(sp, 8 + (e + 1) * 12) : chunkCount + 1;
    if (e === 0 && first !== 1) throw tableError(`stsc starts at chunk ${first}, not 1`, stsc.path);
    if (next <= first) throw tableError('stsc chunk numbers do not increase', stsc.path);
    if (first > chunkCount) throw tableError(`stsc names chunk ${first} of ${chunkCount}`, stsc.path);
    if (per === 0) throw tableError('stsc gives a chunk no samples', stsc.path);
    if (sdi < 1 || sdi > descriptions) throw tableError(`stsc names sample description ${sdi} of ${descriptions}`, stsc.path);
    const last = Math.min(next, chunkCount + 1);
    for (let c = first; c < last; c++) {
      chunkSamples[c - 1] = per;
      chunkSdi[c - 1] = sdi;
    }
  }

  const chunkFirst = new Float64Array(chunkCount);
  const chunkBytes = new Float64Array(chunkCount);
  let sample = 0;
  let totalBytes = 0;
  for (let c = 0; c < chunkCount; c++) {
    const n = chunkSamples[c]!;
    chunkFirst[c] = sample;
    if (sample + n > sampleCount) {
      throw tableError(`the chunks hold more samples than the ${sampleCount} the size table lists`, stsc.path);
    }
    let bytes = 0;
    if (sizes) for (let i = sample; i < sample + n; i++) bytes += sizes[i]!;
    else bytes = n * fixed;
    chunkBytes[c] = bytes;
    totalBytes += bytes;
    sample += n;
  }
  if (sample !== sampleCount) {
    throw tableError(`the chunks hold ${sample} samples but the size table lists ${sampleCount}`, stsc.path);
  }

  let firstSync = 0;
  const stss = tb.tables.get('stss');
  if (stss) {
    const p = await table(src, stss);
    const n = u32(p, 4);
    if (n > 0 && p.length >= 12) {
      const s = u32(p, 8);
      if (s < 1 || s > sampleCount) throw tableError(`stss names sample ${s} of ${sampleCount}`, stss.path);
      firstSync = s - 1;
    }
  }
  return {
    sampleCount, fixedSize: fixed, sizes, chunkOffsets: offsets, chunkSamples, chunkFirst, chunkBytes, chunkSdi,
    totalBytes, descriptions, firstSync, co64,
  };
}

/** The chunk that holds sample `index` (0-based), by binary search over chunkFirst. */
export function chunkOfSample(t: SampleTables, index: number): number {
  let lo = 0;
  let hi = t.chunkFirst.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (t.chunkFirst[mid]! <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
