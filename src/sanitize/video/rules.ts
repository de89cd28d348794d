/**
 * The allow-list of MP4/MOV structures kluis lets through, applied two ways by the same code:
 * - on the INPUT (`inventoryInput`): every structure that is not on the list, or whose value is
 *   not neutral, is listed as removed, with its path, size and class (gps, serial, ...), and the
 *   strings it carried become extra needles for the output scan;
 * - on the OUTPUT (`checkOutputBoxes`): every structure that is not on the list, every non-neutral
 *   value (non-zero creation time, handler name, compressor name, non-zero padding) and every
 *   needle found outside `mdat` and the fixed-size sample tables is a finding. An empty list of
 *   findings is the only pass.
 * It reads payloads only of small boxes (capped) and never of `mdat`. It decides nothing about
 * which tracks to keep: the caller names them.
 */
import { KluisError } from '../../errors.js';
import type { RemovedItem } from '../types.js';
import {
  AUDIO_ENTRIES,
  VISUAL_ENTRIES,
  allBoxes,
  readPayload,
  showType,
  type Box,
  type BoxTree,
  type ByteSource,
} from './boxes.js';

export type TrackKind = 'video' | 'audio';

/** Handler names that say nothing about the device or the software that wrote the file. */
export const NEUTRAL_HANDLER_NAMES = new Set(['', 'VideoHandler', 'SoundHandler', 'DataHandler']);

/** The XMP uuid (Adobe XMP in ISO-BMFF). */
const XMP_UUID = 'be7acfcb-97a9-42e8-9c71-999491e3afac';

/** Strings that must never appear outside `mdat` in a sanitized file, whatever the input. */
export const DEFAULT_NEEDLES = [
  'DJI', 'dji', 'drone', 'Drone', 'GPS', 'gps ', 'Lavf', 'Lavc', 'x264', 'xmpmeta', 'xmlns', 'ISO6709',
  'SN=', 'serial', 'Serial', 'Hasselblad', 'com.apple.quicktime', 'latitude', 'longitude',
];
/** ISO 6709 coordinates such as "+52.0907+005.1214/". */
const ISO6709 = /[+-]\d{1,2}\.\d{3,}[+-]\d{1,3}\.\d{3,}/;

export const VISUAL_CHILDREN = new Set([
  'avcC', 'hvcC', 'av1C', 'vpcC', 'dvcC', 'dvvC', 'btrt', 'pasp', 'colr', 'fiel', 'clap', 'mdcv', 'clli',
  'gama', 'SmDm', 'CoLL', 'glbl',
]);
export const AUDIO_CHILDREN = new Set(['esds', 'wave', 'chan', 'btrt', 'dac3', 'dec3', 'dOps', 'alac', 'dfLa']);
export const WAVE_CHILDREN = new Set(['frma', 'mp4a', 'esds', 'enda', 'chan', 'alac', '\0\0\0\0']);
export const STBL_CHILDREN = new Set([
  'stsd', 'stts', 'stss', 'ctts', 'cslg', 'stsc', 'stsz', 'stz2', 'stco', 'co64', 'sgpd', 'sbgp', 'sdtp', 'stps',
]);
export const GROUPING_TYPES = new Set(['roll', 'prol', 'sync', 'rap ']);
/** Video/audio sample entries a sanitized file may carry (no encrypted or Motion-JPEG entries). */
export const KEPT_VISUAL = new Set([...VISUAL_ENTRIES].filter((t) => !['encv', 'jpeg', 'mjpa', 'mjpb'].includes(t)));
export const KEPT_AUDIO = new Set([...AUDIO_ENTRIES].filter((t) => t !== 'enca'));

/** Largest leaf box whose payload is read (and so the largest a kept leaf may be). */
export const MAX_LEAF = 4 << 20;

export interface Issue {
  path: string;
  /** Class as used in RemovedItem.what. */
  what: string;
  bytes: number;
  note: string;
}

// ---------------------------------------------------------------------------------------------
// Small readers

