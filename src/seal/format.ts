/**
 * kluis-sealed/1 framing (docs/format.md): the header with its recipient stanzas and MAC, the
 * key derivation, the chunk nonces and the rules deciding which chunk is the last one. Pure and
 * synchronous: it turns bytes into bytes and throws KluisError with a specific E_SEAL_* code.
 * It never reads files and never releases plaintext whose tag did not verify. Streaming lives on
 * top of this: sealing in stream.ts, opening in open.ts.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { KluisError } from '../errors.js';
import type { PublicKey, SecretKey } from './keys.js';
import { TAG_BYTES, type SealPrimitives } from './primitives.js';

export const MAGIC = Buffer.from('kluis-sealed/', 'ascii');
export const VERSION_BYTE = 0x31; // '1'
export const CHUNK_SIZE = 65536;
export const CHUNK_CT_SIZE = CHUNK_SIZE + TAG_BYTES;
export const PREFIX_BYTES = 15;
export const STANZA_BYTES = 80;
export const MAC_BYTES = 32;
export const FIXED_HEAD = MAGIC.length + 3; // magic, version, newline, count
export const MAX_RECIPIENTS = 255;

const INFO_WRAP = Buffer.from('kluis-sealed/1 X25519', 'ascii');
const INFO_HEADER = Buffer.from('kluis-sealed/1 header', 'ascii');
const INFO_PAYLOAD = Buffer.from('kluis-sealed/1 payload', 'ascii');
const ZERO_NONCE = new Uint8Array(24);

export type RandomFn = (n: number) => Uint8Array;

export function headerLength(count: number): number {
  return FIXED_HEAD + STANZA_BYTES * count + PREFIX_BYTES + MAC_BYTES;
}

/** Ciphertext size of a plaintext of `n` bytes sealed to `count` recipients. */
export function sealedSize(n: number, count: number): number {
  return headerLength(count) + n + TAG_BYTES * Math.max(1, Math.ceil(n / CHUNK_SIZE));
}

function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

export function chunkNonce(prefix: Uint8Array, counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(24);
  n.set(prefix, 0);
  n.writeBigUInt64BE(BigInt(counter), PREFIX_BYTES);
  n[23] = last ? 1 : 0;
  return n;
}

function headerMac(fileKey: Uint8Array, headerWithoutMac: Uint8Array): Buffer {
  return createHmac('sha256', hkdf(fileKey, new Uint8Array(0), INFO_HEADER)).update(headerWithoutMac).digest();
}

function wrapKey(shared: Uint8Array, ephemeralPub: Uint8Array, recipientPub: Uint8Array): Buffer {
  return hkdf(shared, Buffer.concat([ephemeralPub, recipientPub]), INFO_WRAP);
}

export function checkRecipients(recipients: PublicKey[]): void {
  if (recipients.length < 1 || recipients.length > MAX_RECIPIENTS) {
    throw new KluisError('E_SEAL_RECIPIENTS', `a sealed file needs 1 to ${MAX_RECIPIENTS} recipients, got ${recipients.length}`, {
      hint: 'list at least one evidence recipient public key (kluis1…) in the config',
    });
  }
  for (const r of recipients) {
    if (r.kind !== 'recipient') {
      throw new KluisError('E_KEY_KIND', `cannot seal to a ${r.kind} key; files are sealed to recipient keys (kluis1…)`, {
        hint: 'use the evidence recipient public key, not a station or admin key',
      });
    }
  }
}

export function checkIdentities(identities: SecretKey[]): void {
  if (identities.length === 0) {
    throw new KluisError('E_KEY_MISSING', 'no identity given to open a sealed file', {
      hint: 'give the evidence secret key with --identity',
    });
  }
  for (const id of identities) {
    if (id.kind !== 'recipient') {
      throw new KluisError('E_KEY_KIND', `a ${id.kind} key cannot open sealed files; only recipient (evidence) keys can`, {
        hint: id.kind === 'station'
          ? 'the station seals to the evidence keys and by design cannot decrypt; use the evidence identity (evidence.key)'
          : 'use the evidence identity (evidence.key)',
      });
    }
  }
}

/** Seals a stream of chunks: produce the header once, then each chunk in order. */
export class Sealer {
  readonly header: Buffer;
  private readonly payloadKey: Buffer;
  private readonly prefix: Uint8Array;
  private counter = 0;
  private done = false;

