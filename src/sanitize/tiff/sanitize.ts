/**
 * TIFF/DNG sanitizer (allow-list). Promises: rebuilds the file from scratch in the input's byte
 * order: IFD0 with only the tags on TIFF_KEEP, its SubIFDs likewise (DNG raw data lives there),
 * and the strip/tile bytes copied byte for byte. Exif IFD, GPS IFD, XMP (700), IPTC (33723),
 * Photoshop, MakerNote, Make/Model/Software/DateTime/Artist/Copyright, serials and any tag not on
 * the list are left behind, as are reduced-resolution IFDs after IFD0 (thumbnails). Never writes
 * a byte of a dropped tag's value, never re-encodes, refuses multi-page files and JPEG-in-TIFF
 * whose embedded streams carry APP/COM segments.
 */
import { createHash } from 'node:crypto';
import { KluisError } from '../../errors.js';
import type { RemovedItem } from '../types.js';
import { M, walkJpeg } from '../jpeg/walker.js';
import { judgeIcc } from '../jpeg/icc.js';
import { textLikeRuns } from '../jpeg/thermal.js';
import { TIFF_KEEP, TIFF_KEEP_TAGS, TiffReader, entry, readTiff, type Ifd, type TiffFile } from './ifd.js';

const TAG_NAMES: Record<number, string> = {
  269: 'DocumentName', 270: 'ImageDescription', 271: 'Make', 272: 'Model', 285: 'PageName', 297: 'PageNumber',
  305: 'Software', 306: 'DateTime', 315: 'Artist', 316: 'HostComputer', 700: 'XMP', 33432: 'Copyright',
  33723: 'IPTC', 34377: 'Photoshop', 34665: 'ExifIFD', 34675: 'ICC', 34853: 'GPS', 37500: 'MakerNote',
  50708: 'UniqueCameraModel', 50709: 'LocalizedCameraModel', 50735: 'CameraSerialNumber', 50740: 'DNGPrivateData',
  50781: 'RawDataUniqueID', 50827: 'OriginalRawFileName', 50936: 'ProfileName', 50942: 'ProfileCopyright',
};

function whatOf(tag: number): string {
  if (tag === 34853) return 'gps';
  if (tag === 50735 || tag === 50781) return 'serial';
  if (tag === 271 || tag === 272 || tag === 50708 || tag === 50709) return 'make-model';
  if (tag === 305) return 'firmware';
  if (tag === 700) return 'vendor-xmp';
  if (tag === 33723) return 'iptc';
  return 'other';
}

/** Kept tags whose standard type is BYTE/UNDEFINED; every other kept tag must hold numbers. */
const OPAQUE_OK = new Set([347, 33421, 33422, 50706, 50707, 50710, 51008, 51009, 51022]);

export interface TiffSanitizeOutput {
  bytes: Uint8Array;
  removed: RemovedItem[];
  kept: string[];
  /** SHA-256 over the image data (strips/tiles of every kept IFD, in order) and the kept decoding tags' values. */
  essenceSha256: string;
  isDng: boolean;
}

function refuse(message: string): KluisError {
  return new KluisError('E_SANITIZE_PARSE', `TIFF: ${message}`, {
    hint: 'kluis cannot account for this structure, so the file is withheld (fail closed)',
  });
}

interface DataBlocks {
  offsetsTag: number;
  countsTag: number;
  blocks: Array<{ offset: number; length: number }>;
}

function dataBlocks(r: TiffReader, ifd: Ifd): DataBlocks {
  const strips = entry(ifd, 273);
  const tiles = entry(ifd, 324);
  if (strips && tiles) throw refuse(`${ifd.path} has both strips and tiles`);
  const offE = strips ?? tiles;
  const cntE = strips ? entry(ifd, 279) : entry(ifd, 325);
  if (!offE || !cntE) throw refuse(`${ifd.path} has no image data offsets/byte counts`);
  const offs = r.uints(offE);
  const cnts = r.uints(cntE);
  if (offs.length !== cnts.length || offs.length === 0) throw refuse(`${ifd.path}: ${offs.length} offsets but ${cnts.length} byte counts`);
  const blocks = offs.map((offset, i) => {
    const length = cnts[i]!;
    if (offset + length > r.buf.length) throw refuse(`${ifd.path}: image data block ${i} lies outside the file`);
    return { offset, length };
  });
  return { offsetsTag: offE.tag, countsTag: cntE.tag, blocks };
}

