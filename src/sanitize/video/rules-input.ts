/**
 * The allow-list applied to the INPUT (`inventoryInput`): every structure that is not on the list,
 * or whose value is not neutral, is listed as removed, with its path, size and class (gps, serial,
 * ...), and the strings it carried become extra needles for the output scan. It reads payloads
 * only of small boxes (capped) and never of `mdat`. It decides nothing about which tracks to keep:
 * the caller names them.
 */
import { KluisError } from '../../errors.js';
import type { RemovedItem } from '../types.js';
import { allBoxes, readPayload, showType, type Box, type BoxTree, type ByteSource } from './boxes.js';
import { isAllZero, latin1, printableRuns, u32 } from './box-text.js';
import { CLASS_BY_TYPE, ISO6709, MAX_LEAF, NEUTRAL_HANDLER_NAMES, XMP_UUID } from './rules.js';
import { checkTimes, checkTrak, trackInfo, type Issue } from './rules-apply.js';

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