function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) >>> 0) + ((b[at + 1] ?? 0) << 16) + ((b[at + 2] ?? 0) << 8) + (b[at + 3] ?? 0);
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** The handler name of a `hdlr` payload, C-string or QuickTime Pascal string. */
export function handlerName(payload: Uint8Array): { type: string; name: string } {
  const type = latin1(payload.subarray(8, 12));
  const rest = payload.subarray(24);
  let name: string;
  if (rest.length > 0 && rest[0] === rest.length - 1 && rest.length > 1) {
    name = latin1(rest.subarray(1)); // Pascal string filling the box
  } else if (rest.length > 0 && (rest[0] ?? 0) > 0 && (rest[0] ?? 0) < 32 && (rest[0] ?? 0) <= rest.length - 1) {
    name = latin1(rest.subarray(1, 1 + (rest[0] ?? 0)));
  } else {
    name = latin1(rest);
  }
  return { type, name: name.replace(/\0+$/, '') };
}

function isAllZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/** Printable runs (ASCII and UTF-16) of at least `min` characters, for needles and notes. */
export function printableRuns(b: Uint8Array, min = 6): string[] {
  const out = new Set<string>();
  const text = latin1(b);
  for (const m of text.matchAll(/[\x20-\x7e]{2,}/g)) if (m[0].trim().length >= min) out.add(m[0].trim());
  for (const m of text.matchAll(/(?:[\x20-\x7e]\0){2,}/g)) {
    const s = m[0].replace(/\0/g, '').trim();
    if (s.length >= min) out.add(s);
  }
  for (const m of text.matchAll(/(?:\0[\x20-\x7e]){2,}/g)) {
    const s = m[0].replace(/\0/g, '').trim();
    if (s.length >= min) out.add(s);
  }
  return [...out];
}

// ---------------------------------------------------------------------------------------------
// Classification of removed structures

const CLASS_BY_TYPE: Record<string, string> = {
  '©xyz': 'gps', loci: 'gps', '©loc': 'gps', LOCI: 'gps',
  '©xsp': 'speed', '©ysp': 'speed', '©zsp': 'speed',
  '©fpt': 'attitude', '©fyw': 'attitude', '©frl': 'attitude', '©gpt': 'attitude', '©gyw': 'attitude', '©grl': 'attitude',
  '©csn': 'serial', '©uid': 'serial', '©sno': 'serial', SNum: 'serial',
  '©mdl': 'make-model', '©mak': 'make-model', '©mod': 'make-model', manu: 'make-model', modl: 'make-model',
  '©swr': 'firmware', '©too': 'firmware', '©enc': 'firmware', '©fmw': 'firmware', Xtra: 'firmware', FIRM: 'firmware',
  '©cmt': 'comment', '©des': 'comment', '©inf': 'comment', '©nam': 'comment', '©aut': 'comment', '©ART': 'comment',
  cprt: 'comment', dscp: 'comment', titl: 'comment', auth: 'comment', desc: 'comment',
  tref: 'timed-metadata',
  '©day': 'creation-time', '©mdt': 'creation-time', date: 'creation-time',
  covr: 'thumbnail', thmb: 'thumbnail', snal: 'thumbnail', PRVW: 'thumbnail', THMB: 'thumbnail',
};

function classifyKey(key: string): string {
  const k = key.toLowerCase().replace(/^com\.apple\.quicktime\./, '');
  if (/location|iso6709|gps|latitude|longitude|altitude/.test(k)) return 'gps';
  if (/serial|\.sn\b|uuid|identifier|owner/.test(k)) return 'serial';
  if (/make|model/.test(k)) return 'make-model';
  if (/software|firmware|encoder|version/.test(k)) return 'firmware';
  if (/speed|velocity/.test(k)) return 'speed';
  if (/pitch|yaw|roll|gimbal|attitude|orientation/.test(k)) return 'attitude';
  if (/date|time/.test(k)) return 'creation-time';
  if (/comment|description|title|author|artist|copyright|keywords/.test(k)) return 'comment';
  return 'other';
}

/** Content overrides the type: a "comment" that holds a serial number is a serial. */
function classifyByContent(base: string, text: string): string {
  if (/\bSN=|serial/i.test(text)) return 'serial';
  if (ISO6709.test(text)) return 'gps';
  return base;
}

