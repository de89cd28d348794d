/**
 * The canonical form of the boxes a sanitized MP4/MOV keeps from its input. The rewriter writes
 * exactly these forms, and the essence (./proof.ts) hashes exactly these forms on both sides, so
 * `normal(normal(x)) == normal(x)` is what makes before == after possible at all.
 *
 * What a canonical form leaves out is only what no decoder reads:
 * - creation and modification times of mvhd, tkhd and mdhd (set to 0);
 * - bytes after a table's last entry (a table is exactly as long as its entry count says);
 * - in a sample description: the vendor code, the video compressor name (zeroed), and child
 *   boxes that are not on the allow-list of ./rules.ts (removed; the inventory lists them);
 * - sample-group boxes of grouping types not on that allow-list.
 * It never changes an entry of a timing, sync, size or chunk table. Too short a box is
 * KluisError E_SANITIZE_SAMPLE_TABLE; nothing is guessed.
 */
import { readPayload, showType, type Box, type ByteSource } from './boxes.js';
import { AUDIO_CHILDREN, GROUPING_TYPES, KEPT_AUDIO, KEPT_VISUAL, MAX_LEAF, VISUAL_CHILDREN, WAVE_CHILDREN, type TrackKind } from './rules.js';
import { MAX_TABLE, tableError, u32 } from './tables.js';

/** A box with a 32-bit header (every box kluis writes except a large mdat fits one). */
export function box(type: string, ...parts: Uint8Array[]): Buffer {
  let len = 8;
  for (const p of parts) len += p.length;
  if (len > 0xffffffff) throw tableError(`a ${showType(type)} box would exceed 4 GiB`, type);
  const out = Buffer.allocUnsafe(len);
  out.writeUInt32BE(len, 0);
  out.write(type, 4, 'latin1');
  let at = 8;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Payload lengths of the header boxes, by version. */
const TIMED_LENGTH: Record<string, [number, number]> = { mvhd: [100, 112], tkhd: [84, 96], mdhd: [24, 36] };

/** mvhd/tkhd/mdhd payload with the creation and modification times zeroed, at its standard length. */
export async function normalTimes(src: ByteSource, b: Box): Promise<Buffer> {
  const p = Buffer.from(await readPayload(src, b, 4096));
  const lengths = TIMED_LENGTH[b.type];
  if (!lengths) throw tableError(`${showType(b.type)} carries no times`, b.path);
  const v1 = p[0] === 1;
  if (!v1 && p[0] !== 0) throw tableError(`${showType(b.type)} version ${p[0]} is unknown`, b.path);
  const len = v1 ? lengths[1] : lengths[0];
  if (p.length < len) throw tableError(`${showType(b.type)} is ${p.length} bytes, shorter than ${len}`, b.path);
  const out = Buffer.from(p.subarray(0, len));
  out.fill(0, 4, v1 ? 20 : 12);
  return out;
}

/** Exact byte length a table payload must have, from its own header; null when not a fixed-layout table. */
function exactLength(type: string, p: Uint8Array, sampleCount: number): number | null {
  const n = u32(p, 4);
  switch (type) {
    case 'stts':
    case 'ctts':
      return 8 + n * 8;
    case 'stss':
    case 'stps':
      return 8 + n * 4;
    case 'stsc':
      return 8 + n * 12;
    case 'elst':
      return 8 + n * (p[0] === 1 ? 20 : 12);
    case 'stsz':
      return 12 + (n === 0 ? u32(p, 8) * 4 : 0);
    case 'stz2':
      return 12 + Math.ceil((u32(p, 8) * (p[7] ?? 0)) / 8);
    case 'cslg':
      return p[0] === 1 ? 44 : 24;
    case 'sdtp':
      return Math.min(p.length, 4 + sampleCount);
    default:
      return null;
  }
}

/** The table's payload cut to the length its entry count gives (stz2's reserved bytes zeroed). */
export async function normalTable(src: ByteSource, b: Box, sampleCount: number): Promise<Buffer> {
  const p = await readPayload(src, b, MAX_TABLE);
  if (p.length < 8) throw tableError(`${showType(b.type)} is too short`, b.path);
  const len = exactLength(b.type, p, sampleCount);
  if (len === null) throw tableError(`${showType(b.type)} is not a table kluis writes`, b.path);
  if (p.length < len) throw tableError(`${showType(b.type)} is ${p.length} bytes, shorter than its entry count needs (${len})`, b.path);
  const out = Buffer.from(p.subarray(0, len));
  if (b.type === 'stz2') out.fill(0, 4, 7);
  return out;
}

/** Whether a sgpd/sbgp box is of a grouping type the allow-list keeps. */
export async function keptGrouping(src: ByteSource, b: Box): Promise<boolean> {
  const p = await readPayload(src, b, MAX_LEAF);
  return p.length >= 8 && GROUPING_TYPES.has(Buffer.from(p.subarray(4, 8)).toString('latin1'));
}

async function wholeBox(src: ByteSource, b: Box): Promise<Buffer> {
  return box(b.type, await readPayload(src, b, MAX_LEAF));
}

/** One sample entry: fixed part with vendor (and compressor name) zeroed, allowed children only. */
async function normalEntry(src: ByteSource, e: Box, kind: TrackKind): Promise<Buffer> {
  const allowed = kind === 'video' ? KEPT_VISUAL : KEPT_AUDIO;
  if (!allowed.has(e.type) || !e.children) {
    throw tableError(`sample entry ${showType(e.type)} is not a ${kind} entry kluis keeps`, e.path);
  }
  const fixedStart = e.offset + e.headerSize;
  const fixed = Buffer.from(await src.read(fixedStart, e.payloadOffset - fixedStart));
  if (fixed.length !== e.payloadOffset - fixedStart || fixed.length < 28) throw tableError('sample entry is too short', e.path);
  fixed.fill(0, 12, 16); // vendor
  if (kind === 'video') {
    if (fixed.length < 78) throw tableError('video sample entry is too short', e.path);
    fixed.fill(0, 42, 74); // compressor name
  }
  const kids: Buffer[] = [];
  const ok = kind === 'video' ? VISUAL_CHILDREN : AUDIO_CHILDREN;
  for (const c of e.children) {
    if (!ok.has(c.type)) continue;
    if (c.type === 'wave') {
      const inner: Buffer[] = [];
      for (const w of c.children ?? []) if (WAVE_CHILDREN.has(w.type)) inner.push(await wholeBox(src, w));
      kids.push(box('wave', ...inner));
    } else {
      kids.push(await wholeBox(src, c));
    }
  }
  return box(e.type, fixed, ...kids);
}

/** The stsd payload as kept: version/flags, entry count, normal entries. */
export async function normalStsd(src: ByteSource, stsd: Box, kind: TrackKind): Promise<Buffer> {
  const head = Buffer.from(await src.read(stsd.offset + stsd.headerSize, 8));
  const entries = stsd.children ?? [];
  if (head.length < 8 || u32(head, 4) !== entries.length) {
    throw tableError(`stsd says ${u32(head, 4)} entries but holds ${entries.length}`, stsd.path);
  }
  const parts: Buffer[] = [head];
  for (const e of entries) parts.push(await normalEntry(src, e, kind));
  return Buffer.concat(parts);
}