  constructor(recipients: PublicKey[], private readonly prim: SealPrimitives, random: RandomFn) {
    checkRecipients(recipients);
    const fileKey = random(32);
    this.prefix = random(PREFIX_BYTES);
    if (fileKey.length !== 32 || this.prefix.length !== PREFIX_BYTES) throw new KluisError('E_INTERNAL', 'random source returned the wrong length');
    const parts: Uint8Array[] = [MAGIC, Uint8Array.of(VERSION_BYTE, 0x0a, recipients.length)];
    for (const r of recipients) {
      const eph = random(32);
      const ephPub = prim.scalarMultBase(eph);
      const shared = prim.scalarMult(eph, r.bytes);
      if (isZero(shared)) {
        throw new KluisError('E_KEY_PARSE', 'recipient public key is invalid (low-order point)', {
          hint: 'check the recipient keys in the config; make a new one with `kluis keys new-recipient`',
        });
      }
      const wrapped = prim.secretbox(fileKey, ZERO_NONCE, wrapKey(shared, ephPub, r.bytes));
      parts.push(ephPub, wrapped);
    }
    parts.push(this.prefix);
    const body = Buffer.concat(parts);
    this.header = Buffer.concat([body, headerMac(fileKey, body)]);
    this.payloadKey = hkdf(fileKey, this.prefix, INFO_PAYLOAD);
  }

  /** Seals the next chunk: `plain` must be CHUNK_SIZE bytes unless `last`. */
  seal(plain: Uint8Array, last: boolean): Uint8Array {
    const out = Buffer.allocUnsafe(plain.length + TAG_BYTES); // every byte is written by sealInto
    this.sealInto(out, plain, last);
    return out;
  }

  /** Like seal, written into `out` (exactly plain.length + TAG_BYTES bytes), so a caller can reuse its buffers. */
  sealInto(out: Uint8Array, plain: Uint8Array, last: boolean): void {
    if (this.done) throw new KluisError('E_INTERNAL', 'sealer used after the last chunk');
    if (!last && plain.length !== CHUNK_SIZE) throw new KluisError('E_INTERNAL', 'non-last chunk must be a full chunk');
    if (plain.length > CHUNK_SIZE) throw new KluisError('E_INTERNAL', 'chunk too large');
    if (out.length !== plain.length + TAG_BYTES) throw new KluisError('E_INTERNAL', 'sealed chunk buffer has the wrong length');
    this.prim.secretboxInto(out, plain, chunkNonce(this.prefix, this.counter, last), this.payloadKey);
    this.counter++;
    if (last) this.done = true;
  }
}

/**
 * Reads the first 16 bytes: checks magic, version and newline, returns the full header length.
 * `avail` may be shorter than 16 only when the input ended there.
 */
export function parseFixedHead(avail: Uint8Array): number {
  if (avail.length < FIXED_HEAD) {
    throw new KluisError('E_SEAL_HEADER', 'input is too short to be a kluis sealed file', {
      hint: 'the file is empty or cut short; fetch it again from another target',
    });
  }
  if (!Buffer.from(avail.subarray(0, MAGIC.length)).equals(MAGIC)) {
    throw new KluisError('E_SEAL_HEADER', 'not a kluis sealed file (bad magic)', {
      hint: 'check that this is a sealed object (from a kluis store), not a plain file',
    });
  }
  if (avail[MAGIC.length] !== VERSION_BYTE) {
    throw new KluisError('E_SEAL_VERSION', `unsupported kluis sealed format version (byte 0x${(avail[MAGIC.length] ?? 0).toString(16)})`, {
      hint: 'this file was written by another version of kluis; open it with a kluis that knows its format version',
    });
  }
  if (avail[MAGIC.length + 1] !== 0x0a) throw new KluisError('E_SEAL_HEADER', 'malformed kluis sealed header (version line)');
  const count = avail[MAGIC.length + 2] ?? 0;
  if (count === 0) throw new KluisError('E_SEAL_HEADER', 'malformed kluis sealed header (no recipients)');
  return headerLength(count);
}

/** Opens the payload of one file whose header verified. */
export class Opener {
  private counter = 0;
  private finished = false;

  private constructor(
    private readonly prim: SealPrimitives,
    private readonly payloadKey: Buffer,
    private readonly prefix: Uint8Array,
  ) {}

