/**
 * Builds the kluis-sealed/1 test vectors (test/vectors/seal-v1.json, docs/format.md) from
 * deterministic randomness, so that regenerating gives identical bytes. Each vector states its
 * expected outcome; damaged vectors are derived from a good one by one named change. For tests
 * and scripts/make-vectors.mjs only.
 */
import { createHash } from 'node:crypto';
import { deterministicBytes, deterministicRandom } from './det-random.js';
import { CHUNK_CT_SIZE, CHUNK_SIZE, headerLength } from './format.js';
import { formatPublicKey, formatSecretKey, generateKey, type SecretKey } from './keys.js';
import { sealBytes } from './stream.js';

export type VectorExpect = { ok: true; size: number; sha256: string } | { error: string };

export interface Vector {
  name: string;
  description: string;
  identities: string[];
  /** For good vectors: how to reproduce the sealed bytes exactly. */
  reproduce?: { randomSeed: string; recipients: string[]; plaintextSize: number };
  sealed: string;
  expect: VectorExpect;
}

export interface VectorFile {
  format: 'kluis-sealed/1';
  comment: string;
  chunkSize: number;
  plaintextSeed: string;
  vectors: Vector[];
}

const PLAINTEXT_SEED = 'plaintext';
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const key = (name: string): SecretKey => generateKey('recipient', deterministicRandom(`key:${name}`));

