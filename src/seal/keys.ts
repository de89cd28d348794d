/**
 * Keys of kluis and their text forms.
 *
 * - recipient (X25519): evidence desk and escrow keys; files are sealed *to* their public keys.
 * - station (Ed25519): signs manifests and audit checkpoints; it can never decrypt.
 * - admin (Ed25519): signs the config; its public key is pinned on the station at `kluis init`.
 *
 * Public keys are bech32 strings with a checksum (like age's `age1…`), e.g. `kluis1…`,
 * `kluisstation1…`, `kluisadmin1…`. Secret key files hold one upper-case bech32 line plus
 * comments; they must be mode 0600 (no group/world bits) or they are refused.
 */
import { promises as fsp } from 'node:fs';
import { createPublicKey, verify as edVerify, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { bech32 } from '@scure/base';
import { KluisError } from '../errors.js';

/**
 * Bech32 (BIP-173) as age uses it for keys, through @scure/base: lower case out, all-lower or
 * all-upper in, a 6-character checksum that catches any single typo, and no 90-character limit.
 */
function bech32Encode(hrp: string, data: Uint8Array): string {
  return bech32.encode(hrp, bech32.toWords(data), false);
}

function bech32Decode(s: string): { hrp: string; data: Uint8Array } {
  const { prefix, words } = bech32.decode(s, false);
  return { hrp: prefix, data: bech32.fromWords(words) };
}

export type KeyKind = 'recipient' | 'station' | 'admin';

const PUB_HRP: Record<KeyKind, string> = { recipient: 'kluis', station: 'kluisstation', admin: 'kluisadmin' };
const SEC_HRP: Record<KeyKind, string> = {
  recipient: 'kluis-secret-key-',
  station: 'kluis-station-secret-key-',
  admin: 'kluis-admin-secret-key-',
};

export interface PublicKey {
  kind: KeyKind;
  /** 32 bytes: X25519 public key for recipients, Ed25519 public key for station/admin. */
  bytes: Uint8Array;
}

export interface SecretKey {
  kind: KeyKind;
  /** 32 bytes: X25519 secret scalar for recipients, Ed25519 seed for station/admin. */
  bytes: Uint8Array;
  publicKey: PublicKey;
}

export function formatPublicKey(k: PublicKey): string {
  return bech32Encode(PUB_HRP[k.kind], k.bytes);
}

export function formatSecretKey(k: SecretKey): string {
  return bech32Encode(SEC_HRP[k.kind], k.bytes).toUpperCase();
}

export function parsePublicKey(s: string, expect?: KeyKind): PublicKey {
  let decoded: { hrp: string; data: Uint8Array };
  try {
    decoded = bech32Decode(s.trim());
  } catch (err) {
    throw new KluisError('E_KEY_PARSE', `not a valid kluis public key: ${(err as Error).message}`, {
      hint: 'copy the whole key (it starts with kluis1, kluisstation1 or kluisadmin1); a typo breaks its checksum',
      cause: err,
    });
  }
  const kind = (Object.keys(PUB_HRP) as KeyKind[]).find((k) => PUB_HRP[k] === decoded.hrp);
  if (!kind || decoded.data.length !== 32) {
    throw new KluisError('E_KEY_PARSE', `unknown public key type '${decoded.hrp}'`, {
      hint: 'use a key made by `kluis keys new-recipient|new-station|new-admin`',
    });
  }
  if (expect && kind !== expect) {
    throw new KluisError('E_KEY_KIND', `expected a ${expect} public key, got a ${kind} key`);
  }
  return { kind, bytes: decoded.data };
}

export function parseSecretKey(s: string, expect?: KeyKind): SecretKey {
  let decoded: { hrp: string; data: Uint8Array };
  try {
    decoded = bech32Decode(s.trim());
  } catch (err) {
    throw new KluisError('E_KEY_PARSE', `not a valid kluis secret key: ${(err as Error).message}`, { cause: err });
  }
  const kind = (Object.keys(SEC_HRP) as KeyKind[]).find((k) => SEC_HRP[k] === decoded.hrp);
  if (!kind || decoded.data.length !== 32) {
    throw new KluisError('E_KEY_PARSE', `unknown secret key type '${decoded.hrp}'`);
  }
  if (expect && kind !== expect) {
    throw new KluisError('E_KEY_KIND', `expected a ${expect} secret key, got a ${kind} key`, {
      hint: kind === 'station' ? 'the station key cannot decrypt; use the evidence identity (evidence.key)' : undefined,
    });
  }
  return secretFromBytes(kind, decoded.data);
}

export function secretFromBytes(kind: KeyKind, bytes: Uint8Array): SecretKey {
  const pub =
    kind === 'recipient'
      ? nacl.scalarMult.base(bytes)
      : nacl.sign.keyPair.fromSeed(bytes).publicKey;
  return { kind, bytes, publicKey: { kind, bytes: pub } };
}

export function generateKey(kind: KeyKind, random: (n: number) => Uint8Array = nacl.randomBytes): SecretKey {
  return secretFromBytes(kind, random(32));
}

/** The text of a secret key file: comments, then the key line. */
export function secretKeyFileText(k: SecretKey, created = new Date()): string {
  const role = { recipient: 'evidence recipient', station: 'station signing', admin: 'admin signing' }[k.kind];
  return [
    `# kluis ${role} key, created ${created.toISOString()}`,
    `# public key: ${formatPublicKey(k.publicKey)}`,
    formatSecretKey(k),
    '',
  ].join('\n');
}

export async function writeSecretKeyFile(file: string, k: SecretKey): Promise<void> {
  await fsp.writeFile(file, secretKeyFileText(k), { mode: 0o600, flag: 'wx' });
  await fsp.chmod(file, 0o600);
}

/** Reads a secret key file, refusing it when group or others may read it. */
export async function readSecretKeyFile(file: string, expect?: KeyKind): Promise<SecretKey> {
  let st;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    throw new KluisError('E_KEY_MISSING', `cannot read key file ${file}`, {
      hint: 'check the path given with --identity / in the config',
      cause: err,
    });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new KluisError('E_KEY_PERMISSIONS', `key file ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)})`, {
      hint: `run: chmod 600 ${file}`,
    });
  }
  const text = await fsp.readFile(file, 'utf8');
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.length > 0 && !l.startsWith('#'));
  if (!line) throw new KluisError('E_KEY_PARSE', `key file ${file} holds no key`);
  return parseSecretKey(line, expect);
}

