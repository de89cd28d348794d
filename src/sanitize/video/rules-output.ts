/**
 * The allow-list applied to the OUTPUT (`checkOutputBoxes`): every structure that is not on the
 * list, every non-neutral value (non-zero creation time, handler name, compressor name, non-zero
 * padding) and every needle found outside `mdat` and the fixed-size sample tables is a finding.
 * An empty list of findings is the only pass. It reads payloads only of small boxes (capped) and
 * never of `mdat`.
 */
import { allBoxes, readPayload, showType, type Box, type BoxTree, type ByteSource } from './boxes.js';
import { handlerName, isAllZero } from './box-text.js';
import { DEFAULT_NEEDLES, EXACT_TABLES, ISO6709, MAX_LEAF, type TrackKind } from './rules.js';
import { checkTimes, checkTrailingBytes, checkTrak, residue, trackInfo, type Issue } from './rules-apply.js';

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
