/**
 * Card paths for names that are bytes. A file system name is a byte string; a card path is text
 * (JSON, SQLite, the report, the manifest). `cardName` maps each name to text so that different
 * names always stay different and the bytes can be recovered (`cardNameBytes`, `cardFsPath`):
 *
 * - a name that is valid UTF-8 is kept exactly, unless it contains the text `\x` followed by two
 *   hex digits;
 * - such a name, and any name that is not valid UTF-8, is escaped: every backslash is doubled and
 *   every byte that is not part of a valid UTF-8 sequence becomes `\xHH` (lower-case hex).
 *
 * An escaped name always contains `\x` + two hex digits and a kept one never does, and each rule
 * is one-to-one, so the mapping is one-to-one. Never: folds two names into one, or changes a
 * valid UTF-8 name without that mark (NFC and NFD spellings stay distinct).
 */
import * as path from 'node:path';

/** The text `\x` and two hex digits: marks a card path name as escaped. */
const ESCAPE_MARK = /\\x[0-9a-fA-F]{2}/;

/** Length of the valid UTF-8 sequence starting at b[i], or 0 when none starts there. */
function utf8SeqLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number): boolean => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 > 0x9f) return 0; // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0; // overlong
    if (c === 0xf4 && c1 > 0x8f) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}

/** The card path name of a directory entry's raw name (see the module comment). */
export function cardName(raw: Buffer): string {
  let valid = true;
  for (let i = 0; i < raw.length; ) {
    const n = utf8SeqLength(raw, i);
    if (n === 0) {
      valid = false;
      break;
    }
    i += n;
  }
  if (valid) {
    const text = raw.toString('utf8');
    if (!ESCAPE_MARK.test(text)) return text;
  }
  let out = '';
  for (let i = 0; i < raw.length; ) {
    const n = utf8SeqLength(raw, i);
    if (n === 0) {
      out += `\\x${raw[i]!.toString(16).padStart(2, '0')}`;
      i += 1;
    } else {
      const ch = raw.subarray(i, i + n).toString('utf8');
      out += ch === '\\' ? '\\\\' : ch;
      i += n;
    }
  }
  return out;
}

/** The raw name bytes of a card path name: the inverse of cardName. */
export function cardNameBytes(name: string): Buffer {
  if (!ESCAPE_MARK.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let text = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (ch !== '\\') {
      text += ch;
      continue;
    }
    const next = name[i + 1];
    if (next === '\\') {
      text += '\\';
      i += 1;
    } else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(name.slice(i + 2, i + 4))) {
      parts.push(Buffer.from(text, 'utf8'), Buffer.from([parseInt(name.slice(i + 2, i + 4), 16)]));
      text = '';
      i += 3;
    } else {
      text += ch; // not an escape cardName makes; kept as it is
    }
  }
  parts.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(parts);
}

/** A child of `dir` for fs calls: a string while every name is UTF-8 text, else bytes. */
export function joinFs(dir: string | Buffer, raw: Buffer): string | Buffer {
  if (typeof dir === 'string' && utf8Exact(raw)) return path.join(dir, raw.toString('utf8'));
  return Buffer.concat([typeof dir === 'string' ? Buffer.from(dir, 'utf8') : dir, Buffer.from(path.sep), raw]);
}

function utf8Exact(raw: Buffer): boolean {
  return Buffer.from(raw.toString('utf8'), 'utf8').equals(raw);
}

/**
 * The path for fs calls of the card file at `cardPath` (as inventory gave it) below the card
 * folder `cardRoot`: a string, or the exact bytes when a name on the way is not UTF-8.
 */
export function cardFsPath(cardRoot: string, cardPath: string): string | Buffer {
  let p: string | Buffer = cardRoot;
  for (const name of cardPath.split('/')) p = joinFs(p, cardNameBytes(name));
  return p;
}
