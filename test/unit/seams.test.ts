// Test seams (issue 18): the command line reads them from the environment (src/cli/seams.ts) and
// passes them down (src/pipeline/seams.ts); no module below src/cli reads the environment for them.
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { seamsFromEnv } from '../../src/cli/seams.js';
import { armSeams, seams } from '../../src/pipeline/seams.js';

afterEach(() => armSeams({}));

test('the environment a test sets becomes the seams, and nothing is armed without it', () => {
  expect(seamsFromEnv({})).toEqual({});
  expect(
    seamsFromEnv({ KLUIS_CRASH_AT: 'mid-seal:3', KLUIS_STOP_AT: 'after-put', KLUIS_TEST_ACQUIRE_DELAY_MS: '1500', KLUIS_RETRY_BASE_MS: '200' }),
  ).toEqual({ crashAt: { point: 'mid-seal', nth: 3 }, stopAt: { point: 'after-put', nth: 1 }, acquireDelayMs: 1500, retryBaseMs: 200 });
  // A delay of 0 or one that is not a number pauses nothing.
  expect(seamsFromEnv({ KLUIS_TEST_ACQUIRE_DELAY_MS: '0' })).toEqual({});
  expect(seamsFromEnv({ KLUIS_TEST_ACQUIRE_DELAY_MS: 'soon' })).toEqual({});
});

test('armed seams are what the flow sees, as a frozen copy', () => {
  expect(seams()).toEqual({});
  const s = { acquireDelayMs: 10 };
  armSeams(s);
  s.acquireDelayMs = 99;
  expect(seams()).toEqual({ acquireDelayMs: 10 });
  expect(Object.isFrozen(seams())).toBe(true);
});

test('no module below the command line reads a test seam from the environment', () => {
  const src = path.resolve(__dirname, '..', '..', 'src');
  const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith(`cli${path.sep}`));
  const readers = files.filter((f) => /KLUIS_(CRASH_AT|STOP_AT|TEST_ACQUIRE_DELAY_MS|RETRY_BASE_MS)/.test(readFileSync(path.join(src, f), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')));
  expect(readers).toEqual([]);
});
