/**
 * The one error type of kluis. Every failure a user can meet carries a stable `code`
 * (machine-readable, never reworded), a plain `message`, a `hint` saying what to do, and the
 * underlying `cause`. Exit codes are derived from codes here and nowhere else.
 *
 * Codes are grouped by prefix; the group decides the exit code unless a code has its own entry.
 */
export class KluisError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    opts: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KluisError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  toJSON(): { code: string; message: string; hint?: string } {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

/** Exit codes of the `kluis` command. 0 is success; the rest say which kind of trouble. */
export const EXIT = {
  ok: 0,
  failure: 1, // a batch failed or an unexpected error
  usage: 2, // bad arguments
  partial: 3, // some files secured, some not
  mismatch: 4, // verify: a hash or signature does not match
  missing: 5, // verify: an object or file is missing
  couldNotCheck: 6, // verify: a target or key could not be reached or used
  config: 7, // config missing, invalid, unsigned or wrongly signed
  policy: 8, // a target or action refused by policy
  key: 9, // key missing, unreadable, wrong permissions, wrong recipient
  input: 10, // bad input file or card
  storage: 11, // local disk full or unwritable
  internal: 70,
} as const;

const BY_CODE: Record<string, number> = {
  E_USAGE: EXIT.usage,
  E_VERIFY_MISMATCH: EXIT.mismatch,
  E_VERIFY_MISSING: EXIT.missing,
  E_VERIFY_UNCHECKED: EXIT.couldNotCheck,
  E_DISK_FULL: EXIT.storage,
  E_SPOOL: EXIT.storage,
  E_INTERNAL: EXIT.internal,
  E_AUDIT_MISSING: EXIT.missing,
  E_AUDIT_OPEN: EXIT.storage,
  E_AUDIT_WRITE: EXIT.storage,
  E_AUDIT_LOCK: EXIT.storage,
  E_AUDIT_LOCKED: EXIT.failure,
  E_AUDIT_USAGE: EXIT.internal,
  E_AUDIT_CLOSED: EXIT.internal,
  E_MHL_NO_HISTORY: EXIT.missing,
  E_MHL_ROOT: EXIT.input,
  E_MHL_READ: EXIT.input,
  E_MHL_PATH: EXIT.input,
  // Sealed files: damage is a mismatch, not a key problem; a foreign file is bad input.
  E_SEAL_HEADER: EXIT.input,
  E_SEAL_VERSION: EXIT.input,
  E_SEAL_HEADER_MAC: EXIT.mismatch,
  E_SEAL_PAYLOAD: EXIT.mismatch,
  E_SEAL_TRUNCATED: EXIT.mismatch,
  E_SEAL_TRAILING: EXIT.mismatch,
  E_SEAL_RECIPIENTS: EXIT.config,
  E_SEAL_IMPL: EXIT.internal,
  E_SEAL_IO: EXIT.failure,
  E_OUTPUT_EXISTS: EXIT.usage,
  E_EXPORT_OUT_NOT_EMPTY: EXIT.usage,
  E_EXPORT_OUT_NOT_DIR: EXIT.usage,
};

const BY_PREFIX: Array<[string, number]> = [
  ['E_CONFIG', EXIT.config],
  ['E_POLICY', EXIT.policy],
  ['E_EGRESS', EXIT.policy],
  ['E_TARGET_NOT_ALLOWED', EXIT.policy],
  ['E_KEY', EXIT.key],
  ['E_SEAL', EXIT.key],
  ['E_CARD', EXIT.input],
  ['E_INPUT', EXIT.input],
  ['E_SANITIZE', EXIT.input],
  ['E_MHL', EXIT.mismatch],
  ['E_AUDIT', EXIT.mismatch],
  ['E_MANIFEST', EXIT.mismatch],
];

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof KluisError)) return EXIT.internal;
  const exact = BY_CODE[err.code];
  if (exact !== undefined) return exact;
  for (const [prefix, code] of BY_PREFIX) if (err.code.startsWith(prefix)) return code;
  return EXIT.failure;
}

/** Wraps anything thrown into a KluisError, keeping KluisErrors as they are. */
export function asKluisError(err: unknown, code = 'E_INTERNAL', hint?: string): KluisError {
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