// ---------------------------------------------------------------------------------------------
// Input inventory

export interface InventoryResult {
  removed: RemovedItem[];
  /** Strings carried by removed metadata: they must not appear in the output. */
  needles: string[];
  /** track_ID and handler type of every track, in file order. */
  tracks: Array<{ id: number; handler: string; entry: string; path: string }>;
}

/**
 * Lists every structure of the input that the output will not carry. `keptTrackIds` are the
 * tkhd track_IDs of the tracks that stay (video and audio essence).
 */
export async function inventoryInput(
  src: ByteSource,
  tree: BoxTree,
  keptTrackIds: ReadonlySet<number>,
): Promise<InventoryResult> {
  const removed: RemovedItem[] = [];
  const needles = new Set<string>();
  const tracks: InventoryResult['tracks'] = [];
  const moovs = tree.boxes.filter((b) => b.type === 'moov');
  if (moovs.length === 0) throw noMoov();

  const addNeedles = async (box: Box): Promise<string> => {
    if (box.size - box.headerSize > MAX_LEAF) return '';
    const payload = await readPayload(src, box, MAX_LEAF);
    const runs = printableRuns(payload, 5).filter((s) => !NEUTRAL_HANDLER_NAMES.has(s) && !/^(data|mdta|mdir|appl|hdlr)$/.test(s));
    for (const r of runs) needles.add(r);
    return runs.join(' ');
  };

  /** Lists a metadata container's children one by one (udta, meta, ilst, keys). */
  const listMetadata = async (box: Box, base: string): Promise<void> => {
    if (box.type === 'meta' && box.children) {
      const keys = box.children.find((c) => c.type === 'keys');
      const keyNames = keys ? await readKeys(src, keys) : [];
      for (const c of box.children) {
        if (c.type === 'ilst' && c.children) {
          for (const item of c.children) {
            const text = await addNeedles(item);
            const idx = u32(Buffer.from(item.type, 'latin1'), 0);
            const keyName = keyNames.length > 0 && idx >= 1 && idx <= keyNames.length ? keyNames[idx - 1] : undefined;
            const cls = keyName ? classifyKey(keyName) : (CLASS_BY_TYPE[item.type] ?? 'other');
            removed.push({
              where: keyName ? `${c.path}/[${keyName}]` : item.path,
              what: classifyByContent(cls, text),
              bytes: item.size,
            });
          }
        } else if (c.type === 'keys') {
          for (const k of keyNames) needles.add(k);
          removed.push({ where: `${c.path} (${keyNames.length} key names)`, what: 'other', bytes: c.size });
        } else if (c.type !== 'hdlr') {
          const text = await addNeedles(c);
          removed.push({ where: c.path, what: classifyByContent(CLASS_BY_TYPE[c.type] ?? 'other', text), bytes: c.size });
        }
      }
      return;
    }
    if (box.type === 'udta' && box.children) {
      for (const c of box.children) {
        if (c.type === 'meta') await listMetadata(c, base);
        else {
          const text = await addNeedles(c);
          removed.push({ where: c.path, what: classifyByContent(CLASS_BY_TYPE[c.type] ?? 'other', text), bytes: c.size });
        }
      }
      return;
    }
    const text = await addNeedles(box);
    const cls =
      box.type === 'uuid'
        ? box.uuid === XMP_UUID
          ? 'vendor-xmp'
          : 'other'
        : (CLASS_BY_TYPE[box.type] ?? base);
    removed.push({ where: box.uuid ? `${box.path} ${box.uuid}` : box.path, what: classifyByContent(cls, text), bytes: box.size });
  };

  for (const top of tree.boxes) {
    if (top.type === 'moov') {
      for (const c of top.children ?? []) {
        if (c.type === 'trak') {
          const info = await trackInfo(src, c);
          tracks.push({ ...info, path: c.path });
          if (!keptTrackIds.has(info.id)) {
            removed.push({
              where: `${c.path} (track ${info.id}, handler ${showType(info.handler)}${info.name ? ` "${info.name}"` : ''}, ${showType(info.entry)})`,
              what: trackClass(info.handler, info.entry),
              bytes: c.size + (await sampleBytes(src, c)),
            });
            continue;
          }
          const issues: Issue[] = [];
          await checkTrak(src, c, info.handler === 'soun' ? 'audio' : 'video', issues, true);
          for (const i of issues) removed.push({ where: `${i.path} (${i.note})`, what: i.what, bytes: i.bytes });
        } else if (c.type === 'mvhd') {
          const issues: Issue[] = [];
          await checkTimes(src, c, issues);
          for (const i of issues) removed.push({ where: `${i.path} (${i.note})`, what: i.what, bytes: i.bytes });
        } else if (c.type === 'udta' || c.type === 'meta' || c.type === 'uuid') {
          await listMetadata(c, 'other');
        } else if (c.type !== 'iods') {
          await listMetadata(c, 'other');
        }
      }
    } else if (top.type === 'free' || top.type === 'skip' || top.type === 'wide') {
      const payload = top.size - top.headerSize <= MAX_LEAF ? await readPayload(src, top, MAX_LEAF) : null;
      if (payload === null || !isAllZero(payload)) {
        await listMetadata(top, 'other');
      }
    } else if (top.type !== 'ftyp' && top.type !== 'mdat') {
      await listMetadata(top, 'other');
    }
  }
  return { removed, needles: [...needles].filter((n) => n.length >= 5), tracks };
}

