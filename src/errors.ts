/**
 * The one error type of kluis. Every failure a user can meet carries a stable `code`
 * (machine-readable, never reworded), a plain `message`, a `hint` saying what to do, and the
 * underlying `cause`. Every code, with its exit code and meaning, is listed in error-codes.ts; the
 * constructor takes only a listed code, so a misspelt code fails to compile.
 */
import { ERROR_CODES, EXIT, isErrorCode, type ErrorCode } from './error-codes.js';

export { ERROR_CODES, EXIT, type ErrorCode } from './error-codes.js';

export class KluisError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KluisError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string } {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

/** The exit code of `kluis` for an error: the catalogue's (error-codes.ts), EXIT.internal for anything that is not a KluisError. */
export function exitCodeFor(err: unknown): number {
  if (!(err instanceof KluisError)) return EXIT.internal;
  return isErrorCode(err.code) ? ERROR_CODES[err.code].exit : EXIT.failure;
}

/** Codes never retried, whatever a `retryable` detail says: a refusal, a bad config or key stays one. */
const NEVER_RETRY_PREFIXES = ['E_EGRESS', 'E_TARGET_NOT_ALLOWED', 'E_POLICY', 'E_CONFIG', 'E_KEY', 'E_TARGET_AUTH'];
/** Codes retried when the thrower did not say (`retryable` detail): the target or the disk may come back. */
const RETRIED_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['E_TARGET_UNREACHABLE', 'E_TARGET_IO', 'E_VERIFY_MISMATCH', 'E_DISK_FULL']);

/**
 * The one retry policy of kluis: whether a failure is worth another try (a delivery, a target's
 * set-up). Decided by the error code and the `retryable` detail a target sets, never by matching
 * error text. Fail-safe: anything it does not know (not a KluisError, or a code without a
 * `retryable` detail that is not listed above) is not retried, so nothing is repeated that no one
 * said could pass.
 */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof KluisError)) return false;
  if (NEVER_RETRY_PREFIXES.some((p) => err.code.startsWith(p))) return false;
  const flag = err.details?.retryable;
  if (typeof flag === 'boolean') return flag;
  return RETRIED_BY_DEFAULT.has(err.code);
}

/** Wraps anything thrown into a KluisError, keeping KluisErrors as they are. */
export function asKluisError(err: unknown, code: ErrorCode = 'E_INTERNAL', hint?: string): KluisError {
  if (err instanceof KluisError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && (e.code === 'ENOSPC' || e.code === 'EDQUOT')) {
    return new KluisError('E_DISK_FULL', `no space left on device${e.path ? ` (${e.path})` : ''}`, {
      hint: 'free space on the station disk, then run the same command again; queued work resumes',
      cause: err,
    });
  }
  const message = e && typeof e.message === 'string' ? e.message : String(err);
  return new KluisError(code, message, { cause: err, ...(hint ? { hint } : {}) });
}
