/**
 * Card names that are bytes (issue 15, item 12; src/card/names.ts and src/card/inventory.ts).
 * Two names that differ only in bytes that are not UTF-8 used to collapse into one record
 * (both read as U+FFFD). Here: the mapping keeps valid UTF-8 names exactly, escapes the rest
 * reversibly, is one-to-one over a seeded set of hostile byte strings, and the inventory of a
 * real folder lists every file, hidden ones at the root included, each openable by its fsPath.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cardFsPath, cardName, cardNameBytes } from '../../src/card/names.js';
import { inventory } from '../../src/card/inventory.js';

const b = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('cardName', () => {
  it('keeps valid UTF-8 names exactly', () => {
    for (const n of ['DJI_0001.JPG', 'caf\u00e9.JPG', 'cafe\u0301.JPG', 'back\\slash.JPG', 'new\nline', '..foo', '\ufffd.JPG', '😀', 'x\\y\\z', '\\X41']) {
      expect(cardName(Buffer.from(n, 'utf8')), n).toBe(n);
    }
  });

  it('escapes bytes that are not UTF-8 as \\xHH, and doubles backslashes then', () => {
    expect(cardName(b('DJI_', [0xff], '.JPG'))).toBe('DJI_\\xff.JPG');
    expect(cardName(b('DJI_', [0xfe], '.JPG'))).toBe('DJI_\\xfe.JPG');
    expect(cardName(b('a\\b', [0x80]))).toBe('a\\\\b\\x80');
    expect(cardName(b([0xc3]))).toBe('\\xc3'); // a lead byte without its continuation
    expect(cardName(b([0xc0, 0xaf]))).toBe('\\xc0\\xaf'); // overlong '/'
    expect(cardName(b([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80'); // an encoded surrogate
    expect(cardName(b('caf\u00e9', [0xff]))).toBe('caf\u00e9\\xff'); // valid sequences kept
  });

  it('escapes a valid name that already holds the mark, so it cannot pose as an escaped one', () => {
    expect(cardName(Buffer.from('DJI_\\xff.JPG'))).toBe('DJI_\\\\xff.JPG');
    expect(cardNameBytes('DJI_\\\\xff.JPG').toString('utf8')).toBe('DJI_\\xff.JPG');
    expect(cardNameBytes('DJI_\\xff.JPG').equals(b('DJI_', [0xff], '.JPG'))).toBe(true);
  });

  it('is one-to-one and reversible over seeded hostile byte strings', () => {
    const r = rng(0x6e616d65);
    const alphabet = [0x5c, 0x78, 0x41, 0x66, 0x30, 0x2e, 0x80, 0xbf, 0xc3, 0xa9, 0xed, 0xa0, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0xfe, 0x0a, 0x4a];
    const seen = new Map<string, string>();
    for (let i = 0; i < 20000; i++) {
      const len = 1 + Math.floor(r() * 8);
      const raw = Buffer.from(Array.from({ length: len }, () => alphabet[Math.floor(r() * alphabet.length)]!));
      const name = cardName(raw);
      expect(cardNameBytes(name).equals(raw), `${raw.toString('hex')} -> ${name}`).toBe(true);
      const prev = seen.get(name);
      if (prev !== undefined) expect(prev, `two names map to ${name}`).toBe(raw.toString('hex'));
      seen.set(name, raw.toString('hex'));
    }
  });
});

describe('inventory of names that are not UTF-8, and of hidden entries at the root', () => {
  it('lists every file under a distinct name, each readable through its fsPath and cardFsPath', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'kluis-names-'));
    const media = path.join(root, 'DCIM', '100MEDIA');
    mkdirSync(media, { recursive: true });
    const odd = Buffer.concat([Buffer.from(media + path.sep), b([0xff], 'DIR')]);
    mkdirSync(odd);
    writeFileSync(Buffer.concat([Buffer.from(media + path.sep), b('DJI_', [0xff], '.JPG')]), 'ff');
    writeFileSync(Buffer.concat([Buffer.from(media + path.sep), b('DJI_', [0xfe], '.JPG')]), 'fe');
    writeFileSync(Buffer.concat([odd, b(path.sep, 'in', [0xfe])]), 'nested');
    mkdirSync(path.join(root, '.Trashes', '501'), { recursive: true });
    writeFileSync(path.join(root, '.Trashes', '501', 'DJI_0009.JPG'), 'deleted');
    writeFileSync(path.join(root, '.hidden'), 'dot');
    mkdirSync(path.join(root, 'System Volume Information'));
    writeFileSync(path.join(root, 'System Volume Information', 'IndexerVolumeGuid'), 'guid');

    const entries = await inventory(root);
    expect(entries.map((e) => e.path)).toEqual(
      [
        '.Trashes/501/DJI_0009.JPG',
        '.hidden',
        'DCIM/100MEDIA/DJI_\\xfe.JPG',
        'DCIM/100MEDIA/DJI_\\xff.JPG',
        'DCIM/100MEDIA/\\xffDIR/in\\xfe',
        'System Volume Information/IndexerVolumeGuid',
      ].sort(),
    );
    const content = new Map([
      ['DCIM/100MEDIA/DJI_\\xff.JPG', 'ff'],
      ['DCIM/100MEDIA/DJI_\\xfe.JPG', 'fe'],
      ['DCIM/100MEDIA/\\xffDIR/in\\xfe', 'nested'],
      ['.Trashes/501/DJI_0009.JPG', 'deleted'],
    ]);
    for (const e of entries) {
      expect(e.rejected, e.path).toBeUndefined();
      const want = content.get(e.path);
      if (want === undefined) continue;
      expect(readFileSync(e.fsPath, 'utf8'), e.path).toBe(want);
      expect(readFileSync(cardFsPath(root, e.path), 'utf8'), e.path).toBe(want);
    }
    expect(typeof cardFsPath(root, 'DCIM/100MEDIA/x.JPG')).toBe('string');
  });
});
