// Runs every vector in test/vectors/seal-v1.json through both implementations, whole and
// streamed in small pieces, and checks that regenerating the vectors gives identical bytes.
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { KluisError } from '../../src/errors.js';
import { openBytes, openStream, sealBytes } from '../../src/seal/index.js';
import { parsePublicKey, parseSecretKey } from '../../src/seal/keys.js';
import { deterministicBytes, deterministicRandom } from '../../src/seal/det-random.js';
import { vectorsJson, type VectorFile } from '../../src/seal/vectors.js';
import type { ImplName } from '../../src/seal/primitives.js';

const file = fileURLToPath(new URL('../vectors/seal-v1.json', import.meta.url));
const text = readFileSync(file, 'utf8');
const doc = JSON.parse(text) as VectorFile;
const IMPLS: ImplName[] = ['sodium', 'tweetnacl'];
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function outcome(fn: () => Uint8Array): { ok: true; size: number; sha256: string } | { error: string } {
  try {
    const p = fn();
    return { ok: true, size: p.length, sha256: sha(p) };
  } catch (err) {
    if (err instanceof KluisError) return { error: err.code };
    throw err;
  }
}

async function streamOutcome(sealed: Buffer, ids: ReturnType<typeof parseSecretKey>[], impl: ImplName) {
  const pieces: Buffer[] = [];
  for (let off = 0; off < sealed.length; off += 4093) pieces.push(sealed.subarray(off, off + 4093));
  const parts: Buffer[] = [];
  try {
    for await (const c of openStream(Readable.from(pieces), ids, { impl })) parts.push(c as Buffer);
  } catch (err) {
    if (err instanceof KluisError) return { error: err.code };
    throw err;
  }
  const p = Buffer.concat(parts);
  return { ok: true as const, size: p.length, sha256: sha(p) };
}

describe('seal-v1 vectors', () => {
  test('the file is small and covers the required cases', () => {
    expect(text.length).toBeLessThan(1024 * 1024);
    const names = doc.vectors.map((v) => v.name);
    for (const n of ['empty', 'exactly-one-chunk', 'one-byte-over', 'several-chunks', 'missing-last-chunk', 'reordered-chunks',
      'flip-magic', 'flip-version', 'flip-newline', 'flip-count-to-zero', 'flip-ephemeral-key', 'flip-wrapped-key', 'flip-nonce-prefix',
      'flip-header-mac', 'trailing-after-full-last', 'removed-stanza-remaining', 'wrong-recipient', 'two-recipients-first', 'two-recipients-second']) {
      expect(names).toContain(n);
    }
    expect(new Set(names).size).toBe(names.length);
  });

  for (const v of doc.vectors) {
    test.each(IMPLS)(`${v.name} (%s): ${JSON.stringify(v.expect).slice(0, 60)}`, async (impl) => {
      const ids = v.identities.map((s) => parseSecretKey(s, 'recipient'));
      const sealed = Buffer.from(v.sealed, 'base64');
      expect(outcome(() => openBytes(sealed, ids, { impl }))).toEqual(v.expect);
      expect(await streamOutcome(sealed, ids, impl)).toEqual(v.expect);
      if (v.reproduce) {
        const plain = deterministicBytes(doc.plaintextSeed, v.reproduce.plaintextSize);
        const again = sealBytes(plain, v.reproduce.recipients.map((r) => parsePublicKey(r, 'recipient')), { impl, random: deterministicRandom(v.reproduce.randomSeed) });
        expect(Buffer.from(again).equals(sealed)).toBe(true);
      }
    });
  }

  test('regenerating the vectors gives identical bytes', () => {
    expect(vectorsJson() === text).toBe(true);
  });
});
