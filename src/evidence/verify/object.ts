/**
 * One sealed object on one target, read once: every byte is hashed as ciphertext and, on the side,
 * fed to the opener. Checks: ciphertext size and SHA-256 against the signed outer list; a clean
 * decryption (every chunk authenticated); the plaintext SHA-256 and size against the inner part;
 * each essence hash recomputed from the plaintext; with `deep`, a full decode (deep.ts).
 *
 * Plaintext exists only as a stream and, for an essence recheck or a decode, as a 0600 temp file in
 * a 0700 folder of the system temp dir (util/plain-temp.ts), removed before this returns.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openStream, type ManifestFile, type SecretKey } from '../../seal/index.js';
import type { Target } from '../../targets/index.js';
import { essenceLabel } from '../../sanitize/index.js';
import { makePartDir } from '../../util/plain-temp.js';
import { deepChecks, type DeepArgs } from './deep.js';
import { errText, isMissing, soft, worst, type Check, type EssenceFn, type FileTargetResult } from './result.js';

/** Hashes everything written to it and forwards it to `side` while `side` is open. */
class TeeHasher extends Writable {
  private readonly h = createHash('sha256');
  bytes = 0;
  constructor(private readonly side: PassThrough | null) {
    super({ highWaterMark: 1 << 20 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.h.update(chunk);
    this.bytes += chunk.length;
    const s = this.side;
    if (!s || s.destroyed || s.writableEnded) return cb();
    if (s.write(chunk)) return cb();
    const go = (): void => {
      s.off('drain', go);
      s.off('close', go);
      cb();
    };
    s.on('drain', go);
    s.on('close', go);
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (this.side && !this.side.destroyed) this.side.end();
    cb();
  }
  digest(): string {
    return this.h.digest('hex');
  }
}

export async function checkObject(
  t: Target,
  batchId: string,
  objectId: string,
  obj: { id: string; size: number; sha256: string } | undefined,
  file: ManifestFile | undefined,
  identities: SecretKey[],
  canOpen: boolean,
  essenceFn: EssenceFn | null,
  deep: DeepArgs | null = null,
): Promise<FileTargetResult> {
  const key = `${batchId}/${objectId}`;
  const checks: Check[] = [];
  // An essence hash that could not be recomputed is shown on its check (and in `essence`), but
  // does not make an object whose ciphertext and plaintext hashes verified "unchecked".
  const done = (): FileTargetResult => ({
    target: t.name,
    result: worst(checks.filter((c) => !soft(c)).map((c) => c.result)),
    checks,
  });
  if (!obj) {
    checks.push({ check: 'manifest', result: 'mismatch', message: `object ${objectId} is named in the inner manifest but not in the signed outer list` });
    return done();
  }
  let body: Readable;
  try {
    body = await t.get(key);
  } catch (err) {
    checks.push(isMissing(err) ? { check: 'object', result: 'missing', message: `object ${key} is not on ${t.name}` } : { check: 'object', result: 'unchecked', message: errText(err) });
    return done();
  }
  // Every object is decrypted when the identity opened the inner manifest: its chunks are
  // authenticated, so a clean decryption is itself a check; the plaintext hash is compared where
  // the manifest holds one (footage), not for e.g. the sealed report.
  const wantPlain = canOpen;
  // One read of the object: every byte is hashed as ciphertext and, on the side, fed to the
  // opener. When the opener stops at a damaged chunk the read goes on, so the ciphertext hash is
  // still complete and the damage is named by both checks.
  const side = wantPlain ? new PassThrough({ highWaterMark: 1 << 20 }) : null;
  const cipher = new TeeHasher(side);
  let plainSha: string | undefined;
  let plainBytes = 0;
  let openErr: unknown;
  let tmpDir: Awaited<ReturnType<typeof makePartDir>> | undefined;
  let tmpFile: string | undefined;
  try {
    if (side && file && ((essenceFn && file.essence?.length) || deep)) {
      tmpDir = await makePartDir(os.tmpdir());
      tmpFile = path.join(tmpDir.dir, `plain${path.extname(file.path).toLowerCase().replace(/[^.a-z0-9]/g, '')}`);
    }
    const source = pipeline(body, cipher).catch((err: unknown) => {
      side?.destroy(err as Error);
      throw err;
    });
    const consume = side
      ? (async () => {
          const plainHash = createHash('sha256');
          const out = tmpFile ? createWriteStream(tmpFile, { mode: 0o600 }) : null;
          try {
            for await (const c of openStream(side, identities)) {
              const b = c as Buffer;
              plainHash.update(b);
              plainBytes += b.length;
              if (out && !out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
            }
            plainSha = plainHash.digest('hex');
          } catch (err) {
            openErr = err;
            side.destroy();
          } finally {
            if (out) await new Promise<void>((res) => out.end(() => res()));
          }
        })()
      : Promise.resolve();
    await Promise.all([source, consume]);
  } catch (err) {
    checks.push({ check: 'object', result: 'unchecked', message: `reading ${key} failed: ${errText(err)}` });
    await cleanup(tmpDir);
    return done();
  }
  // Ciphertext against the signed manifest.
  {
    const sha = cipher.digest();
    if (cipher.bytes !== obj.size) checks.push({ check: 'ciphertext-size', result: 'mismatch', message: `${cipher.bytes} bytes, manifest says ${obj.size}` });
    else checks.push({ check: 'ciphertext-size', result: 'verified' });
    checks.push(sha === obj.sha256 ? { check: 'ciphertext-sha256', result: 'verified' } : { check: 'ciphertext-sha256', result: 'mismatch', message: `SHA-256 ${sha}, signed manifest says ${obj.sha256}` });
  }
  if (!wantPlain) {
    checks.push({ check: 'plaintext-sha256', result: 'unchecked', message: 'inner manifest could not be opened, so the object was not decrypted' });
  } else if (openErr !== undefined) {
    const code = (openErr as { code?: string }).code ?? '';
    checks.push({ check: 'decrypt', result: code === 'E_SEAL_NO_RECIPIENT' ? 'unchecked' : 'mismatch', message: errText(openErr) });
  } else if (file?.sanitizedSha256 === undefined) {
    checks.push({ check: 'decrypt', result: 'verified', message: 'every chunk authenticated; the manifest holds no plaintext hash for this object' });
  } else {
    checks.push(plainSha === file!.sanitizedSha256 ? { check: 'plaintext-sha256', result: 'verified' } : { check: 'plaintext-sha256', result: 'mismatch', message: `decrypted SHA-256 ${plainSha}, manifest says ${file!.sanitizedSha256}` });
    if (file!.sanitizedSize !== undefined && plainBytes !== file!.sanitizedSize) {
      checks.push({ check: 'plaintext-size', result: 'mismatch', message: `${plainBytes} bytes, manifest says ${file!.sanitizedSize}` });
    }
  }
  // Essence: recomputed only with a real essence function; otherwise said so.
  for (const e of file?.essence ?? []) {
    const name = `essence:${essenceLabel(e)}`;
    if (!essenceFn || !tmpFile || openErr !== undefined || plainSha !== file?.sanitizedSha256) {
      checks.push({ check: name, result: 'unchecked', message: essenceFn ? 'not rechecked (the file did not decrypt to the manifest hash)' : 'not rechecked: no essence function is available to this build' });
      continue;
    }
    try {
      const got = await essenceFn(tmpFile, file?.format, e);
      if (got === null) checks.push({ check: name, result: 'unchecked', message: `method ${essenceLabel(e)} is not supported for a recheck` });
      else checks.push(got === e.after ? { check: name, result: 'verified' } : { check: name, result: 'mismatch', message: `recomputed ${got}, manifest says ${e.after}` });
    } catch (err) {
      checks.push({ check: name, result: 'unchecked', message: errText(err) });
    }
  }
  // Deep: a full decode of the decrypted file, only when it decrypted to the manifest hash.
  if (deep) {
    if (!tmpFile || openErr !== undefined || plainSha !== file?.sanitizedSha256) {
      checks.push({ check: 'decode', result: 'unchecked', message: 'not decoded (the file did not decrypt to the manifest hash)' });
    } else {
      checks.push(...(await deepChecks(tmpFile, deep)));
    }
  }
  await cleanup(tmpDir);
  return done();
}

async function cleanup(dir: { remove(): Promise<void> } | undefined): Promise<void> {
  await dir?.remove();
}

