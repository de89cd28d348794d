/**
 * The audit log's writer lock after a kill (src/pipeline/audit.ts): a process SIGKILLed between
 * creating `<audit>.lock` and writing its pid into it leaves an EMPTY lock file. The fault suite
 * met this (after-put:5, two workers); before the fix every later append waited 30 s and failed
 * with E_AUDIT_LOCKED. An empty lock older than a couple of seconds is now taken over; a fresh
 * empty one (a writer between its two steps) is still respected.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditLog } from '../../src/pipeline/audit.js';

function fresh(): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-auditlock-')), 'audit.jsonl');
}

describe('audit lock left empty by a killed writer', () => {
  it('is taken over once it is a few seconds old', async () => {
    const file = fresh();
    writeFileSync(`${file}.lock`, '');
    const old = new Date(Date.now() - 10_000);
    utimesSync(`${file}.lock`, old, old);
    const log = await AuditLog.open(file, { station: 't', lockTimeoutMs: 1000 });
    await log.append('card-seen', { batchId: 'b1' });
    await log.close();
    expect(readFileSync(file, 'utf8')).toContain('"card-seen"');
  });

  it('is respected while fresh (its writer may be about to write its pid)', async () => {
    const file = fresh();
    const log = await AuditLog.open(file, { station: 't', lockTimeoutMs: 300 });
    writeFileSync(`${file}.lock`, '');
    await expect(log.append('card-seen', { batchId: 'b1' })).rejects.toMatchObject({ code: 'E_AUDIT_LOCKED' });
  });
});
