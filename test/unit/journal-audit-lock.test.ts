/**
 * The audit log's writer lock (src/audit/writer.ts, on util/kernel-lock.ts's KernelLock): the kernel
 * releases it when its holder dies; no pid and no lock-file age is ever judged. Before, a
 * `<audit>.lock` file naming a live pid (a zombie, or a pid reused after a reboot) or left empty
 * by a killed writer made every later append wait 30 s and fail with E_AUDIT_LOCKED.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditLog } from '../../src/audit/index.js';
import { until } from '../helpers/kluis.js';
import { isSettledZombie, plainJs, startUnreaped, type Orphanage } from '../helpers/procs.js';

const js = plainJs(['errors.ts', 'util/kernel-lock.ts']);
/** Holds the audit writer lock of argv[1] (the audit file) until killed. */
const HOLDER = `
import { KernelLock } from './util/kernel-lock.js';
const lock = KernelLock.open(process.argv[1] + '.lock.db');
if (!lock.tryAcquire()) process.exit(3);
console.log('held ' + process.pid);
setInterval(() => {}, 1000);
`;

function fresh(): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-auditlock-')), 'audit.jsonl');
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('audit writer lock', () => {
  it('ignores lock files of the old kind, empty or naming a live pid', async () => {
    const file = fresh();
    const stranger: ChildProcess = spawn('sleep', ['100000'], { stdio: 'ignore' });
    cleanups.push(() => stranger.kill('SIGKILL'));
    writeFileSync(`${file}.lock`, `${stranger.pid}\n`);
    const log = await AuditLog.open(file, { station: 't', lockTimeoutMs: 300 });
    await log.append('card-seen', { batchId: 'b1' });
    writeFileSync(`${file}.lock`, '');
    await log.append('card-seen', { batchId: 'b2' });
    await log.close();
    expect(readFileSync(file, 'utf8')).toContain('"b2"');
  });

  it('waits for a live holder (E_AUDIT_LOCKED after the timeout), and goes on once that holder died as a zombie', async () => {
    const file = fresh();
    const log = await AuditLog.open(file, { station: 't', lockTimeoutMs: 200 });
    const o: Orphanage = await startUnreaped(process.execPath, ['--input-type=module', '-e', HOLDER, file], { cwd: js });
    cleanups.push(() => {
      try {
        process.kill(-o.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      o.end();
    });
    await until(() => o.stdout().includes(`held ${o.pid}`));
    await expect(log.append('card-seen', { batchId: 'b1' })).rejects.toMatchObject({ code: 'E_AUDIT_LOCKED' });
    process.kill(-o.pid, 'SIGKILL');
    await until(() => isSettledZombie(o.pid));
    await log.append('card-seen', { batchId: 'b2' });
    await log.close();
    expect(readFileSync(file, 'utf8')).toContain('"b2"');
  });

  it('two logs on one file in one process take turns and keep one chain', async () => {
    const file = fresh();
    const a = await AuditLog.open(file, { station: 't' });
    const b = await AuditLog.open(file, { station: 't' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).append('card-seen', { batchId: `b${i}` })));
    await a.close();
    await b.close();
    const seqs = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
