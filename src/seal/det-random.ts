/**
 * Deterministic "randomness" for test vectors and tests only: the byte stream
 * SHA-256(seed || ":" || uint32_be(0)) || SHA-256(seed || ":" || uint32_be(1)) || …
 * (docs/format.md, Test vectors). Never used for real sealing.
 */
import { createHash } from 'node:crypto';

export function deterministicRandom(seed: string): (n: number) => Uint8Array {
  let block = 0;
  let buf = Buffer.alloc(0);
  return (n: number) => {
    const parts: Buffer[] = [buf];
    let have = buf.length;
    while (have < n) {
      const ctr = Buffer.alloc(4);
      ctr.writeUInt32BE(block++);
      const h = createHash('sha256').update(seed, 'utf8').update(':').update(ctr).digest();
      parts.push(h);
      have += h.length;
    }
    const all = Buffer.concat(parts);
    buf = all.subarray(n);
    return Uint8Array.from(all.subarray(0, n));
  };
}

/** `n` bytes of the deterministic stream for `seed`, in one go. */
export function deterministicBytes(seed: string, n: number): Uint8Array {
  return deterministicRandom(seed)(n);
}
