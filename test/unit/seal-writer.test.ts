// The streaming seal writer (createSealWriter): the sink the pipeline seals the card's bytes and
// the sanitized stream into. Whatever the pieces it is given, it writes exactly what sealBytes
// writes for the whole plaintext (same randomness), hashes the ciphertext it wrote, and leaves
// nothing behind on abort or before finish.
import { describe, expect, test } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { createSealWriter, openBytes, publishSealed, sealBytes, sealedSize, CHUNK_SIZE } from '../../src/seal/index.js';
import { generateKey } from '../../src/seal/keys.js';
import { deterministicBytes, deterministicRandom } from '../../src/seal/det-random.js';

const alice = generateKey('recipient', deterministicRandom('alice'));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** `total` bytes cut into pieces of the sizes in `cuts`, repeated. */
function pieces(plain: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0, i = 0; off < plain.length; i++) {
    const n = Math.min(cuts[i % cuts.length]!, plain.length - off);
    out.push(plain.subarray(off, off + n));
    off += n;
  }
  return out;
}

describe('createSealWriter', () => {
  const sizes = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 17, (1 << 20) + 5, 17 * CHUNK_SIZE];
  const cutsList = [[1 << 20], [CHUNK_SIZE], [CHUNK_SIZE + 1], [1000, 70_000, 3], [7]];
  for (const size of sizes) {
    for (const cuts of cutsList) {
      if (cuts[0] === 7 && size > 3 * CHUNK_SIZE + 17) continue; // byte-sized pieces: small inputs only
      test(`${size} bytes in pieces of ${cuts.join('/')}: the bytes sealBytes writes`, async () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-sw-'));
        const plain = deterministicBytes(`p${size}`, size);
        const dst = path.join(dir, 'out');
        const w = await createSealWriter(dst, [alice.publicKey], { random: deterministicRandom('seal') });
        for (const p of pieces(plain, cuts)) {
          // The writer must not keep a reference to the caller's buffer: scribble over it after.
          const copy = Buffer.from(p);
          await w.write(copy);
          copy.fill(0xaa);
        }
        expect(existsSync(dst)).toBe(false);
        const r = await w.finish();
        const written = readFileSync(dst);
        expect(Buffer.compare(written, Buffer.from(sealBytes(plain, [alice.publicKey], { random: deterministicRandom('seal') })))).toBe(0);
        expect(r).toEqual({ sha256: sha(written), size: written.length });
        expect(written.length).toBe(sealedSize(size, 1));
        expect(Buffer.compare(Buffer.from(openBytes(written, [alice])), Buffer.from(plain))).toBe(0);
        expect(readdirSync(dir)).toEqual(['out']);
      });
    }
  }

  test('abort removes the partial file and never creates the destination', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-sw-'));
    const dst = path.join(dir, 'out');
    const w = await createSealWriter(dst, [alice.publicKey]);
    await w.write(Buffer.alloc(3 * (1 << 20), 1));
    expect(readdirSync(dir).length).toBe(1); // the temp file
    await w.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  test('defer: finish leaves the sealed file under its temporary name; publishSealed puts it in place', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-sw-'));
    const dst = path.join(dir, 'out');
    const plain = deterministicBytes('defer', 3 * CHUNK_SIZE + 5);
    const w = await createSealWriter(dst, [alice.publicKey], { random: deterministicRandom('seal'), defer: true });
    await w.write(plain);
    const r = await w.finish();
    expect(existsSync(dst)).toBe(false);
    expect(r.pending && path.dirname(r.pending)).toBe(dir);
    const held = readFileSync(r.pending!);
    expect(r).toEqual({ sha256: sha(held), size: held.length, pending: r.pending });
    await publishSealed(r.pending!, dst);
    expect(readdirSync(dir)).toEqual(['out']);
    expect(Buffer.compare(readFileSync(dst), Buffer.from(sealBytes(plain, [alice.publicKey], { random: deterministicRandom('seal') })))).toBe(0);
  });

  test('publishSealed of a file that is gone fails with E_SEAL_IO and leaves the destination absent', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-sw-'));
    const dst = path.join(dir, 'out');
    await expect(publishSealed(path.join(dir, 'missing.tmp'), dst)).rejects.toMatchObject({ code: 'E_SEAL_IO' });
    expect(existsSync(dst)).toBe(false);
  });
});
