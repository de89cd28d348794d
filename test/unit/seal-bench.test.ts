// benchSeal (used by `kluis bench`) runs each implementation over a real file and cleans up.
// Speed is not asserted here (no timed assertions); only that each run does the full work.
import { expect, test } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchSeal } from '../../src/seal/bench.js';
import { deterministicBytes } from '../../src/seal/det-random.js';

test.each(['sodium', 'tweetnacl', 'node-chacha20'] as const)('benchSeal %s reports the file size and positive seconds, leaving no temp files', async (impl) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-benchtest-'));
  const file = path.join(dir, 'in');
  await fsp.writeFile(file, deterministicBytes('bench', 3 * 1024 * 1024 + 5));
  const before = (await fsp.readdir(os.tmpdir())).filter((n) => n.startsWith('kluis-bench-')).length;
  const r = await benchSeal(file, impl);
  expect(r.bytes).toBe(3 * 1024 * 1024 + 5);
  expect(r.seconds).toBeGreaterThan(0);
  const after = (await fsp.readdir(os.tmpdir())).filter((n) => n.startsWith('kluis-bench-')).length;
  expect(after).toBeLessThanOrEqual(before);
  await fsp.rm(dir, { recursive: true });
});