/** Reads a public key from a file (first non-comment line) or takes the string itself. */
export async function readPublicKey(fileOrKey: string, expect?: KeyKind): Promise<PublicKey> {
  if (/^kluis[a-z]*1[02-9ac-hj-np-z]+$/i.test(fileOrKey.trim())) return parsePublicKey(fileOrKey, expect);
  let text: string;
  try {
    text = await fsp.readFile(fileOrKey, 'utf8');
  } catch (err) {
    throw new KluisError('E_KEY_MISSING', `cannot read public key ${fileOrKey}`, { cause: err });
  }
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.length > 0 && !l.startsWith('#'));
  if (!line) throw new KluisError('E_KEY_PARSE', `file ${fileOrKey} holds no public key`);
  return parsePublicKey(line, expect);
}

export function sign(key: SecretKey, message: Uint8Array): Uint8Array {
  if (key.kind === 'recipient') throw new KluisError('E_KEY_KIND', 'a recipient key cannot sign');
  return nacl.sign.detached(message, nacl.sign.keyPair.fromSeed(key.bytes).secretKey);
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow (RFC 8410). */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const verifyKeys = new Map<string, KeyObject>();

/**
 * Ed25519 (RFC 8032) with Node's built-in crypto (OpenSSL): a catalog checks one signature per
 * batch, and the pure-JS check took ~8 ms each (80 s of CPU for 10,000 batches); this takes a
 * few tens of microseconds. Signing stays with tweetnacl (deterministic, same signatures).
 */
export function verifySignature(pub: PublicKey, message: Uint8Array, signature: Uint8Array): boolean {
  if (pub.kind === 'recipient' || signature.length !== 64 || pub.bytes.length !== 32) return false;
  const id = Buffer.from(pub.bytes).toString('hex');
  let key = verifyKeys.get(id);
  if (!key) {
    try {
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, pub.bytes]), format: 'der', type: 'spki' });
    } catch {
      return false;
    }
    if (verifyKeys.size > 1000) verifyKeys.clear();
    verifyKeys.set(id, key);
  }
  try {
    return edVerify(null, message, key, signature);
  } catch {
    return false;
  }
}
