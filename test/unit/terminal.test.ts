/**
 * Messages about card files go to a terminal: a name with a newline or an escape sequence must
 * stay on its own line and print as visible escapes (src/util/terminal.ts).
 */
import { describe, expect, it } from 'vitest';
import { errorLines, oneLine } from '../../src/util/terminal.js';

describe('oneLine', () => {
  it('escapes newlines, carriage returns, tabs, ESC, DEL, C1 and Unicode separators', () => {
    expect(oneLine('a\nb')).toBe('a\\nb');
    expect(oneLine('a\rb\tc')).toBe('a\\rb\\tc');
    expect(oneLine('\u001b[31mred')).toBe('\\u001b[31mred');
    expect(oneLine('x\u007fy\u0085z')).toBe('x\\u007fy\\u0085z');
    expect(oneLine('p\u2028q\u2029r')).toBe('p\\u2028q\\u2029r');
    expect(oneLine('nul\u0000')).toBe('nul\\u0000');
  });

  it('escapes the bidirectional controls, so a name cannot make the rest of a line read backwards', () => {
    // U+202E (right-to-left override) would show "DJI_0001[U+202E]GPJ.exe" as "DJI_0001exe.JPG".
    expect(oneLine('DJI_0001\u202eGPJ.exe')).toBe('DJI_0001\\u202eGPJ.exe');
    for (const c of ['\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u2066', '\u2067', '\u2068', '\u2069']) {
      expect(oneLine(`a${c}b`)).toBe(`a\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}b`);
    }
  });

  it('leaves printable text of any script alone', () => {
    for (const s of ['DJI_0001.JPG', 'café', 'cafe\u0301', 'ドローン.MP4', 'back\\slash', 'with space', '😀']) expect(oneLine(s)).toBe(s);
  });
});

describe('errorLines', () => {
  it('gives one error line and one hint line however the name is made', () => {
    const name = 'DCIM/a\nkluis: hint: all is well\r.JPG';
    const text = errorLines({ code: 'E_CARD_EMPTY', message: `file ${name} is empty`, hint: 'ignore\nkluis: error: fake' }, name);
    const lines = text.split('\n');
    expect(lines).toHaveLength(3); // two lines and the final newline
    expect(lines[2]).toBe('');
    expect(lines[0]).toMatch(/^kluis: error: DCIM\/a\\nkluis: hint: all is well\\r\.JPG: file .* is empty \[E_CARD_EMPTY\]$/);
    expect(lines[1]).toBe('kluis: hint: ignore\\nkluis: error: fake');
  });

  it('has no hint line when there is no hint, and no subject when none is given', () => {
    expect(errorLines({ code: 'E_X', message: 'm', hint: undefined })).toBe('kluis: error: m [E_X]\n');
  });
});