export function buildVectors(): VectorFile {
  const alice = key('alice');
  const bob = key('bob');
  const carol = key('carol');
  const vectors: Vector[] = [];
  const ids = (...ks: SecretKey[]): string[] => ks.map(formatSecretKey);

  function good(name: string, description: string, size: number, recipients: SecretKey[], openWith: SecretKey[] = [recipients[0]!]) {
    const plain = deterministicBytes(PLAINTEXT_SEED, size);
    const randomSeed = `seal:${name}`;
    const sealed = sealBytes(plain, recipients.map((r) => r.publicKey), { random: deterministicRandom(randomSeed) });
    vectors.push({
      name,
      description,
      identities: ids(...openWith),
      reproduce: { randomSeed, recipients: recipients.map((r) => formatPublicKey(r.publicKey)), plaintextSize: size },
      sealed: Buffer.from(sealed).toString('base64'),
      expect: { ok: true, size, sha256: sha(plain) },
    });
    return Buffer.from(sealed);
  }

  function bad(name: string, description: string, sealed: Uint8Array, error: string, openWith: SecretKey[] = [alice]) {
    vectors.push({ name, description, identities: ids(...openWith), sealed: Buffer.from(sealed).toString('base64'), expect: { error } });
  }

  const flip = (b: Buffer, pos: number, mask = 0x01): Buffer => {
    const c = Buffer.from(b);
    c[pos]! ^= mask;
    return c;
  };

  const h1 = headerLength(1);
  const h2 = headerLength(2);

  const empty = good('empty', 'empty plaintext: one empty last chunk (tag only)', 0, [alice]);
  const one = good('one-byte', 'one byte of plaintext', 1, [alice]);
  const small = good('small', '100 bytes of plaintext, one short last chunk', 100, [alice]);
  const full = good('exactly-one-chunk', 'exactly 65536 bytes: one full last chunk', CHUNK_SIZE, [alice]);
  const over = good('one-byte-over', '65537 bytes: a full chunk and a 1-byte last chunk', CHUNK_SIZE + 1, [alice]);
  const several = good('several-chunks', 'two full chunks and a 100-byte last chunk', 2 * CHUNK_SIZE + 100, [alice]);
  const two = good('two-recipients-first', '200 bytes sealed to two recipients, opened by the first', 200, [alice, bob], [alice]);
  good('two-recipients-second', 'the same recipients, opened by the second (reproduces the same bytes)', 200, [alice, bob], [bob]);
  good('two-identities', 'one recipient; the reader holds an unrelated key and the right one', 100, [alice], [carol, alice]);
  void empty;

  bad('missing-last-chunk', 'one-byte-over without its last chunk: cut at a chunk boundary', over.subarray(0, h1 + CHUNK_CT_SIZE), 'E_SEAL_TRUNCATED');
  bad('header-only', 'one-byte with its only (last) chunk removed', one.subarray(0, h1), 'E_SEAL_TRUNCATED');
  bad('cut-inside-last-chunk', 'small cut 50 bytes into its last chunk', small.subarray(0, h1 + 50), 'E_SEAL_PAYLOAD');
  bad('tag-only-cut', 'small cut 10 bytes into its last chunk (less than a tag)', small.subarray(0, h1 + 10), 'E_SEAL_TRUNCATED');
  {
    const c0 = several.subarray(h1, h1 + CHUNK_CT_SIZE);
    const c1 = several.subarray(h1 + CHUNK_CT_SIZE, h1 + 2 * CHUNK_CT_SIZE);
    const rest = several.subarray(h1 + 2 * CHUNK_CT_SIZE);
    bad('reordered-chunks', 'several-chunks with chunks 0 and 1 swapped', Buffer.concat([several.subarray(0, h1), c1, c0, rest]), 'E_SEAL_PAYLOAD');
  }
  bad('payload-bit-flip', 'small with one bit flipped in its ciphertext', flip(small, h1 + 16 + 40), 'E_SEAL_PAYLOAD');
  bad('tag-bit-flip', 'small with one bit flipped in its last chunk tag', flip(small, h1 + 3), 'E_SEAL_PAYLOAD');
  bad('trailing-after-full-last', 'exactly-one-chunk with one byte appended', Buffer.concat([full, Buffer.of(0)]), 'E_SEAL_TRAILING');
  bad('trailing-after-short-last', 'small with one byte appended (see the known limit: E_SEAL_PAYLOAD)', Buffer.concat([small, Buffer.of(0)]), 'E_SEAL_PAYLOAD');
  bad('empty-input', 'zero bytes', Buffer.alloc(0), 'E_SEAL_HEADER');
  bad('header-cut', 'small cut inside its header', small.subarray(0, 100), 'E_SEAL_HEADER');

  // One flipped bit in each header field of `small` (one recipient).
  bad('flip-magic', 'small, bit flipped in the magic (byte 0)', flip(small, 0), 'E_SEAL_HEADER');
  bad('flip-version', "small, version byte '1' changed to '0' (byte 13)", flip(small, 13), 'E_SEAL_VERSION');
  bad('flip-newline', 'small, bit flipped in the newline after the version (byte 14)', flip(small, 14), 'E_SEAL_HEADER');
  bad('flip-count-to-zero', 'small, recipient count 1 -> 0 (byte 15)', flip(small, 15, 0x01), 'E_SEAL_HEADER');
  bad('flip-count-to-three', 'small, recipient count 1 -> 3: header longer than the file', flip(small, 15, 0x02), 'E_SEAL_HEADER');
  bad('flip-count-with-data', 'one-byte-over, recipient count 1 -> 3 (byte 15); the file is long enough, stanza 0 still opens, the MAC fails', flip(over, 15, 0x02), 'E_SEAL_HEADER_MAC');
  bad('flip-ephemeral-key', 'small, bit flipped in the only stanza ephemeral key (byte 16)', flip(small, 16 + 5), 'E_SEAL_NO_RECIPIENT');
  bad('flip-wrapped-key', 'small, bit flipped in the only stanza wrapped file key (byte 48..95)', flip(small, 48 + 20), 'E_SEAL_NO_RECIPIENT');
  bad('flip-nonce-prefix', 'small, bit flipped in the nonce prefix (byte 96..110)', flip(small, 96 + 7), 'E_SEAL_HEADER_MAC');
  bad('flip-header-mac', 'small, bit flipped in the header MAC (byte 111..142)', flip(small, 111 + 31), 'E_SEAL_HEADER_MAC');
  bad('flip-other-stanza', 'two-recipients, bit flipped in the first stanza, opened by the second recipient', flip(two, 16 + 40), 'E_SEAL_HEADER_MAC', [bob]);
  bad('flip-other-stanza-first', 'two-recipients, bit flipped in the second stanza, opened by the first recipient', flip(two, 96 + 10), 'E_SEAL_HEADER_MAC', [alice]);
  {
    const removed = Buffer.concat([two.subarray(0, 16), two.subarray(96)]);
    removed[15] = 1;
    bad('removed-stanza-remaining', 'two-recipients with the first stanza removed and the count set to 1, opened by the remaining recipient', removed, 'E_SEAL_HEADER_MAC', [bob]);
    bad('removed-stanza-removed', 'the same file opened by the removed recipient', removed, 'E_SEAL_NO_RECIPIENT', [alice]);
  }
  bad('wrong-recipient', 'small opened by a key it was not sealed to', small, 'E_SEAL_NO_RECIPIENT', [carol]);
  void h2;

  return {
    format: 'kluis-sealed/1',
    comment: 'Generated by scripts/make-vectors.mjs from src/seal/vectors.ts; see docs/format.md, Test vectors. Do not edit by hand.',
    chunkSize: CHUNK_SIZE,
    plaintextSeed: PLAINTEXT_SEED,
    vectors,
  };
}

export function vectorsJson(): string {
  return `${JSON.stringify(buildVectors(), null, 2)}\n`;
}
