// The card read (readCardFile): one read per file hashes it, seals the original and writes the
// working copy; a file that changes while it is read is read again until one read saw it
// unchanged, and one that never settles is E_CARD_CHANGED with nothing left behind.
import { describe, expect, test } from 'vitest';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { readCardFile, READ_CHUNK } from '../../src/card/acquire.js';
import { openBytes } from '../../src/seal/index.js';
import { generateKey } from '../../src/seal/keys.js';
import { deterministicBytes, deterministicRandom } from '../../src/seal/det-random.js';
import { KluisError } from '../../src/errors.js';

const alice = generateKey('recipient', deterministicRandom('alice'));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function setup(size: number): { card: string; spool: string; file: string; bytes: Buffer } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kluis-acq-'));
  const card = path.join(root, 'card');
  const spool = path.join(root, 'spool');
  mkdirSync(card);
  mkdirSync(spool);
  const bytes = Buffer.from(deterministicBytes(`card${size}`, size));
  const file = path.join(card, 'DJI_0001.MP4');
  writeFileSync(file, bytes);
  return { card, spool, file, bytes };
}

describe('readCardFile', () => {
  test('one read: hashes, a sealed original that opens to the card bytes, and the working copy', async () => {
    const { spool, file, bytes } = setup(3 * READ_CHUNK + 12345);
    const r = await readCardFile(file, {
      expectSize: bytes.length,
      workingCopy: path.join(spool, 'copy'),
      seal: { dst: path.join(spool, 'orig'), recipients: [alice.publicKey] },
    });
    expect(r).toMatchObject({ sha256: sha(bytes), size: bytes.length, attempts: 1 });
    expect(r.xxh128).toMatch(/^[0-9a-f]{32}$/);
    const sealed = readFileSync(path.join(spool, 'orig'));
    expect(r.sealed).toEqual({ sha256: sha(sealed), size: sealed.length });
    expect(sha(openBytes(sealed, [alice]))).toBe(sha(bytes));
    expect(sha(readFileSync(path.join(spool, 'copy')))).toBe(sha(bytes));
    expect(readdirSync(spool).sort()).toEqual(['copy', 'orig']);
  });

  test('a file that grows during the first read is read again, and what is kept is the settled file', async () => {
    const { spool, file, bytes } = setup(2 * READ_CHUNK + 10);
    const more = Buffer.from(deterministicBytes('more', 70_000));
    let grown = false;
    const r = await readCardFile(file, {
      expectSize: bytes.length,
      workingCopy: path.join(spool, 'copy'),
      seal: { dst: path.join(spool, 'orig'), recipients: [alice.publicKey] },
      retryDelayMs: 1,
      onChunk: () => {
        if (!grown) {
          grown = true;
          appendFileSync(file, more);
        }
      },
    });
    const now = Buffer.concat([bytes, more]);
    expect(r.attempts).toBe(2);
    expect(r.size).toBe(now.length);
    expect(r.sha256).toBe(sha(now));
    expect(sha(openBytes(readFileSync(path.join(spool, 'orig')), [alice]))).toBe(sha(now));
    expect(sha(readFileSync(path.join(spool, 'copy')))).toBe(sha(now));
    expect(readdirSync(spool).sort()).toEqual(['copy', 'orig']);
  });

  test('a file that never stops growing is E_CARD_CHANGED after the last read, and leaves nothing in the spool', async () => {
    const { spool, file, bytes } = setup(READ_CHUNK + 10);
    let reads = 0;
    const err = await readCardFile(file, {
      expectSize: bytes.length,
      workingCopy: path.join(spool, 'copy'),
      seal: { dst: path.join(spool, 'orig'), recipients: [alice.publicKey] },
      maxAttempts: 3,
      retryDelayMs: 1,
      onChunk: (attempt) => {
        reads = attempt;
        appendFileSync(file, 'x');
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KluisError);
    expect((err as KluisError).code).toBe('E_CARD_CHANGED');
    expect((err as KluisError).message).toMatch(/3 reads/);
    expect(reads).toBe(3);
    expect(readdirSync(spool)).toEqual([]);
  });

  test('a file written faster than it is read does not keep a read going: each read stops past the size it had when opened', async () => {
    const { spool, file, bytes } = setup(2 * READ_CHUNK);
    let appended = 0;
    const err = await readCardFile(file, {
      expectSize: bytes.length,
      workingCopy: path.join(spool, 'copy'),
      maxAttempts: 2,
      retryDelayMs: 1,
      onChunk: () => {
        // Two chunks more for every chunk read: a read to the end would never end.
        appendFileSync(file, Buffer.alloc(2 * READ_CHUNK));
        appended += 2 * READ_CHUNK;
      },
    }).catch((e: unknown) => e);
    expect((err as KluisError).code).toBe('E_CARD_CHANGED');
    // Read 1 took the 2 chunks the file had when opened (4 MiB appended, 6 MiB now), read 2 the 6
    // it had then (12 MiB more): each read ended at its size when opened, not at a moving end.
    expect(appended).toBe(16 * READ_CHUNK);
    expect(readdirSync(spool)).toEqual([]);
  });

  test('a file replaced by another one of the same size while read is read again', async () => {
    const { spool, file, bytes } = setup(2 * READ_CHUNK);
    const other = Buffer.from(deterministicBytes('other', bytes.length));
    let swapped = false;
    const r = await readCardFile(file, {
      expectSize: bytes.length,
      workingCopy: path.join(spool, 'copy'),
      retryDelayMs: 1,
      onChunk: () => {
        if (swapped) return;
        swapped = true;
        const tmp = `${file}.new`;
        writeFileSync(tmp, other);
        renameSync(tmp, file);
      },
    });
    expect(r.attempts).toBe(2);
    expect(r.sha256).toBe(sha(other));
  });
});
