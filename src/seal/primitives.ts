/**
 * The two crypto back-ends of the sealed format behind one small interface: sodium-native (fast,
 * native libsodium) and tweetnacl (reference, pure JS). Both compute exactly the same functions
 * (X25519, XSalsa20-Poly1305 secretbox in the "easy" layout: tag first), so their output is
 * byte-identical for the same inputs. sodium-native is the default; when it cannot be loaded the
 * reference is used and that is logged once on stderr. KLUIS_SEAL_IMPL=tweetnacl forces the
 * reference. This module never draws randomness and never touches files.
 */
import { createRequire } from 'node:module';
import nacl from 'tweetnacl';
import { KluisError } from '../errors.js';
import { notice } from '../util/notices.js';

export type ImplName = 'sodium' | 'tweetnacl';

export interface SealPrimitives {
  readonly name: ImplName;
  /** X25519(scalar, basepoint). */
  scalarMultBase(secret: Uint8Array): Uint8Array;
  /** X25519(scalar, point); returns all zeros for low-order points (callers check). */
  scalarMult(secret: Uint8Array, point: Uint8Array): Uint8Array;
  /** crypto_secretbox_easy: returns tag (16) || ciphertext. */
  secretbox(msg: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  /** The same, written into `out` (msg.length + 16 bytes; must not overlap msg). */
  secretboxInto(out: Uint8Array, msg: Uint8Array, nonce: Uint8Array, key: Uint8Array): void;
  /** crypto_secretbox_open_easy: plaintext, or null when the tag does not verify. */
  secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | null;
}

export const TAG_BYTES = 16;

const tweetnaclImpl: SealPrimitives = {
  name: 'tweetnacl',
  scalarMultBase: (s) => nacl.scalarMult.base(s),
  scalarMult: (s, p) => nacl.scalarMult(s, p),
  secretbox: (m, n, k) => nacl.secretbox(m, n, k),
  secretboxInto: (o, m, n, k) => o.set(nacl.secretbox(m, n, k)),
  secretboxOpen: (b, n, k) => nacl.secretbox.open(b, n, k),
};

/** The part of sodium-native's API used here (the package ships no types). */
interface Sodium {
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_secretbox_easy(c: Uint8Array, m: Uint8Array, n: Uint8Array, k: Uint8Array): void;
  crypto_secretbox_open_easy(m: Uint8Array, c: Uint8Array, n: Uint8Array, k: Uint8Array): boolean;
}

function makeSodiumImpl(s: Sodium): SealPrimitives {
  return {
    name: 'sodium',
    scalarMultBase(secret) {
      const q = Buffer.alloc(32);
      s.crypto_scalarmult_base(q, secret);
      return q;
    },
    scalarMult(secret, point) {
      const q = Buffer.alloc(32);
      try {
        s.crypto_scalarmult(q, secret, point);
      } catch {
        // libsodium refuses low-order points (all-zero result); report zeros like tweetnacl does,
        // and let the format layer decide.
        q.fill(0);
      }
      return q;
    },
    secretbox(msg, nonce, key) {
      const c = Buffer.allocUnsafe(msg.length + TAG_BYTES);
      s.crypto_secretbox_easy(c, msg, nonce, key);
      return c;
    },
    secretboxInto(out, msg, nonce, key) {
      s.crypto_secretbox_easy(out, msg, nonce, key);
    },
    secretboxOpen(box, nonce, key) {
      if (box.length < TAG_BYTES) return null;
      const m = Buffer.allocUnsafe(box.length - TAG_BYTES);
      return s.crypto_secretbox_open_easy(m, box, nonce, key) ? m : null;
    },
  };
}

let sodiumImpl: SealPrimitives | null = null;
let sodiumLoadError: unknown = null;
try {
  const require = createRequire(import.meta.url);
  sodiumImpl = makeSodiumImpl(require('sodium-native') as Sodium);
} catch (err) {
  sodiumLoadError = err;
}

let logged = false;

/** The implementation used when none is asked for. */
export function defaultImplName(): ImplName {
  const forced = process.env.KLUIS_SEAL_IMPL;
  if (forced === 'tweetnacl') return 'tweetnacl';
  if (sodiumImpl) return 'sodium';
  if (!logged) {
    logged = true;
    const why = sodiumLoadError instanceof Error ? sodiumLoadError.message : String(sodiumLoadError);
    notice('W_SEAL_REFERENCE', `sodium-native could not be loaded (${why}); sealing with the tweetnacl reference implementation (slower, same output)`);
  }
  return 'tweetnacl';
}

export function getPrimitives(name?: ImplName): SealPrimitives {
  const want = name ?? defaultImplName();
  if (want === 'tweetnacl') return tweetnaclImpl;
  if (!sodiumImpl) {
    throw new KluisError('E_SEAL_IMPL', 'the sodium-native implementation is not available on this machine', {
      hint: 'reinstall dependencies (npm ci) or leave the implementation choice to kluis',
      cause: sodiumLoadError,
    });
  }
  return sodiumImpl;
}

export function sodiumAvailable(): boolean {
  return sodiumImpl !== null;
}
