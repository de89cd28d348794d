// Unit and property tests of the sealed format (docs/format.md): round trips in both
// implementations, byte-identical output, and rejection of every kind of damage with its code.
import { describe, expect, test } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { KluisError } from '../../src/errors.js';
import { openBytes, openStream, openToFile, sealBytes, sealFile, sealImplementation, sealedSize, CHUNK_SIZE } from '../../src/seal/index.js';
import { CHUNK_CT_SIZE, headerLength } from '../../src/seal/format.js';
import { generateKey, type SecretKey } from '../../src/seal/keys.js';
import { deterministicBytes, deterministicRandom } from '../../src/seal/det-random.js';
import type { ImplName } from '../../src/seal/primitives.js';

const IMPLS: ImplName[] = ['sodium', 'tweetnacl'];
const alice = generateKey('recipient', deterministicRandom('alice'));
const bob = generateKey('recipient', deterministicRandom('bob'));
const mallory = generateKey('recipient', deterministicRandom('mallory'));
const station = generateKey('station', deterministicRandom('station'));
const admin = generateKey('admin', deterministicRandom('admin'));

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof KluisError) return err.code;
    throw err;
  }
  return 'OK';
}

function flip(b: Uint8Array, pos: number, mask = 0x01): Uint8Array {
  const c = Uint8Array.from(b);
  c[pos]! ^= mask;
  return c;
}

const BOUNDARY_SIZES = [0, 1, 2, 15, 16, 17, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE - 1, 2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12345];

async function tmpdir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-seal-'));
}

describe('round trip and identical output', () => {
  test('sodium is the default implementation here', () => {
    expect(sealImplementation()).toBe('sodium');
  });

  test.each(BOUNDARY_SIZES)('size %i: both implementations give identical bytes, the expected size, and open each other', (n) => {
    const plain = deterministicBytes(`plain-${n}`, n);
    const sealed = IMPLS.map((impl) => sealBytes(plain, [alice.publicKey, bob.publicKey], { impl, random: deterministicRandom(`seed-${n}`) }));
    expect(Buffer.from(sealed[0]!).equals(Buffer.from(sealed[1]!))).toBe(true);
    expect(sealed[0]!.length).toBe(sealedSize(n, 2));
    for (const impl of IMPLS) {
      for (const id of [alice, bob]) expect(sha(openBytes(sealed[0]!, [id], { impl }))).toBe(sha(plain));
    }
  });

  test('random sizes and seeds (property): both implementations identical, round trip exact', () => {
    const rnd = deterministicRandom('sizes');
    for (let i = 0; i < 40; i++) {
      const r = rnd(4);
      const n = ((r[0]! << 16) | (r[1]! << 8) | r[2]!) % (3 * CHUNK_SIZE + 100);
      const plain = rnd(n);
      const a = sealBytes(plain, [alice.publicKey], { impl: 'sodium', random: deterministicRandom(`p${i}`) });
      const b = sealBytes(plain, [alice.publicKey], { impl: 'tweetnacl', random: deterministicRandom(`p${i}`) });
      expect(Buffer.from(a).equals(Buffer.from(b)), `size ${n}`).toBe(true);
      expect(Buffer.from(openBytes(a, [alice], { impl: 'tweetnacl' })).equals(Buffer.from(plain))).toBe(true);
    }
  });

  test('fresh randomness: two seals of the same plaintext differ', () => {
    const p = deterministicBytes('x', 100);
    expect(Buffer.from(sealBytes(p, [alice.publicKey])).equals(Buffer.from(sealBytes(p, [alice.publicKey])))).toBe(false);
  });
});

