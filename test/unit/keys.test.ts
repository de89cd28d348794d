// Key text forms (src/seal/keys.ts): checksummed public keys, 0600 secret key files, kinds kept apart.
import { expect, test } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError } from '../../src/errors.js';
import {
  formatPublicKey, formatSecretKey, generateKey, parsePublicKey, parseSecretKey, readPublicKey, readSecretKeyFile,
  sign, verifySignature, writeSecretKeyFile,
} from '../../src/seal/keys.js';
import { deterministicRandom } from '../../src/seal/det-random.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof KluisError) return e.code;
    throw e;
  }
  return 'OK';
};

test('public and secret keys round-trip through their text forms, per kind', () => {
  for (const kind of ['recipient', 'station', 'admin'] as const) {
    const k = generateKey(kind, deterministicRandom(kind));
    const pub = formatPublicKey(k.publicKey);
    expect(parsePublicKey(pub, kind)).toEqual(k.publicKey);
    expect(parseSecretKey(formatSecretKey(k), kind).publicKey).toEqual(k.publicKey);
    expect(codeOf(() => parsePublicKey(pub, kind === 'recipient' ? 'station' : 'recipient'))).toBe('E_KEY_KIND');
  }
});

test('every single-character typo in a public key is caught by its checksum', () => {
  const pub = formatPublicKey(generateKey('recipient', deterministicRandom('typo')).publicKey);
  const alphabet = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  for (let i = pub.indexOf('1') + 1; i < pub.length; i++) {
    const c = alphabet[(alphabet.indexOf(pub[i]!) + 1) % 32]!;
    expect(codeOf(() => parsePublicKey(pub.slice(0, i) + c + pub.slice(i + 1))), `position ${i}`).toBe('E_KEY_PARSE');
  }
});

test('secret key files are written 0600, never overwritten, and refused when readable by others', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-keys-'));
  const f = path.join(dir, 'k.key');
  const k = generateKey('recipient');
  await writeSecretKeyFile(f, k);
  expect((await fsp.stat(f)).mode & 0o777).toBe(0o600);
  expect((await readSecretKeyFile(f, 'recipient')).bytes).toEqual(k.bytes);
  await expect(writeSecretKeyFile(f, generateKey('recipient'))).rejects.toMatchObject({ code: 'EEXIST' });
  for (const mode of [0o640, 0o604, 0o644]) {
    await fsp.chmod(f, mode);
    await expect(readSecretKeyFile(f)).rejects.toMatchObject({ code: 'E_KEY_PERMISSIONS' });
  }
  await fsp.chmod(f, 0o600);
  await expect(readSecretKeyFile(f, 'station')).rejects.toMatchObject({ code: 'E_KEY_KIND' });
  expect(await readPublicKey(formatPublicKey(k.publicKey), 'recipient')).toEqual(k.publicKey);
  await fsp.rm(dir, { recursive: true });
});

test('station keys sign, recipient keys cannot, and a signature binds its message', () => {
  const st = generateKey('station', deterministicRandom('st'));
  const msg = Buffer.from('hello');
  const sig = sign(st, msg);
  expect(verifySignature(st.publicKey, msg, sig)).toBe(true);
  expect(verifySignature(st.publicKey, Buffer.from('hellp'), sig)).toBe(false);
  expect(codeOf(() => sign(generateKey('recipient'), msg))).toBe('E_KEY_KIND');
});

test('Ed25519 verification (node:crypto) takes RFC 8032 vector 1 and our signatures, and nothing altered', () => {
  const hex = (s: string): Uint8Array => Buffer.from(s, 'hex');
  const pub = { kind: 'station' as const, bytes: hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a') };
  const sig = hex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b');
  expect(verifySignature(pub, new Uint8Array(0), sig)).toBe(true);
  expect(verifySignature(pub, new Uint8Array([0]), sig)).toBe(false);
  const k = generateKey('station', deterministicRandom('verify'));
  const msg = Buffer.from('kluis-manifest-v1\n{}');
  const s = sign(k, msg);
  expect(verifySignature(k.publicKey, msg, s)).toBe(true);
  const flipped = Uint8Array.from(s);
  flipped[10]! ^= 1;
  expect(verifySignature(k.publicKey, msg, flipped)).toBe(false);
  expect(verifySignature(k.publicKey, msg, new Uint8Array(64))).toBe(false);
  expect(verifySignature(k.publicKey, msg, s.subarray(0, 63))).toBe(false);
  expect(verifySignature(generateKey('station', deterministicRandom('other')).publicKey, msg, s)).toBe(false);
  expect(verifySignature({ kind: 'recipient', bytes: k.publicKey.bytes }, msg, s)).toBe(false);
});

test('key text forms are byte-identical to the published vectors (test/vectors/seal-v1.json)', async () => {
  const vectors = JSON.parse(await fsp.readFile(path.join(__dirname, '..', 'vectors', 'seal-v1.json'), 'utf8')) as {
    vectors: Array<{ identities: string[]; reproduce?: { recipients: string[] } }>;
  };
  let seen = 0;
  for (const v of vectors.vectors) {
    for (const id of v.identities) {
      const sk = parseSecretKey(id, 'recipient');
      expect(formatSecretKey(sk)).toBe(id);
      expect(formatSecretKey(sk).toLowerCase().startsWith('kluis-secret-key-1')).toBe(true);
      seen++;
    }
    for (const r of v.reproduce?.recipients ?? []) {
      expect(formatPublicKey(parsePublicKey(r, 'recipient'))).toBe(r);
      seen++;
    }
  }
  expect(seen).toBeGreaterThan(2);
  // A recipient's public key text follows from its secret key: the vector's first identity and recipient match.
  const first = vectors.vectors.find((v) => v.reproduce && v.reproduce.recipients.length > 0 && v.identities.length > 0)!;
  expect(formatPublicKey(parseSecretKey(first.identities[0]!, 'recipient').publicKey)).toBe(first.reproduce!.recipients[0]);
  // Upper case reads as lower case; mixed case is refused.
  const r = first.reproduce!.recipients[0]!;
  expect(formatPublicKey(parsePublicKey(r.toUpperCase()))).toBe(r);
  expect(codeOf(() => parsePublicKey(r.slice(0, 10) + r.slice(10).toUpperCase()))).toBe('E_KEY_PARSE');
});