/** Essence of a parsed TIFF: image data bytes and the kept decoding tags (not the offsets, which move). */
export function tiffEssence(buf: Uint8Array, t: TiffFile, ifds: Ifd[]): string {
  const r = new TiffReader(buf, t.le);
  const h = createHash('sha256');
  for (const ifd of ifds) {
    h.update(`${ifd.path}\n`);
    for (const e of ifd.entries) {
      if (!TIFF_KEEP_TAGS.has(e.tag) || e.tag === 273 || e.tag === 279 || e.tag === 324 || e.tag === 325 || e.tag === 330) continue;
      h.update(`${e.tag}:${e.type}:${e.count}:`);
      h.update(buf.subarray(e.valueOffset, e.valueOffset + e.size));
    }
    for (const b of dataBlocks(r, ifd).blocks) h.update(buf.subarray(b.offset, b.offset + b.length));
  }
  return h.digest('hex');
}

/** IFDs that are written: IFD0 and its SubIFD tree, depth first, parents before children. */
export function keptIfds(t: TiffFile): Ifd[] {
  const out: Ifd[] = [];
  const visit = (i: Ifd): void => {
    out.push(i);
    i.children.forEach(visit);
  };
  visit(t.chain[0]!);
  return out;
}

class Sink {
  chunks: Uint8Array[] = [];
  size = 0;
  constructor(readonly le: boolean) {}
  align(): void {
    if (this.size % 2) this.push(new Uint8Array(1));
  }
  push(b: Uint8Array): number {
    const at = this.size;
    this.chunks.push(b);
    this.size += b.length;
    return at;
  }
  u16(v: number): Uint8Array {
    return this.le ? Uint8Array.from([v & 0xff, v >> 8]) : Uint8Array.from([v >> 8, v & 0xff]);
  }
  u32(v: number): Uint8Array {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, this.le);
    return b;
  }
  bytes(): Uint8Array {
    const out = Buffer.allocUnsafe(this.size); // every byte is set below
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

export function sanitizeTiffBytes(buf: Uint8Array): TiffSanitizeOutput {
  const t = readTiff(buf);
  const r = new TiffReader(buf, t.le);
  const removed: RemovedItem[] = [];
  const kept: string[] = [];
  const ifd0 = t.chain[0]!;
  const isDng = entry(ifd0, 50706) !== undefined;

  for (const extra of t.chain.slice(1)) {
    const sft = entry(extra, 254);
    const reduced = sft !== undefined && (r.uints(sft)[0]! & 1) === 1;
    if (!reduced) throw new KluisError('E_SANITIZE_UNSUPPORTED', `TIFF: ${extra.path} is a second full-resolution page; multi-page TIFFs are not supported`, { hint: 'the file is withheld' });
    removed.push({ where: extra.path, what: 'thumbnail', bytes: dataBlocks(r, extra).blocks.reduce((a, b) => a + b.length, 0) });
  }

  const ifds = keptIfds(t);
  for (const ifd of ifds) {
    const comp = entry(ifd, 259);
    const c = comp ? r.uints(comp)[0] : 1;
    if (c === 6) throw new KluisError('E_SANITIZE_UNSUPPORTED', `TIFF: ${ifd.path} uses old-style JPEG compression (6)`, { hint: 'the file is withheld' });
    if (c === 7) {
      // Each strip/tile is a JPEG stream: it must carry nothing but decoding segments.
      for (const [i, b] of dataBlocks(r, ifd).blocks.entries()) {
        let layout;
        try {
          layout = walkJpeg(buf.subarray(b.offset, b.offset + b.length));
        } catch (err) {
          // JPEG-in-TIFF strips may legitimately lack SOI/EOI framing variants kluis does not model.
          // The walker's reason is named, so an admin can tell a damaged raw from an unknown variant.
          throw refuse(`${ifd.path}: embedded JPEG strip/tile ${i} (${b.length} bytes at byte ${b.offset}) could not be walked: ${(err as Error).message}`);
        }
        if (layout.trailing || layout.segments.some((s) => (s.marker >= 0xe0 && s.marker <= 0xef) || s.marker === M.COM)) {
          throw refuse(`${ifd.path}: an embedded JPEG strip/tile carries APP/COM segments or trailing bytes`);
        }
      }
    }
    // Kept bytes (image data, out-of-line values of kept tags) must not overlap any other structure:
    // otherwise "pixels" or a "colour table" could be a dropped XMP or serial read through a bent offset.
    const regions: Array<{ a: number; z: number; id: string }> = [];
    for (const other of t.ifds) {
      regions.push({ a: other.offset, z: other.offset + 2 + other.entries.length * 12 + 4, id: `${other.path}` });
      for (const e of other.entries) if (e.size > 4) regions.push({ a: e.valueOffset, z: e.valueOffset + e.size, id: `${other.path}/${e.tag}` });
    }
    const own: Array<{ a: number; z: number; id: string }> = dataBlocks(r, ifd).blocks.map((b, i) => ({ a: b.offset, z: b.offset + b.length, id: `${ifd.path}/data${i}` }));
    for (const e of ifd.entries) if (TIFF_KEEP_TAGS.has(e.tag) && e.size > 4) own.push({ a: e.valueOffset, z: e.valueOffset + e.size, id: `${ifd.path}/${e.tag}` });
    for (const k of own) {
      if (k.z <= k.a) continue;
      for (const g of [...regions, ...own]) {
        if (g.id !== k.id && g.z > g.a && k.a < g.z && g.a < k.z) throw refuse(`${k.id} overlaps ${g.id}`);
      }
    }
    for (const e of ifd.entries) {
      if (TIFF_KEEP_TAGS.has(e.tag)) {
        const opaque = e.type === 1 || e.type === 6 || e.type === 7;
        if (opaque && !OPAQUE_OK.has(e.tag)) throw refuse(`${ifd.path}: tag ${e.tag} has byte type ${e.type}, expected a number type`);
        if (opaque && textLikeRuns(buf.subarray(e.valueOffset, e.valueOffset + e.size)).length) throw refuse(`${ifd.path}: tag ${e.tag} holds text`);
      }
      // No kept tag is text: an ASCII value under a kept tag number is not what the standard writes.
      if (TIFF_KEEP_TAGS.has(e.tag) && e.type === 2) throw refuse(`${ifd.path}: tag ${e.tag} has an ASCII value`);
      if (TIFF_KEEP_TAGS.has(e.tag)) continue;
      if (e.tag === 34675 && e.size >= 132) {
        const v = judgeIcc(buf.subarray(e.valueOffset, e.valueOffset + e.size));
        if (v.ok) continue;
      }
      removed.push({ where: `${ifd.path}/${TAG_NAMES[e.tag] ?? `tag ${e.tag}`}`, what: whatOf(e.tag), bytes: e.size });
    }
  }

  const sink = new Sink(t.le);
  sink.push(t.le ? Uint8Array.from([0x49, 0x49, 42, 0]) : Uint8Array.from([0x4d, 0x4d, 0, 42]));
  const header0 = new Uint8Array(4);
  sink.push(header0); // IFD0 offset, patched below

  // Children are written before parents so a parent's SubIFDs entry can point at them.
  const written = new Map<Ifd, number>();
  const write = (ifd: Ifd): number => {
    const childOffsets = ifd.children.map(write);
    const db = dataBlocks(r, ifd);
    const newOffsets: number[] = [];
    for (const b of db.blocks) {
      sink.align();
      newOffsets.push(sink.push(buf.subarray(b.offset, b.offset + b.length)));
    }
    const keep = ifd.entries.filter(
      (e) => TIFF_KEEP_TAGS.has(e.tag) || (e.tag === 34675 && e.size >= 132 && judgeIcc(buf.subarray(e.valueOffset, e.valueOffset + e.size)).ok),
    );
    // Values: offsets and SubIFDs are rewritten as LONG; the rest are copied as they are.
    const values = keep.map((e) => {
      if (e.tag === db.offsetsTag) return { type: 4, count: newOffsets.length, data: concat(newOffsets.map((o) => sink.u32(o))) };
      if (e.tag === 330) return { type: 4, count: childOffsets.length, data: concat(childOffsets.map((o) => sink.u32(o))) };
      return { type: e.type, count: e.count, data: buf.subarray(e.valueOffset, e.valueOffset + e.size) };
    });
    const outOfLine = values.map((v) => {
      if (v.data.length <= 4) return -1;
      sink.align();
      return sink.push(v.data);
    });
    sink.align();
    const ifdBytes = new Uint8Array(2 + keep.length * 12 + 4);
    ifdBytes.set(sink.u16(keep.length), 0);
    keep.forEach((e, i) => {
      const v = values[i]!;
      const o = 2 + i * 12;
      ifdBytes.set(sink.u16(e.tag), o);
      ifdBytes.set(sink.u16(v.type), o + 2);
      ifdBytes.set(sink.u32(v.count), o + 4);
      if (outOfLine[i]! >= 0) ifdBytes.set(sink.u32(outOfLine[i]!), o + 8);
      else ifdBytes.set(v.data, o + 8);
    });
    const at = sink.push(ifdBytes);
    written.set(ifd, at);
    return at;
  };
  const ifd0At = write(ifd0);
  header0.set(sink.u32(ifd0At));
  for (const ifd of ifds) kept.push(`${ifd.path}: ${ifd.entries.filter((e) => TIFF_KEEP_TAGS.has(e.tag)).map((e) => TIFF_KEEP.get(e.tag)).join(', ')}`);

  return { bytes: sink.bytes(), removed, kept, essenceSha256: tiffEssence(buf, t, ifds), isDng };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = Buffer.allocUnsafe(parts.reduce((a, p) => a + p.length, 0)); // every byte is set below
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
