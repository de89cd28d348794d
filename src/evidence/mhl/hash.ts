/**
 * The hash formats ASC MHL v2 names, computed over a stream in one pass: xxh128, xxh64, xxh3
 * (hash-wasm), md5, sha1 (node:crypto) and C4 (SHA-512 in the C4 ID base58 form). Hex digests
 * are lower case in the canonical (big-endian) byte order, as the reference implementation
 * writes them. Memory stays bounded whatever the file size.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createXXHash128, createXXHash64, createXXHash3, type IHasher } from 'hash-wasm';

export type MhlHashFormat = 'c4' | 'md5' | 'sha1' | 'xxh128' | 'xxh3' | 'xxh64';
/** Schema order of the hash elements inside <hash> and directory containers. */
export const MHL_HASH_ORDER: MhlHashFormat[] = ['c4', 'md5', 'sha1', 'xxh128', 'xxh3', 'xxh64'];

const C4_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** C4 ID of a SHA-512 digest: "c4" + 88 base58 characters, left-padded with '1' (zero). */
export function c4FromSha512(digest: Uint8Array): string {
  let n = BigInt(`0x${Buffer.from(digest).toString('hex')}`);
  let s = '';
  while (n > 0n) {
    s = C4_ALPHABET[Number(n % 58n)] + s;
    n /= 58n;
  }
  return `c4${s.padStart(88, '1')}`;
}

export function c4OfBytes(data: Uint8Array): string {
  return c4FromSha512(createHash('sha512').update(data).digest());
}

export function c4ToBytes(id: string): Buffer {
  let n = 0n;
  for (const ch of id.slice(2)) {
    const v = C4_ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`not a C4 ID: ${id}`);
    n = n * 58n + BigInt(v);
  }
  return Buffer.from(n.toString(16).padStart(128, '0'), 'hex');
}

type AnyHasher = { kind: 'node'; h: Hash; c4: boolean } | { kind: 'wasm'; h: IHasher };

async function newHasher(f: MhlHashFormat): Promise<AnyHasher> {
  switch (f) {
    case 'md5':
    case 'sha1':
      return { kind: 'node', h: createHash(f), c4: false };
    case 'c4':
      return { kind: 'node', h: createHash('sha512'), c4: true };
    case 'xxh128': {
      const h = await createXXHash128();
      h.init();
      return { kind: 'wasm', h };
    }
    case 'xxh64': {
      const h = await createXXHash64();
      h.init();
      return { kind: 'wasm', h };
    }
    case 'xxh3': {
      const h = await createXXHash3();
      h.init();
      return { kind: 'wasm', h };
    }
  }
}

function finish(h: AnyHasher): string {
  if (h.kind === 'wasm') return h.h.digest('hex');
  return h.c4 ? c4FromSha512(h.h.digest()) : h.h.digest('hex');
}

/** Hashes one file in the given formats, in a single streaming read. */
export async function hashFile(file: string, formats: MhlHashFormat[]): Promise<{ size: number; hashes: Partial<Record<MhlHashFormat, string>> }> {
  const hashers = await Promise.all(formats.map(async (f) => [f, await newHasher(f)] as const));
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const b = chunk as Buffer;
    size += b.length;
    for (const [, h] of hashers) h.h.update(b);
  }
  const hashes: Partial<Record<MhlHashFormat, string>> = {};
  for (const [f, h] of hashers) hashes[f] = finish(h);
  return { size, hashes };
}

/** Hash of bytes in one format (used for directory hashes). */
export async function hashBytes(data: Uint8Array, f: MhlHashFormat): Promise<string> {
  const h = await newHasher(f);
  h.h.update(data);
  return finish(h);
}

export function hashStringToBytes(s: string, f: MhlHashFormat): Buffer {
  return f === 'c4' ? c4ToBytes(s) : Buffer.from(s, 'hex');
}