  /** Unwraps the file key for one of `identities` and checks the header MAC. */
  static fromHeader(header: Uint8Array, identities: SecretKey[], prim: SealPrimitives): Opener {
    checkIdentities(identities);
    const total = parseFixedHead(header);
    if (header.length !== total) throw new KluisError('E_SEAL_HEADER', 'kluis sealed header is cut short');
    const count = header[FIXED_HEAD - 1]!;
    let fileKey: Uint8Array | null = null;
    for (const id of identities) {
      for (let j = 0; j < count && !fileKey; j++) {
        const off = FIXED_HEAD + j * STANZA_BYTES;
        const ephPub = header.subarray(off, off + 32);
        const shared = prim.scalarMult(id.bytes, ephPub);
        if (isZero(shared)) continue;
        fileKey = prim.secretboxOpen(header.subarray(off + 32, off + STANZA_BYTES), ZERO_NONCE, wrapKey(shared, ephPub, id.publicKey.bytes));
      }
      if (fileKey) break;
    }
    if (!fileKey || fileKey.length !== 32) {
      throw new KluisError('E_SEAL_NO_RECIPIENT', 'none of the given identities can open this file (no matching recipient stanza)', {
        hint: 'use the evidence key this batch was sealed to; after a key rotation older batches need the older key (--identity may be given several times)',
      });
    }
    const macOff = total - MAC_BYTES;
    const expected = headerMac(fileKey, header.subarray(0, macOff));
    if (!timingSafeEqual(expected, header.subarray(macOff, total))) {
      throw new KluisError('E_SEAL_HEADER_MAC', 'the sealed file header was altered (header MAC does not verify)', {
        hint: 'this copy is damaged or tampered with; fetch the object again from another target and compare hashes',
      });
    }
    const prefix = Uint8Array.from(header.subarray(macOff - PREFIX_BYTES, macOff));
    return new Opener(prim, hkdf(fileKey, prefix, INFO_PAYLOAD), prefix);
  }

  get chunksOpened(): number {
    return this.counter;
  }

  /** Opens a chunk that is followed by more data (exactly CHUNK_CT_SIZE bytes). */
  openMiddle(ct: Uint8Array): Uint8Array {
    this.assertOpen();
    const pt = this.prim.secretboxOpen(ct, chunkNonce(this.prefix, this.counter, false), this.payloadKey);
    if (pt) {
      this.counter++;
      return pt;
    }
    if (this.prim.secretboxOpen(ct, chunkNonce(this.prefix, this.counter, true), this.payloadKey)) {
      throw new KluisError('E_SEAL_TRAILING', `the sealed file has data after its last chunk (chunk ${this.counter})`, {
        hint: 'the object was appended to; fetch it again from another target and compare hashes',
      });
    }
    throw payloadError(this.counter);
  }

  /** Opens what remains at the end of input (0..CHUNK_CT_SIZE bytes) as the last chunk. */
  openLast(ct: Uint8Array): Uint8Array {
    this.assertOpen();
    if (ct.length < TAG_BYTES) throw truncatedError(this.counter);
    const pt = this.prim.secretboxOpen(ct, chunkNonce(this.prefix, this.counter, true), this.payloadKey);
    if (pt) {
      if (pt.length === 0 && this.counter > 0) throw payloadError(this.counter);
      this.finished = true;
      this.counter++;
      return pt;
    }
    if (ct.length === CHUNK_CT_SIZE && this.prim.secretboxOpen(ct, chunkNonce(this.prefix, this.counter, false), this.payloadKey)) {
      throw truncatedError(this.counter + 1);
    }
    throw payloadError(this.counter);
  }

  private assertOpen(): void {
    if (this.finished) throw new KluisError('E_INTERNAL', 'opener used after the last chunk');
  }
}

function payloadError(chunk: number): KluisError {
  return new KluisError('E_SEAL_PAYLOAD', `sealed file chunk ${chunk} failed authentication (altered, reordered or from another file)`, {
    hint: 'this copy is damaged or tampered with; fetch the object again from another target and compare hashes',
    details: { chunk },
  });
}

function truncatedError(chunk: number): KluisError {
  return new KluisError('E_SEAL_TRUNCATED', `the sealed file is cut short: its last chunk is missing (input ends at chunk ${chunk})`, {
    hint: 'the object was not completely written or fetched; fetch it again from another target',
    details: { chunk },
  });
}