function trackClass(handler: string, entry: string): string {
  if (handler === 'vide' || handler === 'soun') return entry === 'jpeg' || entry === 'mjpa' ? 'thumbnail' : 'other';
  return 'timed-metadata';
}

async function trackInfo(
  src: ByteSource,
  trak: Box,
): Promise<{ id: number; handler: string; name: string; entry: string }> {
  const tkhd = trak.children?.find((b) => b.type === 'tkhd');
  let id = -1;
  if (tkhd) {
    const p = await readPayload(src, tkhd, 4096);
    id = p[0] === 1 ? u32(p, 20) : u32(p, 12);
  }
  const mdia = trak.children?.find((b) => b.type === 'mdia');
  const hdlr = mdia?.children?.find((b) => b.type === 'hdlr');
  let handler = '????';
  let name = '';
  if (hdlr) ({ type: handler, name } = handlerName(await readPayload(src, hdlr, 4096)));
  const stsd = mdia?.children
    ?.find((b) => b.type === 'minf')
    ?.children?.find((b) => b.type === 'stbl')
    ?.children?.find((b) => b.type === 'stsd');
  const entry = stsd?.children?.[0]?.type ?? '????';
  return { id, handler, name, entry };
}

/** Bytes of a track's samples in mdat, from its stsz (read in bounded chunks). */
async function sampleBytes(src: ByteSource, trak: Box): Promise<number> {
  const stsz = [...allBoxes([trak])].find((b) => b.type === 'stsz');
  if (!stsz) return 0;
  const head = await src.read(stsz.offset + stsz.headerSize, 12);
  const fixed = u32(head, 4);
  const count = u32(head, 8);
  if (fixed !== 0) return fixed * count;
  let total = 0;
  const start = stsz.offset + stsz.headerSize + 12;
  const end = Math.min(stsz.offset + stsz.size, start + count * 4);
  for (let pos = start; pos < end; pos += 1 << 20) {
    const chunk = await src.read(pos, Math.min(1 << 20, end - pos));
    for (let i = 0; i + 4 <= chunk.length; i += 4) total += u32(chunk, i);
  }
  return total;
}

async function readKeys(src: ByteSource, keys: Box): Promise<string[]> {
  const p = await readPayload(src, keys, MAX_LEAF);
  const count = u32(p, 4);
  const out: string[] = [];
  let pos = 8;
  for (let i = 0; i < count && pos + 8 <= p.length; i++) {
    const size = u32(p, pos);
    if (size < 8 || pos + size > p.length) break;
    out.push(latin1(p.subarray(pos + 8, pos + size)));
    pos += size;
  }
  return out;
}

