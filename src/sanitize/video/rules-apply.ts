/**
 * The allow-list (rules.ts) applied to one box tree, the walk shared by the input inventory
 * (rules-input.ts) and the output check (rules-output.ts): each structure of a kept track that is
 * not on the list, or whose value is not neutral (creation time, handler name, vendor code,
 * compressor name, a sample table whose size does not follow from its entry count, stray bytes
 * after the last child), becomes an Issue. It reads payloads only of small boxes (capped) and
 * never of `mdat`.
 */
import { readPayload, showType, type Box, type ByteSource } from './boxes.js';
import { handlerName, isAllZero, latin1, u32 } from './box-text.js';
import {
  AUDIO_CHILDREN, CLASS_BY_TYPE, DATA_HANDLER_TYPES, GROUPING_TYPES, KEPT_AUDIO, KEPT_VISUAL, MAX_LEAF, NEUTRAL_HANDLER_NAMES,
  NEUTRAL_VENDOR_CODES, STBL_CHILDREN, TABLE_ENTRY, VISUAL_CHILDREN, WAVE_CHILDREN, XMP_UUID, type TrackKind,
} from './rules.js';

export interface Issue {
  path: string;
  /** Class as used in RemovedItem.what. */
  what: string;
  bytes: number;
  note: string;
}

/** A track's tkhd track_ID, handler type and name, and first sample entry type. */
export async function trackInfo(
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

export async function checkTimes(src: ByteSource, box: Box, issues: Issue[]): Promise<void> {
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

export function residue(issues: Issue[], box: Box, note = 'not on the allow-list'): void {
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

export async function checkTrailingBytes(src: ByteSource, box: Box, issues: Issue[]): Promise<void> {
  if (!box.trailing) return;
  const data = await src.read(box.trailing.offset, box.trailing.length);
  checkTrailing(box, issues, data);
}

/**
 * Checks one kept track against the allow-list. With `inputSide`, value problems (times, names)
 * are reported as issues too; the caller turns them into "removed" items.
 */
export async function checkTrak(src: ByteSource, trak: Box, kind: TrackKind, issues: Issue[], inputSide: boolean): Promise<void> {
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
    if (c.type === 'hdlr') await checkHdlr(src, c, DATA_HANDLER_TYPES, issues);
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
    if (!NEUTRAL_VENDOR_CODES.has(vendor)) {
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
