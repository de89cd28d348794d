// The error-code catalogue (src/error-codes.ts): every code kluis raises is listed with its exit
// code and meaning, a misspelt code does not compile, and `kluis` exits with the listed code.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { expect, test } from 'vitest';
import { ERROR_CODES, EXIT, WARNING_CODES, isErrorCode } from '../../src/error-codes.js';
import { KluisError, asKluisError, exitCodeFor } from '../../src/errors.js';

const SRC = path.resolve(__dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every E_/W_ code written in src/ is in the catalogue, or is a group prefix tested with startsWith', () => {
  const listed = new Set([...Object.keys(ERROR_CODES), ...Object.keys(WARNING_CODES)]);
  const prefixes = new Set<string>();
  const unlisted: string[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/['"`]([EW]_[A-Z0-9_]+)['"`]/g)) {
      const code = m[1]!;
      if (listed.has(code)) continue;
      // A group name (E_EGRESS, E_KEY_, …) is fine when some listed code starts with it.
      if ([...listed].some((c) => c.startsWith(code.endsWith('_') ? code : `${code}_`))) prefixes.add(code);
      else unlisted.push(`${path.relative(SRC, file)}: ${code}`);
    }
  }
  expect(unlisted).toEqual([]);
  expect(prefixes.size).toBeGreaterThan(0);
});

test('each catalogue entry has a one-line meaning and one of the documented exit codes', () => {
  const exits = new Set<number>(Object.values(EXIT));
  for (const [code, e] of Object.entries(ERROR_CODES)) {
    expect(code).toMatch(/^E_[A-Z0-9_]+$/);
    expect(exits.has(e.exit), code).toBe(true);
    expect(e.exit, code).not.toBe(EXIT.ok);
    expect(e.meaning.length, code).toBeGreaterThan(10);
    expect(e.meaning, code).not.toMatch(/\n/);
  }
  for (const [code, meaning] of Object.entries(WARNING_CODES)) {
    expect(code).toMatch(/^W_[A-Z0-9_]+$/);
    expect(meaning).not.toMatch(/\n/);
  }
});

test('the exit code of an error is the one its catalogue entry lists', () => {
  // The exit codes scripts rely on, as they were before the catalogue (grouped by prefix then).
  const expected: Array<[keyof typeof ERROR_CODES, number]> = [
    ['E_USAGE', 2], ['E_OUTPUT_EXISTS', 2], ['E_VERIFY_MISMATCH', 4], ['E_SEAL_PAYLOAD', 4], ['E_MANIFEST_SIGNATURE', 4],
    ['E_VERIFY_MISSING', 5], ['E_AUDIT_MISSING', 5], ['E_VERIFY_UNCHECKED', 6], ['E_CONFIG_UNSIGNED', 7], ['E_SEAL_RECIPIENTS', 7],
    ['E_TARGET_NOT_ALLOWED', 8], ['E_EGRESS_VENDOR', 8], ['E_POLICY_WIPE', 8], ['E_KEY_PARSE', 9], ['E_SEAL_NO_RECIPIENT', 9],
    ['E_CARD_READ', 10], ['E_SANITIZE_RESIDUE', 10], ['E_SEAL_HEADER', 10], ['E_MHL_ROOT', 10], ['E_DISK_FULL', 11],
    ['E_AUDIT_WRITE', 11], ['E_INTERNAL', 70], ['E_SEAL_IMPL', 70], ['E_TARGET_IO', 1], ['E_STATION_BUSY', 1],
  ];
  for (const [code, exit] of expected) {
    expect(ERROR_CODES[code].exit, code).toBe(exit);
    expect(exitCodeFor(new KluisError(code, 'm')), code).toBe(exit);
  }
  expect(exitCodeFor(new Error('not ours'))).toBe(EXIT.internal);
  expect(exitCodeFor(asKluisError(Object.assign(new Error('full'), { code: 'ENOSPC' })))).toBe(EXIT.storage);
  expect(isErrorCode('E_CARD_READ')).toBe(true);
  expect(isErrorCode('E_CARD_RAED')).toBe(false);
  expect(isErrorCode('toString')).toBe(false);
});

test('a code that is not in the catalogue does not compile', () => {
  // Checked by `tsc -p tsconfig.test.json` (part of `npm test`): if the misspelt code were
  // accepted, the @ts-expect-error below would itself be an error.
  // @ts-expect-error E_CARD_RAED is not a listed code
  const e = new KluisError('E_CARD_RAED', 'typo');
  expect(e.code).toBe('E_CARD_RAED');
  // @ts-expect-error the fallback code of asKluisError is checked too
  expect(asKluisError(new Error('x'), 'E_NOPE').code).toBe('E_NOPE');
});