function noMoov(): KluisError {
  return new KluisError('E_SANITIZE_NO_MOOV', 'the video has no moov box (its index), so it cannot be read', {
    hint: 'the recording was probably interrupted (battery, card pulled); repair a copy with a tool such as untrunc, kluis will not store a file it cannot check',
  });
}

// ---------------------------------------------------------------------------------------------
// The allow-list, shared by input and output

async function checkTimes(src: ByteSource, box: Box, issues: Issue[]): Promise<void> {
  const p = await readPayload(src, box, 4096);
  const v1 = p[0] === 1;
  const times = v1 ? p.subarray(4, 20) : p.subarray(4, 12);
  if (!isAllZero(times)) {
    issues.push({ path: box.path, what: 'creation-time', bytes: times.length, note: 'creation/modification time' });
  }
}

async function checkHdlr(
  src: ByteSource,
  box: Box,
  allowedTypes: ReadonlySet<string>,
  issues: Issue[],
): Promise<void> {
  const p = await readPayload(src, box, 4096);
  const { type, name } = handlerName(p);
  if (!allowedTypes.has(type)) {
    issues.push({ path: box.path, what: 'other', bytes: box.size, note: `handler type ${showType(type)}` });
  }
  if (!NEUTRAL_HANDLER_NAMES.has(name)) {
    issues.push({ path: box.path, what: 'other', bytes: name.length, note: `handler name "${name.slice(0, 60)}"` });
  }
}

function residue(issues: Issue[], box: Box, note = 'not on the allow-list'): void {
  const text = box.uuid ? ` ${box.uuid}` : '';
  issues.push({
    path: box.path,
    what: box.uuid === XMP_UUID ? 'vendor-xmp' : (CLASS_BY_TYPE[box.type] ?? (box.type === 'trak' ? 'timed-metadata' : 'other')),
    bytes: box.size,
    note: `${showType(box.type)}${text} ${note}`,
  });
}

function checkTrailing(box: Box, issues: Issue[], data?: Uint8Array): void {
  if (!box.trailing) return;
  if (data && isAllZero(data)) return;
  issues.push({ path: box.path, what: 'other', bytes: box.trailing.length, note: `${box.trailing.length} stray byte(s) after the last child` });
}

async function checkTrailingBytes(src: ByteSource, box: Box, issues: Issue[]): Promise<void> {
  if (!box.trailing) return;
  const data = await src.read(box.trailing.offset, box.trailing.length);
  checkTrailing(box, issues, data);
}

/**
 * Checks one kept track against the allow-list. With `inputSide`, value problems (times, names)
 * are reported as issues too; the caller turns them into "removed" items.
 */
async function checkTrak(src: ByteSource, trak: Box, kind: TrackKind, issues: Issue[], inputSide: boolean): Promise<void> {
  await checkTrailingBytes(src, trak, issues);
  const counts = new Map<string, number>();
  for (const c of trak.children ?? []) {
    counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
    if (c.type === 'tkhd') await checkTimes(src, c, issues);
    else if (c.type === 'edts') {
      await checkTrailingBytes(src, c, issues);
      for (const e of c.children ?? []) {
        if (e.type === 'elst') await checkTable(src, e, issues);
        else residue(issues, e);
      }
    } else if (c.type === 'mdia') await checkMdia(src, c, kind, issues);
    else residue(issues, c);
  }
  for (const need of ['tkhd', 'mdia']) {
    if (counts.get(need) !== 1 && !inputSide) {
      issues.push({ path: trak.path, what: 'other', bytes: 0, note: `expected exactly one ${need}` });
    }
  }
}

async function checkMdia(src: ByteSource, mdia: Box, kind: TrackKind, issues: Issue[]): Promise<void> {
  await checkTrailingBytes(src, mdia, issues);
  for (const c of mdia.children ?? []) {
    if (c.type === 'mdhd') await checkTimes(src, c, issues);
    else if (c.type === 'hdlr') await checkHdlr(src, c, new Set([kind === 'video' ? 'vide' : 'soun']), issues);
    else if (c.type === 'minf') await checkMinf(src, c, kind, issues);
    else residue(issues, c);
  }
}

