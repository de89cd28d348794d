/**
 * Seal throughput for `kluis bench`: seals `file` once with the given implementation into a temp
 * file (deleted afterwards) and reports plaintext bytes and wall-clock seconds. 'node-chacha20'
 * is a like-for-like comparison only (same 64 KiB chunking, look-ahead, last-chunk flag, SHA-256
 * of the ciphertext, fsync; the same file loop) with Node's built-in ChaCha20-Poly1305; it is not
 * a kluis format and nothing else uses it.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKey } from './keys.js';
import { sealChunkedFile, sealFile } from './stream.js';

export type BenchImpl = 'sodium' | 'tweetnacl' | 'node-chacha20';

/** ChaCha20-Poly1305 with the same chunking, nonce layout (3-byte prefix, counter, flag) and I/O. */
async function chachaFile(src: string, dst: string): Promise<void> {
  const key = randomBytes(32);
  const prefix = randomBytes(3);
  let counter = 0n;
  await sealChunkedFile(src, dst, prefix, (plain, last) => {
    const nonce = Buffer.alloc(12);
    prefix.copy(nonce, 0);
    nonce.writeBigUInt64BE(counter++, 3);
    nonce[11] = last ? 1 : 0;
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([c.getAuthTag(), body]);
  });
}

export async function benchSeal(file: string, impl: BenchImpl): Promise<{ bytes: number; seconds: number }> {
  const { size } = await fsp.stat(file);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-'));
  const dst = path.join(dir, 'sealed');
  try {
    const recipient = generateKey('recipient').publicKey;
    const start = process.hrtime.bigint();
    if (impl === 'node-chacha20') await chachaFile(file, dst);
    else await sealFile(file, dst, [recipient], { impl });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { bytes: size, seconds };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