describe('keys', () => {
  const sealed = sealBytes(deterministicBytes('k', 1000), [alice.publicKey]);

  test('a wrong recipient key is E_SEAL_NO_RECIPIENT', () => {
    for (const impl of IMPLS) expect(codeOf(() => openBytes(sealed, [mallory], { impl }))).toBe('E_SEAL_NO_RECIPIENT');
  });

  test('one of several identities is enough (rotation: old and new key)', () => {
    expect(openBytes(sealed, [mallory, alice]).length).toBe(1000);
  });

  test('the station key and the admin key cannot open a sealed file (E_KEY_KIND)', () => {
    expect(codeOf(() => openBytes(sealed, [station]))).toBe('E_KEY_KIND');
    expect(codeOf(() => openBytes(sealed, [admin]))).toBe('E_KEY_KIND');
    expect(() => openStream(Readable.from([Buffer.from(sealed)]), [station])).toThrow(/station/);
  });

  test('sealing to a station public key or to nobody is refused', () => {
    expect(codeOf(() => sealBytes(new Uint8Array(1), [station.publicKey]))).toBe('E_KEY_KIND');
    expect(codeOf(() => sealBytes(new Uint8Array(1), []))).toBe('E_SEAL_RECIPIENTS');
  });

  test('the station key read as an X25519 scalar is still not a recipient of the file', () => {
    const fake: SecretKey = { ...generateKey('recipient', () => station.bytes) };
    expect(codeOf(() => openBytes(sealed, [fake]))).toBe('E_SEAL_NO_RECIPIENT');
  });

  test('a low-order recipient public key is refused', () => {
    expect(codeOf(() => sealBytes(new Uint8Array(1), [{ kind: 'recipient', bytes: new Uint8Array(32) }]))).toBe('E_KEY_PARSE');
  });
});

