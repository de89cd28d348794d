/**
 * The journal's promises (src/pipeline/journal.ts): WAL with synchronous=FULL, idempotent
 * inserts so a re-run after a crash cannot duplicate a file or a delivery, the unfinished-batch
 * query that resume and watch work from, and a committed write that survives a SIGKILL of the
 * writing process (checked with a real child process killed right after its commit).
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { Journal } from '../../src/pipeline/journal.js';

let dir: string;
let j: Journal;

function batch(id: string, fp = `fp-${id}`): void {
  j.createBatch({ id, card_fingerprint: fp, card_root: '/media/card', card_label: null, card_uuid: null, operator: 'op', case_ref: null, status: 'acquiring', recipients: '[]' });
}

function file(batchId: string, p: string): void {
  j.addFile({ batch_id: batchId, path: p, class: 'footage', format: 'jpeg', size: 10, mtime_ms: 1, state: 'seen' });
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-journal-'));
  j = Journal.open(path.join(dir, 'state', 'journal.db'));
});
afterEach(() => j.close());

describe('Journal', () => {
  it('runs in WAL mode with synchronous=FULL', () => {
    expect(j.db.pragma('journal_mode')).toBe('wal');
    expect(j.db.pragma('synchronous')).toBe(2); // FULL
  });

  it('adds a file once: a second addFile after a crash-and-rerun does not reset its state', () => {
    batch('b1');
    file('b1', 'DCIM/A.JPG');
    j.setFile('b1', 'DCIM/A.JPG', { state: 'acquired', card_sha256: 'aa', spool_path: '/spool/x' });
    file('b1', 'DCIM/A.JPG');
    const rows = j.files('b1');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'acquired', card_sha256: 'aa', spool_path: '/spool/x' });
  });

  it('enqueues one delivery per object and target, however often it is called', () => {
    batch('b1');
    const o = { size: 5, sha256: 'ff', localPath: '/spool/b1/sealed/o1' };
    j.enqueue('b1', 'b1/o1', ['local', 'cloud'], o);
    j.setDelivery('b1', 'b1/o1', 'local', { state: 'verified' });
    j.enqueue('b1', 'b1/o1', ['local', 'cloud'], o);
    const rows = j.deliveries('b1');
    expect(rows.map((d) => `${d.object_key}@${d.target}:${d.state}`)).toEqual(['b1/o1@cloud:pending', 'b1/o1@local:verified']);
  });

  it('records delivery attempts and errors for the outbox', () => {
    batch('b1');
    j.enqueue('b1', 'b1/o1', ['local'], { size: 5, sha256: 'ff', localPath: '/x' });
    j.setDelivery('b1', 'b1/o1', 'local', { attempts: 3, next_attempt_at: 1234, last_error_code: 'E_TARGET_UNREACHABLE', last_error: 'down' });
    expect(j.allDeliveries()[0]).toMatchObject({ state: 'pending', attempts: 3, next_attempt_at: 1234, last_error_code: 'E_TARGET_UNREACHABLE' });
  });

  it('lists unfinished batches (not secured, not failed) oldest first, and finds batches by card fingerprint', () => {
    batch('b1', 'card-x');
    batch('b2', 'card-y');
    batch('b3', 'card-x');
    j.setBatch('b2', { status: 'secured' });
    j.setBatch('b3', { status: 'failed' });
    expect(j.unfinishedBatches().map((b) => b.id)).toEqual(['b1']);
    expect(j.batchesForCard('card-x').map((b) => b.id).sort()).toEqual(['b1', 'b3']);
    expect(j.batchesForCard('card-z')).toEqual([]);
  });

  it('keeps events in order for a tailing reader', () => {
    const a = j.addEvent('safe-to-remove', 'b1', { card: '/media/c' });
    const b = j.addEvent('batch-status', 'b1', { status: 'secured' });
    expect(b.id).toBeGreaterThan(a.id);
    expect(j.eventsAfter(a.id).map((e) => e.type)).toEqual(['batch-status']);
    expect(JSON.parse(j.eventsAfter(0)[0]!.data)).toEqual({ card: '/media/c' });
  });

  it('a second connection (the dashboard, status) sees committed rows while the writer is open', () => {
    batch('b1');
    const other = Journal.open(path.join(dir, 'state', 'journal.db'));
    try {
      expect(other.batch('b1')?.status).toBe('acquiring');
      j.setBatch('b1', { status: 'delivering' });
      expect(other.batch('b1')?.status).toBe('delivering');
    } finally {
      other.close();
    }
  });

  it('a committed write survives SIGKILL of the writing process (no close, no checkpoint)', () => {
    j.close();
    const db = path.join(dir, 'state', 'journal.db');
    // The child opens the db with the journal's own pragmas, commits, and kills itself at once.
    const script = path.join(dir, 'child.cjs');
    writeFileSync(script, `
      const { DatabaseSync } = require('node:sqlite');
      const db = new DatabaseSync(process.argv[2]);
      db.exec('PRAGMA journal_mode = WAL'); db.exec('PRAGMA synchronous = FULL');
      db.prepare("UPDATE batches SET status = 'delivering' WHERE id = 'b0'").run();
      process.kill(process.pid, 'SIGKILL');
    `);
    j = Journal.open(db);
    batch('b0');
    j.close();
    const r = spawnSync(process.execPath, [script, db]);
    expect(r.signal).toBe('SIGKILL');
    j = Journal.open(db);
    expect(j.batch('b0')?.status).toBe('delivering');
  });
});
