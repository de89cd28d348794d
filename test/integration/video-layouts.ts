/**
 * Test helper (not a test file): makes MP4 layouts the rewriter must handle, from a clip that
 * ffmpeg wrote (ftyp, mdat, moov at the end), with a box parser of its own (it does not use the
 * code under test):
 * - `relayout(input, output, opts)`: the same samples, with `gap` bytes inserted at the start of
 *   the mdat payload (a sparse hole, `marker` written at its start), chunk offsets moved by as
 *   much, as co64 when asked or needed, the mdat header 64-bit when it passes 4 GiB, and an extra
 *   top-level mdat after moov holding `trailingMdat` (bytes no sample references);
 * - `chunkTracks(file)`: which track each chunk belongs to, in file order (to see interleaving);
 * - `topLevel(file)`: the top-level box types.
 */
import { closeSync, fstatSync, openSync, promises as fsp, readFileSync, readSync } from 'node:fs';

interface PBox {
  type: string;
  start: number;
  size: number;
  header: number;
  children?: PBox[];
}

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'edts', 'dinf']);

function parse(buf: Buffer, start: number, end: number): PBox[] {
  const out: PBox[] = [];
  let pos = start;
  while (pos + 8 <= end) {
    let size = buf.readUInt32BE(pos);
    let header = 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(pos + 8));
      header = 16;
    } else if (size === 0) size = end - pos;
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const b: PBox = { type, start: pos, size, header };
    if (CONTAINERS.has(type)) b.children = parse(buf, pos + header, pos + size);
    out.push(b);
    pos += size;
  }
  return out;
}

function mk(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + body.length, 0);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, body]);
}

function offsetsOf(buf: Buffer, b: PBox): number[] {
  const p = b.start + b.header;
  const n = buf.readUInt32BE(p + 4);
  return Array.from({ length: n }, (_, i) => (b.type === 'co64' ? Number(buf.readBigUInt64BE(p + 8 + i * 8)) : buf.readUInt32BE(p + 8 + i * 4)));
}

function rebuild(buf: Buffer, b: PBox, shift: number, co64: boolean): Buffer {
  if (b.children) return mk(b.type, ...b.children.map((c) => rebuild(buf, c, shift, co64)));
  if (b.type === 'stco' || b.type === 'co64') {
    const offs = offsetsOf(buf, b).map((o) => o + shift);
    const wide = co64 || offs.some((o) => o > 0xffffffff);
    const body = Buffer.alloc(8 + offs.length * (wide ? 8 : 4));
    body.writeUInt32BE(offs.length, 4);
    offs.forEach((o, i) => (wide ? body.writeBigUInt64BE(BigInt(o), 8 + i * 8) : body.writeUInt32BE(o, 8 + i * 4)));
    return mk(wide ? 'co64' : 'stco', body);
  }
  return buf.subarray(b.start, b.start + b.size);
}

export interface RelayoutOptions {
  gap?: number;
  marker?: Buffer;
  co64?: boolean;
  trailingMdat?: Buffer;
}

export async function relayout(input: string, output: string, opts: RelayoutOptions = {}): Promise<void> {
  const buf = readFileSync(input);
  const top = parse(buf, 0, buf.length);
  const mdat = top.find((b) => b.type === 'mdat');
  const moov = top.find((b) => b.type === 'moov');
  if (!mdat || !moov || moov.start < mdat.start) throw new Error('relayout wants ffmpeg\'s layout: mdat, then moov');
  const gap = opts.gap ?? 0;
  const payload = mdat.size - mdat.header;
  const wideMdat = opts.co64 === true || gap + payload + 8 > 0xffffffff;
  const header = Buffer.alloc(wideMdat ? 16 : 8);
  if (wideMdat) {
    header.writeUInt32BE(1, 0);
    header.writeBigUInt64BE(BigInt(16 + gap + payload), 8);
  } else header.writeUInt32BE(8 + gap + payload, 0);
  header.write('mdat', 4, 'latin1');
  const before = buf.subarray(0, mdat.start);
  const shift = header.length - mdat.header + gap;
  const newMoov = rebuild(buf, moov, shift, opts.co64 === true);
  const fh = await fsp.open(output, 'w');
  try {
    let at = 0;
    const put = async (b: Buffer, where = at): Promise<void> => {
      await fh.write(b, 0, b.length, where);
      at = where + b.length;
    };
    await put(before);
    await put(header);
    const gapStart = at;
    if (opts.marker) await put(opts.marker);
    await put(buf.subarray(mdat.start + mdat.header, mdat.start + mdat.size), gapStart + gap);
    await put(newMoov);
    if (opts.trailingMdat) await put(mk('mdat', opts.trailingMdat));
  } finally {
    await fh.close();
  }
}

