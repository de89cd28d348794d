// openFileSource (src/sanitize/stream-io.ts): the ByteSource of a file, the pipeline's working
// copy included. Exact reads only; a read that goes outside the file is refused before any memory
// is taken for it (a box or segment length from a damaged file can be anything).
import { describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openFileSource } from '../../src/sanitize/index.js';

describe('openFileSource', () => {
  test('reads exactly what is asked, knows its path, and refuses reads outside the file', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-src-')), 'copy');
    writeFileSync(file, '0123456789');
    const src = await openFileSource(file);
    try {
      expect(src.size).toBe(10);
      expect(src.path).toBe(file);
      expect((await src.read(2, 3)).toString()).toBe('234');
      const into = Buffer.alloc(4);
      await src.readInto(6, into);
      expect(into.toString()).toBe('6789');
      for (const [at, n] of [[8, 5], [0, 2 ** 40], [-1, 2], [0, -3]] as const) {
        await expect(src.read(at, n)).rejects.toMatchObject({ code: 'E_SANITIZE_TRUNCATED' });
      }
      await expect(src.readInto(9, Buffer.alloc(2))).rejects.toMatchObject({ code: 'E_SANITIZE_TRUNCATED' });
    } finally {
      await src.close();
    }
  });
});