async function checkMinf(src: ByteSource, minf: Box, kind: TrackKind, issues: Issue[]): Promise<void> {
  await checkTrailingBytes(src, minf, issues);
  for (const c of minf.children ?? []) {
    if ((c.type === 'vmhd' && kind === 'video') || (c.type === 'smhd' && kind === 'audio')) continue;
    if (c.type === 'hdlr') await checkHdlr(src, c, new Set(['url ', 'alis', '\0\0\0\0']), issues);
    else if (c.type === 'dinf') await checkDinf(src, c, issues);
    else if (c.type === 'stbl') await checkStbl(src, c, kind, issues);
    else residue(issues, c);
  }
}

async function checkDinf(src: ByteSource, dinf: Box, issues: Issue[]): Promise<void> {
  await checkTrailingBytes(src, dinf, issues);
  for (const c of dinf.children ?? []) {
    if (c.type !== 'dref') {
      residue(issues, c);
      continue;
    }
    await checkTrailingBytes(src, c, issues);
    for (const r of c.children ?? []) {
      // Only "the data is in this file": flag 1 and no location string (an external reference
      // would name another file and its path).
      const p = await readPayload(src, r, 4096);
      if (!((r.type === 'url ' || r.type === 'alis') && p.length === 4 && ((p[3] ?? 0) & 1) === 1)) {
        residue(issues, r, 'data reference that is not "self-contained"');
      }
    }
  }
}

async function checkStbl(src: ByteSource, stbl: Box, kind: TrackKind, issues: Issue[]): Promise<void> {
  await checkTrailingBytes(src, stbl, issues);
  for (const c of stbl.children ?? []) {
    if (!STBL_CHILDREN.has(c.type)) {
      residue(issues, c);
      continue;
    }
    if (c.type === 'stsd') await checkStsd(src, c, kind, issues);
    else if (c.type === 'sgpd' || c.type === 'sbgp') {
      const p = await readPayload(src, c, MAX_LEAF);
      const grouping = latin1(p.subarray(4, 8));
      if (!GROUPING_TYPES.has(grouping)) residue(issues, c, `grouping type ${showType(grouping)}`);
    } else {
      await checkTable(src, c, issues);
    }
  }
}

async function checkStsd(src: ByteSource, stsd: Box, kind: TrackKind, issues: Issue[]): Promise<void> {
  await checkTrailingBytes(src, stsd, issues);
  const entries = stsd.children ?? [];
  const head = await src.read(stsd.offset + stsd.headerSize, 8);
  if (u32(head, 4) !== entries.length) {
    issues.push({ path: stsd.path, what: 'other', bytes: stsd.size, note: 'entry count does not match the entries' });
  }
  for (const e of entries) {
    const allowed = kind === 'video' ? KEPT_VISUAL : KEPT_AUDIO;
    if (!allowed.has(e.type)) {
      residue(issues, e, `is not a ${kind} sample entry kluis keeps`);
      continue;
    }
    const fixed = await src.read(e.offset + e.headerSize, 78);
    const vendor = latin1(fixed.subarray(12, 16));
    if (vendor !== '\0\0\0\0' && vendor !== 'FFMP') {
      issues.push({ path: e.path, what: 'firmware', bytes: 4, note: `vendor code "${showType(vendor)}"` });
    }
    if (kind === 'video') {
      const compressor = fixed.subarray(42, 74);
      if (!isAllZero(compressor)) {
        const n = Math.min(compressor[0] ?? 0, 31);
        issues.push({ path: e.path, what: 'firmware', bytes: 32, note: `compressor name "${latin1(compressor.subarray(1, 1 + n))}"` });
      }
    }
    await checkTrailingBytes(src, e, issues);
    for (const c of e.children ?? []) {
      const ok = kind === 'video' ? VISUAL_CHILDREN : AUDIO_CHILDREN;
      if (!ok.has(c.type)) residue(issues, c);
      else if (c.type === 'wave') {
        await checkTrailingBytes(src, c, issues);
        for (const w of c.children ?? []) if (!WAVE_CHILDREN.has(w.type)) residue(issues, w);
      }
    }
  }
}

