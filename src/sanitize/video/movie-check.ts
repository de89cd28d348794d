/**
 * What an independent parser (mp4box.js, src/wrappers/mp4box.ts) must not find in the movie header
 * of a file kluis's rewriter wrote: tracks other than the kept ones (in number, kind or codec), a
 * box outside the allow-list of rules.ts at its place in the tree (so udta, meta, ilst, uuid,
 * tref, chapters or anything our own walker might have misread), a handler name that says who
 * wrote the file, a brand carrying a needle, or any complaint of mp4box's parser. An empty list
 * is the only pass. It decides only from the view; it reads nothing itself.
 */
import type { MovieView } from '../../wrappers/mp4box.js';
import { codecFamily, keptFamily } from './codecs.js';
import {
  AUDIO_CHILDREN, DATA_HANDLER_TYPES, KEPT_AUDIO, KEPT_VISUAL, NEUTRAL_HANDLER_NAMES, STBL_CHILDREN, VISUAL_CHILDREN, WAVE_CHILDREN,
  type TrackKind,
} from './rules.js';

const CHILDREN: Record<string, ReadonlySet<string>> = {
  '': new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide']),
  moov: new Set(['mvhd', 'trak']),
  trak: new Set(['tkhd', 'edts', 'mdia']),
  edts: new Set(['elst']),
  mdia: new Set(['mdhd', 'hdlr', 'minf']),
  minf: new Set(['vmhd', 'smhd', 'hdlr', 'dinf', 'stbl']),
  dinf: new Set(['dref']),
  dref: DATA_HANDLER_TYPES,
  stbl: STBL_CHILDREN,
  stsd: new Set([...KEPT_VISUAL, ...KEPT_AUDIO]),
  wave: WAVE_CHILDREN,
};

const KIND_BY_HANDLER: Record<string, TrackKind> = { vide: 'video', soun: 'audio' };

// QuickTime ends the atoms of a sound description's `wave` with an 8-byte terminator of type 0,
// which rules.ts lets through (WAVE_CHILDREN) and mp4box's parser reports as an invalid box type.
const TERMINATOR = "BoxParser: Invalid box type: '\0\0\0\0'";

function allowedUnder(parent: string): ReadonlySet<string> | undefined {
  if (KEPT_VISUAL.has(parent)) return VISUAL_CHILDREN;
  if (KEPT_AUDIO.has(parent)) return AUDIO_CHILDREN;
  return CHILDREN[parent];
}

/** The object type an RFC 6381 codec string gives for mp4a/mp4v ("mp4a.40.2" → 0x40), else null. */
function objectType(codec: string): number | null {
  const m = /^mp4[av]\.([0-9a-fA-F]{1,2})(\.|$)/.exec(codec);
  return m ? parseInt(m[1]!, 16) : null;
}

export function movieFindings(view: MovieView, kept: ReadonlyArray<{ kind: TrackKind; codec: string }>, needles: readonly string[]): string[] {
  const hasWave = view.boxes.some((p) => p.endsWith('/wave'));
  const found = view.complaints.filter((c) => !(hasWave && c === TERMINATOR)).map((c) => `parser: ${JSON.stringify(c)}`);
  for (const p of view.boxes) {
    const parts = p.split('/');
    const type = parts[parts.length - 1]!;
    const allowed = allowedUnder(parts.length > 1 ? parts[parts.length - 2]! : '');
    if (!allowed?.has(type)) found.push(`box ${p}`);
  }
  if (view.tracks.length !== kept.length) found.push(`${view.tracks.length} tracks where ${kept.length} were kept`);
  view.tracks.forEach((t, i) => {
    const k = kept[i];
    const kind = KIND_BY_HANDLER[t.handlerType];
    if (!k || kind !== k.kind) found.push(`track ${t.id} is ${kind ?? JSON.stringify(t.handlerType)}, not the kept ${k ? k.kind : 'nothing'}`);
    if (t.entries.length === 0) found.push(`track ${t.id} has no sample description`);
    for (const e of t.entries) {
      const family = codecFamily(e.type, objectType(e.codec));
      if (!k || family !== keptFamily(k.codec)) found.push(`track ${t.id} sample entry ${e.type} is ${family}, not the kept ${k ? k.codec : 'nothing'}`);
    }
    if (!NEUTRAL_HANDLER_NAMES.has(t.handlerName)) found.push(`track ${t.id} handler name ${JSON.stringify(t.handlerName.slice(0, 60))}`);
  });
  for (const b of view.brands) for (const n of needles) if (n.length >= 3 && b.includes(n)) found.push(`brand ${JSON.stringify(b)} contains "${n}"`);
  return found;
}
