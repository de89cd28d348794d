/**
 * Helpers every target shares: key validation, the checking pass-through stream, and the temp
 * names that let a target find the uploads its dead writers left behind.
 *
 * `checkedBody` passes the body through unchanged while counting and hashing it; if the stream
 * ends with a different size or SHA-256 than promised, it fails BEFORE signalling its end, so no
 * target ever completes (renames, MOVEs, completes a multipart upload) a short or wrong object.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import * as os from 'node:os';
import { KluisError, isRetryable } from '../errors.js';
import { pidAlive } from '../util/pid.js';
import type { TargetConfig } from '../config/index.js';
import type { EgressGuard } from './egress.js';

/** Object keys: '/'-separated segments of [A-Za-z0-9._-], none starting with '.', max 512 chars. */
export function validateKey(key: string): void {
  const ok =
    key.length > 0 &&
    key.length <= 512 &&
    key.split('/').every((s) => /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(s));
  if (!ok) {
    throw new KluisError('E_TARGET_KEY', `invalid object key '${key}'`, {
      hint: "keys are '/'-separated segments of letters, digits, '.', '_' and '-', not starting with '.'",
    });
  }
}

/** Prefixes may end in '/' or be empty; otherwise as keys. */
export function validatePrefix(prefix: string): void {
  if (prefix === '') return;
  validateKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

/**
 * The check of a body against the size and SHA-256 it was promised, fed chunk by chunk: `update`
 * throws as soon as there are more bytes than promised, `finish` when the size or the hash differs.
 * CheckedBody (a stream) and the S3 upload from a local file (s3-upload.ts) both use it.
 */
export class BodyCheck {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly expectSize: number,
    private readonly expectSha256: string,
    private readonly target: string,
  ) {}

  update(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expectSize) throw bodyMismatch(this.target, `more than the promised ${this.expectSize} bytes`);
    this.hash.update(chunk);
  }

  finish(): void {
    if (this.bytes !== this.expectSize) throw bodyMismatch(this.target, `${this.bytes} bytes, not the promised ${this.expectSize}`);
    const got = this.hash.digest('hex');
    if (got !== this.expectSha256.toLowerCase()) throw bodyMismatch(this.target, `SHA-256 ${got}, not the promised ${this.expectSha256}`);
  }
}

export class CheckedBody extends Transform {
  private readonly check: BodyCheck;

  constructor(expectSize: number, expectSha256: string, target: string) {
    super();
    this.check = new BodyCheck(expectSize, expectSha256, target);
  }

  get bytes(): number {
    return this.check.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.check.update(chunk);
    } catch (err) {
      cb(err as KluisError);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.check.finish();
    } catch (err) {
      cb(err as KluisError);
      return;
    }
    cb();
  }
}

/** The body to upload was not the promised bytes (`what` says how): nothing is stored. */
function bodyMismatch(target: string, what: string): KluisError {
  return new KluisError('E_TARGET_BODY', `target ${target}: the body to upload had ${what}`, {
    hint: 'the local sealed object changed or could not be read; the upload was abandoned and nothing was stored',
    details: { retryable: false },
  });
}

/** Wraps a body stream in a CheckedBody, forwarding the source's errors. */
export function checkedBody(src: Readable, size: number, sha256: string, target: string): CheckedBody {
  const c = new CheckedBody(size, sha256, target);
  src.on('error', (err) =>
    c.destroy(
      err instanceof KluisError
        ? err
        : new KluisError('E_TARGET_BODY', `target ${target}: reading the body to upload failed: ${err.message}`, {
            hint: 'the local sealed object could not be read; nothing was stored, the upload is retried later',
            cause: err,
            details: { retryable: true },
          }),
    ),
  );
  src.pipe(c);
  return c;
}

/**
 * A target's lazy set-up (resolve, check policy, build the client), made once and shared. A
 * failure that may pass (network; `isRetryable`, the one retry policy) is forgotten so the next
 * call tries again; a refusal, a bad config or anything unknown is kept, so every later call gets
 * the same refusal without connecting.
 */
export class LazyReady<T> {
  private p: Promise<T> | undefined;

  constructor(private readonly init: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.p) {
      const p = this.init();
      this.p = p;
      p.catch((err: unknown) => {
        if (isRetryable(err) && this.p === p) this.p = undefined;
      });
    }
    return this.p;
  }

  /** The set-up if one was started (for close), without starting one. */
  current(): Promise<T> | undefined {
    return this.p;
  }
}

/** What a network target (S3, WebDAV) is built from; openTarget supplies it. */
export interface NetworkTargetDeps {
  cfg: TargetConfig;
  configDir: string;
  env: NodeJS.ProcessEnv;
  guard: EgressGuard;
  ca?: Buffer;
}

/**
 * Temp names: `.kluis-tmp-<host>-<pid>-<16 hex>`. Keys never start with '.', so a temp name can
 * never be a key. The host is the hostname with everything but letters, digits and '.' made '_'
 * (so it holds no '-' and the name splits unambiguously); host and pid say whose upload it is, so
 * a later put can remove the temps of this host's writers that died (kill -9, power loss).
 */
export const TEMP_PREFIX = '.kluis-tmp-';
export const TEMP_HOST = os.hostname().replace(/[^A-Za-z0-9.]/g, '_');
const TEMP_RE = /^\.kluis-tmp-([A-Za-z0-9._]+)-([1-9][0-9]{0,9})-([0-9a-f]{16})$/;

/** A fresh temp name owned by this process on this host. */
export function tempName(): string {
  return `${TEMP_PREFIX}${TEMP_HOST}-${process.pid}-${randomBytes(8).toString('hex')}`;
}

/** Whose temp `name` is, or null when it is not exactly a name `tempName()` makes. */
export function parseTempName(name: string): { host: string; pid: number } | null {
  const m = TEMP_RE.exec(name);
  if (!m || m[1] === undefined || m[2] === undefined) return null;
  return { host: m[1], pid: Number(m[2]) };
}

/**
 * True only for a temp name of THIS host whose writer is certainly gone: not this process, and
 * `alive(pid)` false (pidAlive: only ESRCH counts as dead). Anything else (another host, a name
 * that merely looks like a temp, a live or doubtful pid) is false: never removed.
 */
export function isDeadTemp(name: string, alive: (pid: number) => boolean = pidAlive): boolean {
  const o = parseTempName(name);
  return o !== null && o.host === TEMP_HOST && o.pid !== process.pid && !alive(o.pid);
}