describe('damage is rejected with a specific code', () => {
  // Small file: header (143 bytes for one recipient) and one short last chunk.
  const small = sealBytes(deterministicBytes('small', 100), [alice.publicKey], { random: deterministicRandom('small') });
  const h1 = headerLength(1);

  function expectedForPosition(pos: number): string[] {
    if (pos < 13) return ['E_SEAL_HEADER'];
    if (pos === 13) return ['E_SEAL_VERSION'];
    if (pos === 14) return ['E_SEAL_HEADER'];
    if (pos === 15) return ['E_SEAL_HEADER', 'E_SEAL_HEADER_MAC']; // count: header runs short or MAC covers other bytes
    if (pos < 96) return ['E_SEAL_NO_RECIPIENT']; // the only stanza
    if (pos < h1) return ['E_SEAL_HEADER_MAC']; // nonce prefix, MAC
    return ['E_SEAL_PAYLOAD'];
  }

  test.each(IMPLS)('%s: every single byte flipped (two masks), at every position, is rejected with the code of its field', (impl) => {
    for (let pos = 0; pos < small.length; pos++) {
      for (const mask of [0x01, 0x80 | (pos & 0x7f)]) {
        const code = codeOf(() => openBytes(flip(small, pos, mask), [alice], { impl }));
        expect(expectedForPosition(pos), `byte ${pos} mask ${mask}`).toContain(code);
      }
    }
  });

  test.each(IMPLS)('%s: every truncation of a small file is rejected', (impl) => {
    for (let len = 0; len < small.length; len++) {
      const code = codeOf(() => openBytes(small.subarray(0, len), [alice], { impl }));
      // A cut inside the last chunk that leaves at least a tag's worth is an unauthentic chunk.
      const want = len < h1 ? 'E_SEAL_HEADER' : len < h1 + 16 ? 'E_SEAL_TRUNCATED' : 'E_SEAL_PAYLOAD';
      expect(code, `length ${len}`).toBe(want);
    }
  });

  // Four chunks: three full and a short last one.
  const plain4 = deterministicBytes('four', 3 * CHUNK_SIZE + 500);
  const four = sealBytes(plain4, [alice.publicKey, bob.publicKey], { random: deterministicRandom('four') });
  const h2 = headerLength(2);
  const chunkAt = (i: number): Uint8Array => four.subarray(h2 + i * CHUNK_CT_SIZE, Math.min(four.length, h2 + (i + 1) * CHUNK_CT_SIZE));

  test.each(IMPLS)('%s: truncation at every chunk boundary is E_SEAL_TRUNCATED', (impl) => {
    for (let i = 0; i <= 3; i++) {
      const cut = four.subarray(0, h2 + i * CHUNK_CT_SIZE);
      expect(codeOf(() => openBytes(cut, [alice], { impl })), `cut after ${i} chunks`).toBe('E_SEAL_TRUNCATED');
    }
  });

  test.each(IMPLS)('%s: swapped, duplicated or dropped middle chunks are E_SEAL_PAYLOAD', (impl) => {
    const c = [0, 1, 2, 3].map(chunkAt);
    const head = four.subarray(0, h2);
    const build = (order: number[]): Uint8Array => Buffer.concat([head, ...order.map((i) => c[i]!)]);
    for (const order of [[1, 0, 2, 3], [0, 2, 1, 3], [0, 0, 2, 3], [0, 2, 3], [0, 1, 1, 3]]) {
      expect(codeOf(() => openBytes(build(order), [alice], { impl })), order.join(',')).toBe('E_SEAL_PAYLOAD');
    }
  });

  test.each(IMPLS)('%s: a chunk from another file with the same key is E_SEAL_PAYLOAD', (impl) => {
    const other = sealBytes(plain4, [alice.publicKey, bob.publicKey], { random: deterministicRandom('other') });
    const mixed = Buffer.concat([four.subarray(0, h2 + CHUNK_CT_SIZE), other.subarray(h2 + CHUNK_CT_SIZE)]);
    expect(codeOf(() => openBytes(mixed, [alice], { impl }))).toBe('E_SEAL_PAYLOAD');
  });

  test.each(IMPLS)('%s: data after a full last chunk is E_SEAL_TRAILING; after a short one E_SEAL_PAYLOAD', (impl) => {
    const full = sealBytes(deterministicBytes('f', CHUNK_SIZE), [alice.publicKey]);
    for (const extra of [1, 16, CHUNK_CT_SIZE, CHUNK_CT_SIZE + 3]) {
      const t = Buffer.concat([full, Buffer.alloc(extra, 7)]);
      expect(codeOf(() => openBytes(t, [alice], { impl })), `+${extra}`).toBe('E_SEAL_TRAILING');
    }
    expect(codeOf(() => openBytes(Buffer.concat([small, Buffer.of(0)]), [alice], { impl }))).toBe('E_SEAL_PAYLOAD');
    // Appending a copy of the last chunk after a full last chunk.
    expect(codeOf(() => openBytes(Buffer.concat([four.subarray(0, h2 + 3 * CHUNK_CT_SIZE), chunkAt(2), chunkAt(3)]), [alice], { impl }))).toBe('E_SEAL_PAYLOAD');
  });

  test.each(IMPLS)('%s: flipped bytes in a multi-chunk file (sampled and at every chunk edge) are rejected', (impl) => {
    const rnd = deterministicRandom('positions');
    const positions = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const r = rnd(4);
      positions.add(Buffer.from(r).readUInt32BE(0));
    }
    const all = [...positions].map((p) => p % four.length);
    for (let i = 0; i <= 3; i++) {
      const s = h2 + i * CHUNK_CT_SIZE;
      all.push(s, s + 15, s + 16, Math.min(four.length - 1, s + CHUNK_CT_SIZE - 1));
    }
    for (const pos of all) {
      const code = codeOf(() => openBytes(flip(four, pos), [bob], { impl }));
      expect(code.startsWith('E_SEAL_'), `byte ${pos}: ${code}`).toBe(true);
    }
  });

  test('a removed recipient stanza: the remaining recipient gets E_SEAL_HEADER_MAC, the removed one E_SEAL_NO_RECIPIENT', () => {
    const two = sealBytes(deterministicBytes('two', 10), [alice.publicKey, bob.publicKey]);
    const cut = Buffer.concat([two.subarray(0, 16), two.subarray(96)]);
    cut[15] = 1;
    expect(codeOf(() => openBytes(cut, [bob]))).toBe('E_SEAL_HEADER_MAC');
    expect(codeOf(() => openBytes(cut, [alice]))).toBe('E_SEAL_NO_RECIPIENT');
  });
});

