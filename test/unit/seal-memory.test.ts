// Memory bound of streaming seal/open: a ~200 MB file is sealed and opened while the resident
// set size is sampled; its growth over the start must stay far below the file size. This is a
// memory bound, not a time bound.
import { expect, test } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { openToFile, sealFile, sealedSize } from '../../src/seal/index.js';
import { generateKey } from '../../src/seal/keys.js';
import { deterministicBytes, deterministicRandom } from '../../src/seal/det-random.js';

const SIZE = 200 * 1024 * 1024 + 12345;
const LIMIT = 100 * 1024 * 1024;

test('sealFile and openToFile on a ~200 MB file keep RSS growth under 100 MB', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-mem-'));
  try {
    const key = generateKey('recipient', deterministicRandom('mem'));
    const src = path.join(dir, 'big');
    const block = Buffer.from(deterministicBytes('block', 1024 * 1024 + 7));
    const fh = await fsp.open(src, 'w');
    const hash = createHash('sha256');
    for (let written = 0; written < SIZE; ) {
      const b = block.subarray(0, Math.min(block.length, SIZE - written));
      await fh.write(b);
      hash.update(b);
      written += b.length;
    }
    await fh.close();
    const plainSha = hash.digest('hex');

    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const sealed = await sealFile(src, path.join(dir, 'sealed'), [key.publicKey]);
    peak = Math.max(peak, process.memoryUsage().rss);
    const opened = await openToFile(path.join(dir, 'sealed'), path.join(dir, 'out'), [key]);
    peak = Math.max(peak, process.memoryUsage().rss);
    clearInterval(timer);

    expect(sealed.size).toBe(sealedSize(SIZE, 1));
    expect(opened).toEqual({ sha256: plainSha, size: SIZE });
    expect(peak - base, `RSS grew by ${Math.round((peak - base) / 1048576)} MB`).toBeLessThan(LIMIT);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