/** The top-level boxes of a file (read by offset, so any size) and its moov, parsed. */
function headerOf(file: string): { top: Array<{ type: string; size: number }>; buf: Buffer; moov: PBox } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const top: Array<{ type: string; size: number }> = [];
    let moov: { start: number; size: number } | undefined;
    for (let pos = 0; pos + 8 <= size; ) {
      const h = Buffer.alloc(16);
      readSync(fd, h, 0, 16, pos);
      let n = h.readUInt32BE(0);
      if (n === 1) n = Number(h.readBigUInt64BE(8));
      else if (n === 0) n = size - pos;
      const type = h.toString('latin1', 4, 8);
      top.push({ type, size: n });
      if (type === 'moov') moov = { start: pos, size: n };
      pos += n;
    }
    const buf = Buffer.alloc(moov!.size);
    readSync(fd, buf, 0, buf.length, moov!.start);
    return { top, buf, moov: parse(buf, 0, buf.length)[0]! };
  } finally {
    closeSync(fd);
  }
}

/** Track id (1-based trak order) of every chunk, sorted by file offset. */
export function chunkTracks(file: string): number[] {
  const { buf, moov } = headerOf(file);
  const all: Array<[number, number]> = [];
  moov.children!.filter((b) => b.type === 'trak').forEach((trak, i) => {
    const stbl = trak.children!.find((b) => b.type === 'mdia')!.children!.find((b) => b.type === 'minf')!.children!.find((b) => b.type === 'stbl')!;
    const off = stbl.children!.find((b) => b.type === 'stco' || b.type === 'co64')!;
    for (const o of offsetsOf(buf, off)) all.push([o, i + 1]);
  });
  return all.sort((a, b) => a[0] - b[0]).map(([, t]) => t);
}

/** The chunk offset box type of every track, in trak order. */
export function offsetBoxes(file: string): string[] {
  const { moov } = headerOf(file);
  return moov.children!.filter((b) => b.type === 'trak').map((trak) => {
    const stbl = trak.children!.find((b) => b.type === 'mdia')!.children!.find((b) => b.type === 'minf')!.children!.find((b) => b.type === 'stbl')!;
    return stbl.children!.find((b) => b.type === 'stco' || b.type === 'co64')!.type;
  });
}

export function topLevel(file: string): string[] {
  return headerOf(file).top.map((b) => b.type);
}

/**
 * A large sparse file from a short video-only clip without B-frames (ffmpeg's layout: mdat, then
 * moov): the clip's samples, then `count` more video samples of `size` zero bytes each (never
 * written: a sparse hole), one per chunk, listed in stsz/stts/stsc and a co64 that reaches past
 * 4 GiB; the mdat header is 64-bit. Only the first samples decode, which is all the sanitizer's
 * own checks decode.
 */
