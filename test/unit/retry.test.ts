// The one retry policy (src/errors.ts isRetryable), used by the outbox (pipeline/deliver.ts) and by
// a target's lazy set-up (targets/common.ts LazyReady): decided by code and the `retryable` detail,
// and fail-safe: what it does not know is not retried.
import { expect, test } from 'vitest';
import { KluisError, isRetryable } from '../../src/errors.js';
import { LazyReady } from '../../src/targets/common.js';

test('a target that says whether to retry is believed, except for a refusal, a bad config or key', () => {
  expect(isRetryable(new KluisError('E_TARGET_FULL', 'full', { details: { retryable: true } }))).toBe(true);
  expect(isRetryable(new KluisError('E_TARGET_IO', 'bad request', { details: { retryable: false } }))).toBe(false);
  for (const code of ['E_EGRESS_COUNTRY', 'E_TARGET_NOT_ALLOWED', 'E_POLICY_WIPE', 'E_CONFIG_INVALID', 'E_KEY_PERMISSIONS', 'E_TARGET_AUTH'] as const) {
    expect(isRetryable(new KluisError(code, 'no', { details: { retryable: true } })), code).toBe(false);
  }
});

test('without a word from the target, only failures that may pass are retried', () => {
  for (const code of ['E_TARGET_UNREACHABLE', 'E_TARGET_IO', 'E_VERIFY_MISMATCH', 'E_DISK_FULL'] as const) {
    expect(isRetryable(new KluisError(code, 'may pass')), code).toBe(true);
  }
  expect(isRetryable(new KluisError('E_TARGET_EXISTS', 'there'))).toBe(false);
  expect(isRetryable(new KluisError('E_INTERNAL', 'a bug'))).toBe(false);
});

test('anything that is not a KluisError is not retried', () => {
  expect(isRetryable(new Error('ECONNRESET'))).toBe(false);
  expect(isRetryable(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(false);
  expect(isRetryable(undefined)).toBe(false);
  expect(isRetryable('E_TARGET_IO')).toBe(false);
});

test("a target's set-up is tried again after a failure that may pass, and a refusal is kept", async () => {
  let calls = 0;
  const errors = [new KluisError('E_TARGET_UNREACHABLE', 'down'), new KluisError('E_EGRESS_COUNTRY', 'refused', { details: { retryable: false } })];
  const ready = new LazyReady(async () => {
    calls++;
    throw errors[Math.min(calls - 1, 1)];
  });
  await expect(ready.get()).rejects.toMatchObject({ code: 'E_TARGET_UNREACHABLE' });
  await expect(ready.get()).rejects.toMatchObject({ code: 'E_EGRESS_COUNTRY' });
  await expect(ready.get()).rejects.toMatchObject({ code: 'E_EGRESS_COUNTRY' });
  expect(calls).toBe(2);
});
