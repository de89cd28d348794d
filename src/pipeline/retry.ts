/**
 * When a failed delivery is tried again. Whether it is tried again at all is the one retry policy
 * of kluis, `isRetryable` in src/errors.ts.
 */
import { seams } from './seams.js';

/** Exponential backoff with a cap: 2 s, 4 s, 8 s … up to 10 minutes (a test may arm a shorter base, seams.ts). */
export function backoffMs(attempts: number): number {
  const base = seams().retryBaseMs ?? 2000;
  return Math.min(base * 2 ** Math.max(0, attempts - 1), 10 * 60 * 1000);
}