export async function appendZeroSamples(input: string, output: string, count: number, size: number): Promise<number> {
  const buf = readFileSync(input);
  const top = parse(buf, 0, buf.length);
  const mdat = top.find((b) => b.type === 'mdat')!;
  const moov = top.find((b) => b.type === 'moov')!;
  const traks = moov.children!.filter((b) => b.type === 'trak');
  if (traks.length !== 1 || moov.start < mdat.start) throw new Error('appendZeroSamples wants one track, mdat before moov');
  const payload = mdat.size - mdat.header;
  const shift = 16 - mdat.header;
  const dataStart = mdat.start + 16;
  const extraStart = dataStart + payload;
  const table = (b: PBox): Buffer => buf.subarray(b.start + b.header, b.start + b.size);
  const edit = (b: PBox): Buffer => {
    if (b.children) return mk(b.type, ...b.children.map(edit));
    const p = table(b);
    if (b.type === 'stsz') {
      const n = p.readUInt32BE(8);
      if (p.readUInt32BE(4) !== 0) throw new Error('fixed-size stsz');
      const extra = Buffer.alloc(count * 4);
      for (let i = 0; i < count; i++) extra.writeUInt32BE(size, i * 4);
      const head = Buffer.from(p.subarray(0, 12));
      head.writeUInt32BE(n + count, 8);
      return mk('stsz', head, p.subarray(12), extra);
    }
    if (b.type === 'stts') {
      const n = p.readUInt32BE(4);
      const delta = p.readUInt32BE(8 + (n - 1) * 8 + 4);
      const head = Buffer.from(p.subarray(0, 8));
      head.writeUInt32BE(n + 1, 4);
      const e = Buffer.alloc(8);
      e.writeUInt32BE(count, 0);
      e.writeUInt32BE(delta, 4);
      return mk('stts', head, p.subarray(8), e);
    }
    if (b.type === 'stsc') {
      const n = p.readUInt32BE(4);
      const chunks = offsetsOf(buf, findOffsets(moov)).length;
      const head = Buffer.from(p.subarray(0, 8));
      head.writeUInt32BE(n + 1, 4);
      const e = Buffer.alloc(12);
      e.writeUInt32BE(chunks + 1, 0);
      e.writeUInt32BE(1, 4);
      e.writeUInt32BE(1, 8);
      return mk('stsc', head, p.subarray(8), e);
    }
    if (b.type === 'stco' || b.type === 'co64') {
      const offs = offsetsOf(buf, b).map((o) => o + shift);
      for (let i = 0; i < count; i++) offs.push(extraStart + i * size);
      const body = Buffer.alloc(8 + offs.length * 8);
      body.writeUInt32BE(offs.length, 4);
      offs.forEach((o, i) => body.writeBigUInt64BE(BigInt(o), 8 + i * 8));
      return mk('co64', body);
    }
    if (b.type === 'ctts' || b.type === 'sdtp') throw new Error(`${b.type}: make the clip without B-frames`);
    return buf.subarray(b.start, b.start + b.size);
  };
  const newMoov = edit(moov);
  const header = Buffer.alloc(16);
  header.writeUInt32BE(1, 0);
  header.write('mdat', 4, 'latin1');
  header.writeBigUInt64BE(BigInt(16 + payload + count * size), 8);
  const fh = await fsp.open(output, 'w');
  try {
    await fh.write(buf, 0, mdat.start, 0);
    await fh.write(header, 0, 16, mdat.start);
    await fh.write(buf, mdat.start + mdat.header, payload, dataStart);
    await fh.write(newMoov, 0, newMoov.length, extraStart + count * size);
  } finally {
    await fh.close();
  }
  return extraStart + count * size + newMoov.length;
}

function findOffsets(moov: PBox): PBox {
  const stbl = moov.children!.find((b) => b.type === 'trak')!.children!.find((b) => b.type === 'mdia')!.children!
    .find((b) => b.type === 'minf')!.children!.find((b) => b.type === 'stbl')!;
  return stbl.children!.find((b) => b.type === 'stco' || b.type === 'co64')!;
}

/** From the first bytes of a file (ftyp, moov, mdat header): the chunk offset box types and the mdat header length. */
export function headFacts(head: Buffer): { offsets: string[]; mdatHeader: number; mdatSize: number } {
  let pos = 0;
  let offsets: string[] = [];
  while (pos + 16 <= head.length) {
    let n = head.readUInt32BE(pos);
    const type = head.toString('latin1', pos + 4, pos + 8);
    let header = 8;
    if (n === 1) {
      n = Number(head.readBigUInt64BE(pos + 8));
      header = 16;
    }
    if (type === 'moov') {
      const moov = parse(head, pos, pos + n)[0]!;
      offsets = moov.children!.filter((b) => b.type === 'trak').map((trak) => {
        const stbl = trak.children!.find((b) => b.type === 'mdia')!.children!.find((b) => b.type === 'minf')!.children!.find((b) => b.type === 'stbl')!;
        return stbl.children!.find((b) => b.type === 'stco' || b.type === 'co64')!.type;
      });
    }
    if (type === 'mdat') return { offsets, mdatHeader: header, mdatSize: n };
    pos += n;
  }
  throw new Error('no mdat header in the head');
}
