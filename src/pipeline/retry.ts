/**
 * The one retry policy of kluis: which failures are worth another try, and when. Decided by
 * error code (and the `retryable` detail a target sets), never by matching error text.
 */
import { KluisError } from '../errors.js';
import { seams } from './seams.js';

const NEVER_RETRY_PREFIXES = ['E_EGRESS', 'E_TARGET_NOT_ALLOWED', 'E_POLICY', 'E_CONFIG', 'E_KEY', 'E_TARGET_AUTH'];

export function isRetryable(err: unknown): boolean {
  if (!(err instanceof KluisError)) return true;
  if (NEVER_RETRY_PREFIXES.some((p) => err.code.startsWith(p))) return false;
  const flag = err.details?.retryable;
  if (typeof flag === 'boolean') return flag;
  return err.code === 'E_TARGET_UNREACHABLE' || err.code === 'E_TARGET_IO' || err.code === 'E_VERIFY_MISMATCH' || err.code === 'E_DISK_FULL';
}

/** Exponential backoff with a cap: 2 s, 4 s, 8 s … up to 10 minutes (a test may arm a shorter base, seams.ts). */
export function backoffMs(attempts: number): number {
  const base = seams().retryBaseMs ?? 2000;
  return Math.min(base * 2 ** Math.max(0, attempts - 1), 10 * 60 * 1000);
}