describe('streams and files', () => {
  test.each(IMPLS)('%s: openStream emits only verified chunks, then errors on the damaged one', async (impl) => {
    const plain = deterministicBytes('stream', 3 * CHUNK_SIZE + 7);
    const sealed = Buffer.from(sealBytes(plain, [alice.publicKey]));
    const h = headerLength(1);
    sealed[h + 2 * CHUNK_CT_SIZE + 100]! ^= 1; // damage chunk 2
    const got: Buffer[] = [];
    // Feed in odd-sized pieces to exercise the reassembly.
    const pieces: Buffer[] = [];
    for (let off = 0; off < sealed.length; off += 9999) pieces.push(sealed.subarray(off, off + 9999));
    const s = openStream(Readable.from(pieces), [alice], { impl });
    const err = await new Promise<unknown>((resolve) => {
      s.on('data', (c: Buffer) => got.push(c));
      s.on('error', resolve);
      s.on('end', () => resolve(null));
    });
    expect(err).toBeInstanceOf(KluisError);
    expect((err as KluisError).code).toBe('E_SEAL_PAYLOAD');
    expect(Buffer.concat(got).equals(Buffer.from(plain.subarray(0, 2 * CHUNK_SIZE)))).toBe(true);
  });

  test('sealFile and openToFile round trip; hashes and sizes are of ciphertext and plaintext', async () => {
    const dir = await tmpdir();
    for (const n of [0, CHUNK_SIZE, 2 * CHUNK_SIZE + 1]) {
      const plain = deterministicBytes(`file${n}`, n);
      await fsp.writeFile(path.join(dir, 'p'), plain);
      const r = await sealFile(path.join(dir, 'p'), path.join(dir, 's'), [alice.publicKey], { random: deterministicRandom('file') });
      const ct = await fsp.readFile(path.join(dir, 's'));
      expect(r).toEqual({ sha256: sha(ct), size: ct.length });
      expect(ct.equals(Buffer.from(sealBytes(plain, [alice.publicKey], { random: deterministicRandom('file') })))).toBe(true);
      const o = await openToFile(path.join(dir, 's'), path.join(dir, 'out'), [alice]);
      expect(o).toEqual({ sha256: sha(plain), size: n });
      expect((await fsp.readFile(path.join(dir, 'out'))).equals(Buffer.from(plain))).toBe(true);
    }
    expect((await fsp.readdir(dir)).sort()).toEqual(['out', 'p', 's']);
    await fsp.rm(dir, { recursive: true });
  });

  test('sealFile equals sealBytes at I/O batch boundaries (16 chunks per read) in both implementations', async () => {
    const dir = await tmpdir();
    const B = 16 * CHUNK_SIZE;
    for (const n of [B - 1, B, B + 1, 2 * B, 2 * B + CHUNK_SIZE]) {
      const plain = deterministicBytes(`batch${n}`, n);
      await fsp.writeFile(path.join(dir, 'p'), plain);
      for (const impl of IMPLS) {
        await sealFile(path.join(dir, 'p'), path.join(dir, 's'), [alice.publicKey], { impl, random: deterministicRandom(`b${n}`) });
        const want = sealBytes(plain, [alice.publicKey], { impl, random: deterministicRandom(`b${n}`) });
        expect((await fsp.readFile(path.join(dir, 's'))).equals(Buffer.from(want)), `size ${n} ${impl}`).toBe(true);
      }
      expect(await openToFile(path.join(dir, 's'), path.join(dir, 'o'), [alice])).toEqual({ sha256: sha(plain), size: n });
    }
    await fsp.rm(dir, { recursive: true });
  });

  test('openToFile on a file cut at a chunk boundary leaves no output and no temp file', async () => {
    const dir = await tmpdir();
    const sealed = sealBytes(deterministicBytes('cut', 2 * CHUNK_SIZE + 5), [alice.publicKey]);
    await fsp.writeFile(path.join(dir, 's'), sealed.subarray(0, headerLength(1) + 2 * CHUNK_CT_SIZE));
    await expect(openToFile(path.join(dir, 's'), path.join(dir, 'out'), [alice])).rejects.toMatchObject({ code: 'E_SEAL_TRUNCATED' });
    await expect(openToFile(path.join(dir, 's'), path.join(dir, 'out'), [mallory])).rejects.toMatchObject({ code: 'E_SEAL_NO_RECIPIENT' });
    await expect(openToFile(Readable.from([Buffer.from('hello')]), path.join(dir, 'out'), [alice])).rejects.toMatchObject({ code: 'E_SEAL_HEADER' });
    expect(await fsp.readdir(dir)).toEqual(['s']);
    await fsp.rm(dir, { recursive: true });
  });

  test('sealFile on a missing source leaves nothing behind', async () => {
    const dir = await tmpdir();
    await expect(sealFile(path.join(dir, 'nope'), path.join(dir, 's'), [alice.publicKey])).rejects.toBeInstanceOf(KluisError);
    expect(await fsp.readdir(dir)).toEqual([]);
    await fsp.rm(dir, { recursive: true });
  });
});
