// Notices: warnings from below the flow reach whoever listens (the command line prints them),
// including ones raised before anyone listened and ones raised in a worker thread.
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { notice, onNotice, type Notice } from '../../src/util/notices.js';

describe('notices', () => {
  it('keeps what was said before anyone listened, then delivers live ones', () => {
    notice('W_EVENT_LISTENER', 'said early');
    const got: Notice[] = [];
    const stop = onNotice((n) => got.push(n));
    notice('W_SEAL_REFERENCE', 'said late');
    stop();
    notice('W_SEAL_REFERENCE', 'said to nobody');
    expect(got).toEqual([
      { code: 'W_EVENT_LISTENER', message: 'said early' },
      { code: 'W_SEAL_REFERENCE', message: 'said late' },
    ]);
  });

  it('a listener that throws does not stop the others', () => {
    const got: string[] = [];
    const a = onNotice(() => {
      throw new Error('broken');
    });
    const b = onNotice((n) => got.push(n.message));
    notice('W_EVENT_LISTENER', 'still heard');
    a();
    b();
    expect(got).toEqual(['still heard']);
  });

  it('a notice raised in a worker thread reaches the listeners of the main thread', async () => {
    const got: Notice[] = [];
    const stop = onNotice((n) => got.push(n));
    const mod = pathToFileURL(path.resolve('src/util/notices.ts')).href;
    const w = new Worker(`import(${JSON.stringify(mod)}).then((m) => m.notice('W_EXIFTOOL_PER_FILE', 'from a worker'))`, { eval: true });
    await new Promise((resolve, reject) => {
      w.on('exit', resolve);
      w.on('error', reject);
    });
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    stop();
    expect(got).toEqual([{ code: 'W_EXIFTOOL_PER_FILE', message: 'from a worker' }]);
  });
});
