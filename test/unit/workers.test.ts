// The worker pool's error transport and its inline mode (from the TypeScript sources the pool runs
// tasks on the calling thread; the compiled kluis runs them on worker threads, covered end to end).
// A worker's error must keep its code, hint and the errno codes of its causes: ingest tells a
// full disk (resumable) from a bad file (held) by walking them.
import { describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { KluisError, asKluisError } from '../../src/errors.js';
import { WorkerPool } from '../../src/pipeline/workers.js';
import { deserializeError, serializeError } from '../../src/pipeline/thread-messages.js';

function causeCodes(e: unknown): string[] {
  const out: string[] = [];
  for (let c = (e as { cause?: unknown }).cause; c; c = (c as { cause?: unknown }).cause) out.push(String((c as { code?: unknown }).code));
  return out;
}

describe('worker errors', () => {
  test('a KluisError keeps code, hint and its causes\' errno codes across the thread boundary', () => {
    const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const err = new KluisError('E_SEAL_IO', 'writing failed', { hint: 'free space', cause: enospc });
    const back = deserializeError(structuredClone(serializeError(err)));
    expect(back).toBeInstanceOf(KluisError);
    expect([back.code, back.message, back.hint]).toEqual(['E_SEAL_IO', 'writing failed', 'free space']);
    expect(causeCodes(back)).toEqual(['ENOSPC']);
  });

  test('a plain errno error stays recognisable (asKluisError still sees a full disk)', () => {
    const back = deserializeError(structuredClone(serializeError(Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' }))));
    expect(causeCodes(back)).toEqual(['ENOSPC']);
    expect(back.code).toBe('E_INTERNAL');
    expect(asKluisError((back as { cause?: unknown }).cause).code).toBe('E_DISK_FULL');
  });
});

describe('WorkerPool (inline from the sources)', () => {
  test('runs a task and rejects with the task\'s own error', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-pool-'));
    const file = path.join(dir, 'copy');
    writeFileSync(file, 'card bytes');
    const sha256 = createHash('sha256').update('card bytes').digest('hex');
    const pool = new WorkerPool(2);
    expect(pool.threads).toBe(false);
    await expect(pool.run('check-copy', { input: file, expect: { sha256, size: 10 }, sealTo: null, recipients: [] })).resolves.toEqual({});
    const err = await pool.run('check-copy', { input: file, expect: { sha256: '0'.repeat(64), size: 10 }, sealTo: null, recipients: [] }).catch((e: unknown) => e);
    expect((err as KluisError).code).toBe('E_SPOOL_COPY_LOST');
    await pool.close();
  });

  test('close lets the task under way finish and refuses the queued ones, and nothing runs after it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-pool-'));
    const file = path.join(dir, 'copy');
    writeFileSync(file, 'card bytes');
    const args = { input: file, expect: { sha256: createHash('sha256').update('card bytes').digest('hex'), size: 10 }, sealTo: null, recipients: [] };
    const pool = new WorkerPool(1);
    const runs = Promise.allSettled([1, 2, 3].map(() => pool.run('check-copy', args)));
    await pool.close();
    const settled = await runs;
    expect(settled[0]).toEqual({ status: 'fulfilled', value: {} });
    for (const s of settled.slice(1)) expect(s).toMatchObject({ status: 'rejected', reason: { code: 'E_INTERNAL', message: 'worker pool closed' } });
    await expect(pool.run('check-copy', args)).rejects.toMatchObject({ code: 'E_INTERNAL', message: 'worker pool used after close' });
  });

  test('grow lets more tasks run at once and never shrinks the pool', async () => {
    const pool = new WorkerPool(1);
    expect(pool.size).toBe(1);
    pool.grow(3);
    expect(pool.size).toBe(3);
    pool.grow(2);
    expect(pool.size).toBe(3);
    await pool.close();
    pool.grow(5); // a closed pool stays as it was
    expect(pool.size).toBe(3);
  });
});