/** Fixed-layout sample tables: their size must follow from their entry count, leaving no room to hide bytes. */
const TABLE_ENTRY: Record<string, { head: number; entry: (p: Uint8Array) => number }> = {
  stts: { head: 8, entry: () => 8 },
  ctts: { head: 8, entry: () => 8 },
  stss: { head: 8, entry: () => 4 },
  stps: { head: 8, entry: () => 4 },
  stsc: { head: 8, entry: () => 12 },
  stco: { head: 8, entry: () => 4 },
  co64: { head: 8, entry: () => 8 },
  elst: { head: 8, entry: (p) => (p[0] === 1 ? 20 : 12) },
};

export const EXACT_TABLES = new Set(['stts', 'ctts', 'stss', 'stps', 'stsc', 'stco', 'co64', 'elst', 'stsz', 'stz2', 'cslg']);

async function checkTable(src: ByteSource, box: Box, issues: Issue[]): Promise<void> {
  const bodyLen = box.size - box.headerSize;
  const head = await src.read(box.offset + box.headerSize, 20);
  let expected: number | null = null;
  const spec = TABLE_ENTRY[box.type];
  if (spec) {
    expected = spec.head + u32(head, 4) * spec.entry(head);
  } else if (box.type === 'stsz') {
    const fixed = u32(head, 4);
    expected = 12 + (fixed === 0 ? u32(head, 8) * 4 : 0);
  } else if (box.type === 'stz2') {
    const field = head[7] ?? 0;
    expected = 12 + Math.ceil((u32(head, 8) * field) / 8);
  } else if (box.type === 'cslg') {
    expected = head[0] === 1 ? 44 : 24;
  } else if (box.type === 'sdtp') {
    return; // one flag byte per sample; scanned for needles with the other leaves
  }
  if (expected === null || expected !== bodyLen) {
    issues.push({
      path: box.path,
      what: 'other',
      bytes: box.size,
      note: `${showType(box.type)} is ${bodyLen} bytes but its entry count says ${expected ?? '?'}`,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Output check

export interface OutputExpectation {
  /** The kinds of the kept tracks, in order. */
  tracks: TrackKind[];
  /** The container: an MP4 output may carry ffmpeg's empty `udta/meta/ilst`. */
  format: 'mp4' | 'mov';
  /** Strings that must not appear outside mdat (DEFAULT_NEEDLES are always added). */
  needles: readonly string[];
}

/** Every finding in a sanitized file's box tree; empty means clean. */
export async function checkOutputBoxes(src: ByteSource, tree: BoxTree, expect: OutputExpectation): Promise<string[]> {
  const issues: Issue[] = [];
  const tops = tree.boxes;
  if (tops[0]?.type !== 'ftyp') issues.push({ path: '/', what: 'other', bytes: 0, note: 'the file does not start with ftyp' });
  const moovs = tops.filter((b) => b.type === 'moov');
  if (moovs.length !== 1) issues.push({ path: '/', what: 'other', bytes: 0, note: `expected one moov, found ${moovs.length}` });
  for (const top of tops) {
    if (top.type === 'ftyp' || top.type === 'mdat') continue;
    if (top.type === 'free' || top.type === 'skip' || top.type === 'wide') {
      if (!(await zeroPayload(src, top))) residue(issues, top, 'padding that is not zero');
      continue;
    }
    if (top.type !== 'moov') {
      residue(issues, top);
      continue;
    }
    await checkTrailingBytes(src, top, issues);
    const traks: Box[] = [];
    for (const c of top.children ?? []) {
      if (c.type === 'mvhd') await checkTimes(src, c, issues);
      else if (c.type === 'iods') continue;
      else if (c.type === 'trak') traks.push(c);
      else if (c.type === 'udta' && expect.format === 'mp4' && (await isFfmpegEmptyUdta(src, c))) continue;
      else residue(issues, c);
    }
    if (traks.length !== expect.tracks.length) {
      issues.push({
        path: top.path,
        what: 'timed-metadata',
        bytes: 0,
        note: `expected ${expect.tracks.length} track(s), found ${traks.length}`,
      });
    }
    for (let i = 0; i < traks.length; i++) {
      const trak = traks[i] as Box;
      const info = await trackInfo(src, trak);
      const kind: TrackKind | undefined = info.handler === 'vide' ? 'video' : info.handler === 'soun' ? 'audio' : undefined;
      if (!kind || kind !== expect.tracks[i]) {
        residue(issues, trak, `handler ${showType(info.handler)} where a ${expect.tracks[i] ?? 'no'} track was expected`);
        continue;
      }
      await checkTrak(src, trak, kind, issues, false);
    }
  }
  await scanNeedles(src, tree, [...DEFAULT_NEEDLES, ...expect.needles], issues);
  return issues.map((i) => `${i.path}: ${i.note}${i.what !== 'other' ? ` [${i.what}]` : ''}`);
}

async function zeroPayload(src: ByteSource, box: Box): Promise<boolean> {
  const end = box.offset + box.size;
  for (let pos = box.offset + box.headerSize; pos < end; pos += 1 << 20) {
    if (!isAllZero(await src.read(pos, Math.min(1 << 20, end - pos)))) return false;
  }
  return true;
}

/** ffmpeg's MP4 muxer always writes udta/meta{hdlr mdir, ilst} even with no metadata; only that empty form passes. */
async function isFfmpegEmptyUdta(src: ByteSource, udta: Box): Promise<boolean> {
  if (udta.trailing) return false;
  const kids = udta.children ?? [];
  if (kids.length === 0) return true;
  if (kids.length !== 1 || kids[0]?.type !== 'meta') return false;
  const meta = kids[0];
  if (meta.trailing) return false;
  const mk = meta.children ?? [];
  const hdlr = mk.find((b) => b.type === 'hdlr');
  const ilst = mk.find((b) => b.type === 'ilst');
  if (mk.length !== 2 || !hdlr || !ilst) return false;
  if (ilst.size !== ilst.headerSize || (ilst.children ?? []).length > 0) return false;
  const { type, name } = handlerName(await readPayload(src, hdlr, 4096));
  return type === 'mdir' && name === '';
}

/**
 * Looks for each needle (as ASCII and UTF-16) in every leaf outside mdat and the fixed-size
 * sample tables, plus in every box header, and for ISO 6709 coordinates.
 */
async function scanNeedles(src: ByteSource, tree: BoxTree, needles: readonly string[], issues: Issue[]): Promise<void> {
  const patterns: Array<{ needle: string; bytes: Buffer }> = [];
  for (const n of new Set(needles)) {
    if (n.length === 0) continue;
    patterns.push({ needle: n, bytes: Buffer.from(n, 'latin1') });
    patterns.push({ needle: n, bytes: Buffer.from(n, 'utf16le') });
    patterns.push({ needle: n, bytes: Buffer.from(n, 'utf16le').swap16() });
  }
  for (const box of allBoxes(tree.boxes)) {
    const ranges: Array<[number, number]> = [];
    if (box.children) {
      ranges.push([box.offset, box.payloadOffset]);
      if (box.trailing) ranges.push([box.trailing.offset, box.trailing.offset + box.trailing.length]);
    } else if (box.type === 'mdat' || EXACT_TABLES.has(box.type)) {
      ranges.push([box.offset, box.offset + box.headerSize]);
    } else {
      if (box.size > MAX_LEAF) {
        issues.push({ path: box.path, what: 'other', bytes: box.size, note: `${showType(box.type)} is unexpectedly large (${box.size} bytes)` });
        continue;
      }
      ranges.push([box.offset, box.offset + box.size]);
    }
    for (const [a, b] of ranges) {
      if (b <= a) continue;
      const data = Buffer.from(await src.read(a, b - a));
      for (const p of patterns) {
        if (data.indexOf(p.bytes) >= 0) {
          issues.push({ path: box.path, what: 'other', bytes: b - a, note: `contains "${p.needle}"` });
        }
      }
      if (ISO6709.test(data.toString('latin1'))) {
        issues.push({ path: box.path, what: 'gps', bytes: b - a, note: 'contains ISO 6709 coordinates' });
      }
    }
  }
}
