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
