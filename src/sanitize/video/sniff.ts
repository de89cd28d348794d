/**
 * MP4 or MOV, from a file's first bytes (never its name). It reads nothing itself and never
 * guesses: a head it cannot place is null.
 */
import { fourcc } from './boxes.js';

export type VideoFormat = 'mp4' | 'mov';

export const MP4_BRANDS = new Set([
  'isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6', 'iso7', 'iso8', 'iso9', 'mp41', 'mp42', 'avc1', 'M4V ',
  'M4VP', 'mmp4', 'MSNV', 'XAVC', '3gp4', '3gp5', '3gp6', '3g2a', 'hvc1', 'dash', 'f4v ', 'NDAS',
]);
const QT_FIRST_BOXES = new Set(['moov', 'mdat', 'wide', 'pnot']);

/**
 * 'mp4' or 'mov' from the first bytes of a file (at least 12; more lets it look past leading
 * free/skip/wide boxes), or null. Decided by the `ftyp` major brand (`qt  ` is MOV), then by the
 * compatible brands; a QuickTime file without `ftyp` starts with moov, mdat, wide or pnot.
 */
export function sniffVideo(head: Uint8Array): VideoFormat | null {
  let pos = 0;
  for (let hop = 0; hop < 8 && pos + 8 <= head.length; hop++) {
    const size = (((head[pos] ?? 0) << 24) >>> 0) + ((head[pos + 1] ?? 0) << 16) + ((head[pos + 2] ?? 0) << 8) + (head[pos + 3] ?? 0);
    const type = fourcc(head, pos + 4);
    if (type === 'ftyp') {
      if (size < 16 || pos + 12 > head.length) return null;
      const major = fourcc(head, pos + 8);
      if (major === 'qt  ') return 'mov';
      if (MP4_BRANDS.has(major)) return 'mp4';
      const brands: string[] = [];
      for (let at = pos + 16; at + 4 <= Math.min(head.length, pos + size); at += 4) brands.push(fourcc(head, at));
      if (brands.includes('qt  ')) return 'mov';
      if (brands.some((b) => MP4_BRANDS.has(b))) return 'mp4';
      return null;
    }
    if (QT_FIRST_BOXES.has(type) && size >= 8) return 'mov';
    if ((type === 'free' || type === 'skip') && size >= 8) {
      pos += size;
      continue;
    }
    return null;
  }
  return null;
}

