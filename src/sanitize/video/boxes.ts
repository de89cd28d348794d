/**
 * An ISO-BMFF / QuickTime box walker. It reads box headers by offset from a ByteSource (a file
 * handle or a buffer) and never reads a box's payload unless asked (so a 4 GB `mdat` costs one
 * 16-byte read). It descends only into boxes whose layout it knows (containers, `meta`, `stsd`,
 * `dref`, sample entries); every other box is a leaf.
 *
 * It promises: every box it returns lies inside its parent and inside the file; it terminates on
 * any input (bounded depth, bounded box count, every step moves forward); anything malformed
 * (a size smaller than its header, a box running past its parent or past the end of the file,
 * junk between boxes) is a KluisError E_SANITIZE_BOX_* naming the box path. It never guesses and
 * never skips over what it does not understand: callers decide what a leaf may be.
 */
import { promises as fsp } from 'node:fs';
import { KluisError, type ErrorCode } from '../../errors.js';

/** Random access to bytes: a file or a buffer. */
export interface ByteSource {
  readonly size: number;
  /** Reads up to `length` bytes at `offset`; returns fewer only at the end of the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface Box {
  /** The four-character type, latin1-decoded (so 0xA9 "xyz" is "©xyz"). */
  type: string;
  /** Slash path from the top, with a 1-based index where siblings share a type: "moov/trak[2]/mdia". */
  path: string;
  offset: number;
  /** Whole size including the header. */
  size: number;
  /** Bytes before the payload: 8, 16 (64-bit size) or +16 for `uuid`. */
  headerSize: number;
  /** Offset where this box's children start (containers) or its payload starts (leaves). */
  payloadOffset: number;
  /** For `uuid` boxes, the 16-byte extended type as lowercase hex with dashes. */
  uuid?: string;
  /** Children when this walker knows the layout and descended; undefined for leaves. */
  children?: Box[];
  /** Bytes after the last child that did not form a box (QuickTime allows a 4-byte zero terminator). */
  trailing?: { offset: number; length: number };
}

export interface BoxTree {
  size: number;
  boxes: Box[];
}

export interface WalkOptions {
  maxDepth?: number;
  maxBoxes?: number;
}

/** Boxes whose payload is nothing but child boxes. */
const CONTAINERS = new Set([
  'moov', 'trak', 'mdia', 'minf', 'dinf', 'stbl', 'edts', 'udta', 'tref', 'gmhd', 'mvex', 'moof',
  'traf', 'mfra', 'wave', 'sinf', 'schi', 'ilst', 'tapt', 'clip', 'matt', 'imap', 'rmra', 'rmda',
]);

/** Sample entries whose fixed part is the 78-byte VisualSampleEntry, followed by child boxes. */
export const VISUAL_ENTRIES = new Set([
  'avc1', 'avc2', 'avc3', 'avc4', 'hvc1', 'hev1', 'dvh1', 'dvhe', 'mp4v', 'av01', 'vp08', 'vp09',
  'apch', 'apcn', 'apcs', 'apco', 'ap4h', 'ap4x', 'jpeg', 'mjpa', 'mjpb', 'encv', 's263', 'h263',
]);

/** Sample entries whose fixed part is an AudioSampleEntry (QuickTime versions 0, 1, 2). */
export const AUDIO_ENTRIES = new Set([
  'mp4a', 'lpcm', 'sowt', 'twos', 'in24', 'in32', 'fl32', 'fl64', 'raw ', 'ulaw', 'alaw', 'ima4',
  'ac-3', 'ec-3', 'ac-4', 'Opus', 'alac', 'fLaC', '.mp3', 'samr', 'sawb', 'enca', 'ipcm', 'fpcm',
]);

const DEFAULT_MAX_DEPTH = 16;
const DEFAULT_MAX_BOXES = 500_000;

export function fourcc(bytes: Uint8Array, at: number): string {
  let s = '';
  for (let i = 0; i < 4; i++) s += String.fromCharCode(bytes[at + i] ?? 0);
  return s;
}

function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) >>> 0) + ((b[at + 1] ?? 0) << 16) + ((b[at + 2] ?? 0) << 8) + (b[at + 3] ?? 0);
}

function u16(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) + (b[at + 1] ?? 0);
}

/** A printable rendering of a box type for messages ("\0\0\0\0" becomes "0x00000000"). */
export function showType(type: string): string {
  return /^[\x20-\x7e\xa9]{4}$/.test(type)
    ? type
    : `0x${[...type].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('')}`;
}

