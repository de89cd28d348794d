/**
 * ICC profiles in JPEG (APP2 "ICC_PROFILE\0", possibly split over several segments). Promises:
 * reassembles the chunks strictly (sequence numbers 1..n, same count everywhere, no gaps), and
 * answers whether the profile holds only colour tags from an allow-list. Device description
 * tags (dmnd, dmdd), metadata (meta), target data (targ) and private tags are not colour: a
 * profile carrying any of them is dropped whole by the caller.
 */
import { startsWithAscii } from './walker.js';

export const ICC_ID = 'ICC_PROFILE\0';

/** Tags that describe colour only. Text tags (desc, cprt) are checked for identifiers by the residue check. */
const COLOUR_TAGS = new Set([
  'desc', 'cprt', 'wtpt', 'bkpt', 'rXYZ', 'gXYZ', 'bXYZ', 'rTRC', 'gTRC', 'bTRC', 'kTRC', 'chad', 'chrm',
  'lumi', 'meas', 'tech', 'view', 'vued', 'gamt', 'A2B0', 'A2B1', 'A2B2', 'B2A0', 'B2A1', 'B2A2',
  'pre0', 'pre1', 'pre2', 'ncl2', 'clrt', 'clro', 'clot', 'rig0', 'rig2', 'ciis', 'cicp', 'dscm',
  'D2B0', 'D2B1', 'D2B2', 'D2B3', 'B2D0', 'B2D1', 'B2D2', 'B2D3', 'bfd ', 'devs', 'psd0', 'psd1',
  'psd2', 'psd3', 'ps2s', 'ps2i', 'resp', 'scrd', 'scrn', 'calt',
]);

export interface IccVerdict {
  ok: boolean;
  /** Why not ok, or the profile description when ok. */
  note: string;
  tags: string[];
}

export function isIccChunk(p: Uint8Array): boolean {
  return startsWithAscii(p, ICC_ID);
}

/** Reassembles ICC chunks (payloads of APP2 ICC_PROFILE segments, in file order). Returns undefined if inconsistent. */
export function reassembleIcc(chunks: Uint8Array[]): Uint8Array | undefined {
  if (chunks.length === 0 || chunks.length > 255) return undefined;
  const total = chunks[0]![13];
  if (total !== chunks.length) return undefined;
  const parts: Uint8Array[] = new Array(chunks.length);
  for (const c of chunks) {
    if (c.length < 14 || c[13] !== total) return undefined;
    const seq = c[12]!;
    if (seq < 1 || seq > chunks.length || parts[seq - 1] !== undefined) return undefined;
    parts[seq - 1] = c.subarray(14);
  }
  const size = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const u32be = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const sig = (b: Uint8Array, o: number): string => String.fromCharCode(b[o]!, b[o + 1]!, b[o + 2]!, b[o + 3]!);

export function judgeIcc(profile: Uint8Array): IccVerdict {
  if (profile.length < 132) return { ok: false, note: 'profile shorter than its header', tags: [] };
  if (u32be(profile, 0) !== profile.length) return { ok: false, note: 'profile size field does not match its length', tags: [] };
  if (sig(profile, 36) !== 'acsp') return { ok: false, note: 'no acsp signature', tags: [] };
  const n = u32be(profile, 128);
  if (n > 1000 || 132 + n * 12 > profile.length) return { ok: false, note: 'tag table out of range', tags: [] };
  const tags: string[] = [];
  let desc = '';
  for (let i = 0; i < n; i++) {
    const e = 132 + i * 12;
    const t = sig(profile, e);
    const off = u32be(profile, e + 4);
    const size = u32be(profile, e + 8);
    if (off + size > profile.length) return { ok: false, note: `tag ${t} out of range`, tags };
    tags.push(t);
    if (!COLOUR_TAGS.has(t)) return { ok: false, note: `tag '${t}' is not a colour tag`, tags };
    if (t === 'desc' && size > 12) {
      const type = sig(profile, off);
      if (type === 'desc') {
        const l = u32be(profile, off + 8);
        desc = Buffer.from(profile.subarray(off + 12, off + 12 + Math.min(l, size - 12, 200))).toString('latin1').replace(/\0.*$/s, '');
      } else if (type === 'mluc' && size >= 28) {
        const recLen = u32be(profile, off + 20);
        const recOff = u32be(profile, off + 24);
        const s = profile.subarray(off + recOff, off + recOff + (Math.min(recLen, 400) & ~1));
        desc = Buffer.from(s).swap16().toString('utf16le');
      }
    }
  }
  return { ok: true, note: desc, tags };
}