function boxError(code: ErrorCode, message: string, path: string): KluisError {
  return new KluisError(code, `${message} (at ${path})`, {
    hint: 'the file is damaged or not a plain MP4/MOV; kluis does not store a file it cannot fully read',
    details: { path },
  });
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(private readonly buf: Uint8Array) {
    this.size = buf.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.buf.subarray(offset, Math.min(this.buf.length, offset + length));
  }
}

/** A file opened read-only; close it when done. */
export class FileSource implements ByteSource {
  private constructor(
    private readonly fh: fsp.FileHandle,
    readonly size: number,
  ) {}

  static async open(file: string): Promise<FileSource> {
    const fh = await fsp.open(file, 'r');
    try {
      const st = await fh.stat();
      return new FileSource(fh, st.size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const len = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.fh.read(buf, got, len - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Opens `file`, walks it, closes it. */
export async function walkFile(file: string, opts: WalkOptions = {}): Promise<BoxTree> {
  const src = await FileSource.open(file);
  try {
    return await walkBoxes(src, opts);
  } finally {
    await src.close();
  }
}

/** Walks the whole source. Throws KluisError E_SANITIZE_BOX_* on anything malformed. */
export async function walkBoxes(src: ByteSource, opts: WalkOptions = {}): Promise<BoxTree> {
  const state = { count: 0, maxDepth: opts.maxDepth ?? DEFAULT_MAX_DEPTH, maxBoxes: opts.maxBoxes ?? DEFAULT_MAX_BOXES };
  if (src.size === 0) {
    throw new KluisError('E_SANITIZE_EMPTY', 'the file is empty', {
      hint: 'the recording was never written; there is nothing to sanitize',
    });
  }
  const { boxes, trailing } = await walkRange(src, 0, src.size, '', 0, state, true);
  if (trailing) {
    throw boxError(
      'E_SANITIZE_BOX_TRUNCATED',
      `the file ends with ${trailing.length} byte(s) that do not form a box; it was probably cut off`,
      '/',
    );
  }
  return { size: src.size, boxes };
}

interface WalkState {
  count: number;
  maxDepth: number;
  maxBoxes: number;
}

async function walkRange(
  src: ByteSource,
  start: number,
  end: number,
  parentPath: string,
  depth: number,
  state: WalkState,
  top: boolean,
): Promise<{ boxes: Box[]; trailing?: { offset: number; length: number } }> {
  const boxes: Box[] = [];
  let pos = start;
  while (pos < end) {
    const remaining = end - pos;
    if (remaining < 8) {
      return { boxes, trailing: { offset: pos, length: remaining } };
    }
    const head = await src.read(pos, 16);
    let size = u32(head, 0);
    const type = fourcc(head, 4);
    let headerSize = 8;
    const here = parentPath ? `${parentPath}/${showType(type)}` : showType(type);
    if (size === 1) {
      if (head.length < 16) throw boxError('E_SANITIZE_BOX_TRUNCATED', 'a 64-bit box size runs past the end', here);
      const hi = u32(head, 8);
      const lo = u32(head, 12);
      // Above 2^53 the size cannot be exact in a JS number; no real file is that large.
      if (hi > 0x1fffff) throw boxError('E_SANITIZE_BOX_SIZE', 'a 64-bit box size is impossibly large', here);
      size = hi * 0x1_0000_0000 + lo;
      headerSize = 16;
    } else if (size === 0) {
      if (!top) throw boxError('E_SANITIZE_BOX_SIZE', 'a nested box claims to run to the end of the file', here);
      size = end - pos;
    }
    if (size < headerSize) {
      throw boxError('E_SANITIZE_BOX_SIZE', `box ${showType(type)} has size ${size}, smaller than its header`, here);
    }
    let uuid: string | undefined;
    if (type === 'uuid') {
      const ext = await src.read(pos + headerSize, 16);
      if (ext.length < 16 || size < headerSize + 16) {
        throw boxError('E_SANITIZE_BOX_SIZE', 'a uuid box is too small for its extended type', here);
      }
      uuid = uuidString(ext);
      headerSize += 16;
    }
    if (pos + size > end) {
      const code = top ? 'E_SANITIZE_BOX_TRUNCATED' : 'E_SANITIZE_BOX_SIZE';
      const what = top
        ? `box ${showType(type)} claims ${size} bytes but only ${end - pos} remain; the file was probably cut off`
        : `box ${showType(type)} (${size} bytes) runs past the end of its parent`;
      throw boxError(code, what, here);
    }
    state.count += 1;
    if (state.count > state.maxBoxes) {
      throw boxError('E_SANITIZE_BOX_COUNT', `more than ${state.maxBoxes} boxes; refusing to walk further`, here);
    }
    const indexed = `${parentPath ? `${parentPath}/` : ''}${showType(type)}`;
    const box: Box = { type, path: indexed, offset: pos, size, headerSize, payloadOffset: pos + headerSize };
    if (uuid) box.uuid = uuid;
    boxes.push(box);
    pos += size;
  }
  // Give indexes to repeated types so each path names exactly one box.
  const totals = new Map<string, number>();
  for (const b of boxes) totals.set(b.type, (totals.get(b.type) ?? 0) + 1);
  const running = new Map<string, number>();
  for (const b of boxes) {
    if ((totals.get(b.type) ?? 0) > 1) {
      const i = (running.get(b.type) ?? 0) + 1;
      running.set(b.type, i);
      b.path = `${b.path}[${i}]`;
    }
  }
  const parentType = parentPath.split('/').at(-1)?.replace(/\[\d+\]$/, '') ?? '';
  for (const b of boxes) await descend(src, b, parentType, depth, state);
  return { boxes };
}

async function descend(src: ByteSource, box: Box, parentType: string, depth: number, state: WalkState): Promise<void> {
  const end = box.offset + box.size;
  let childStart: number | null = null;
  if (CONTAINERS.has(box.type)) {
    childStart = box.payloadOffset;
  } else if (box.type === 'meta') {
    // ISO `meta` is a FullBox (4 bytes of version/flags before the children); QuickTime's is not.
    const peek = await src.read(box.payloadOffset, 8);
    const qt = peek.length >= 8 && fourcc(peek, 4) === 'hdlr' && u32(peek, 0) >= 8;
    childStart = qt ? box.payloadOffset : box.payloadOffset + 4;
  } else if (box.type === 'stsd' || box.type === 'dref') {
    childStart = box.payloadOffset + 8; // version/flags + entry_count
  } else if (parentType === 'stsd') {
    childStart = await sampleEntryChildStart(src, box);
  }
  if (childStart === null) return;
  if (depth + 1 > state.maxDepth) {
    throw boxError('E_SANITIZE_BOX_DEPTH', `boxes nested deeper than ${state.maxDepth} levels`, box.path);
  }
  if (childStart > end) {
    throw boxError('E_SANITIZE_BOX_SIZE', `box ${showType(box.type)} is too small for its fixed fields`, box.path);
  }
  box.payloadOffset = childStart;
  const { boxes, trailing } = await walkRange(src, childStart, end, box.path, depth + 1, state, false);
  box.children = boxes;
  if (trailing) box.trailing = trailing;
}

/** Where the child boxes of a sample entry start, or null when its layout is unknown (a leaf). */
async function sampleEntryChildStart(src: ByteSource, box: Box): Promise<number | null> {
  const p = box.payloadOffset;
  if (VISUAL_ENTRIES.has(box.type)) return p + 78;
  if (AUDIO_ENTRIES.has(box.type)) {
    const head = await src.read(p, 10);
    const version = head.length >= 10 ? u16(head, 8) : 0;
    if (version === 0) return p + 28;
    if (version === 1) return p + 28 + 16;
    if (version === 2) return p + 28 + 36;
    throw boxError('E_SANITIZE_BOX_FORMAT', `audio sample entry version ${version} is unknown`, box.path);
  }
  return null;
}

function uuidString(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Reads a box's payload (after the header) when it is at most `max` bytes; otherwise throws. */
export async function readPayload(src: ByteSource, box: Box, max: number): Promise<Uint8Array> {
  const start = box.offset + box.headerSize;
  const len = box.offset + box.size - start;
  if (len > max) {
    throw boxError('E_SANITIZE_BOX_SIZE', `box ${showType(box.type)} is ${len} bytes, more than the ${max} expected`, box.path);
  }
  const data = await src.read(start, len);
  if (data.length !== len) throw boxError('E_SANITIZE_BOX_TRUNCATED', 'the file ended inside a box', box.path);
  return data;
}

/** Every box in document order (depth first). */
export function* allBoxes(boxes: readonly Box[]): Generator<Box> {
  for (const b of boxes) {
    yield b;
    if (b.children) yield* allBoxes(b.children);
  }
}

/** The children of `box` (or of the top level) with the given type. */
export function childrenOf(parent: Box | BoxTree, type: string): Box[] {
  const list = 'boxes' in parent ? parent.boxes : (parent.children ?? []);
  return list.filter((b) => b.type === type);
}

/** A short indented rendering of the tree, for messages and debugging. */
export function renderTree(boxes: readonly Box[], indent = ''): string {
  let out = '';
  for (const b of boxes) {
    out += `${indent}${showType(b.type)} ${b.size}${b.uuid ? ` ${b.uuid}` : ''}\n`;
    if (b.children) out += renderTree(b.children, `${indent}  `);
  }
  return out;
}
