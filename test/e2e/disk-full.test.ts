/**
 * The spool disk full, on a real small tmpfs mounted over the station's spool (root, as in CI):
 *  - too small for the card: refused before anything is read, with E_DISK_FULL (exit 11) and a
 *    hint; after the disk is grown (remount with a larger size) the same command secures it;
 *  - filling up half-way (a ballast file written once the first file is acquired): E_DISK_FULL,
 *    no file marked failed, no plaintext left behind beyond what the journal needs; after the
 *    ballast is removed the same command finishes, reading only what was not read.
 * Every run ends checked the same way: all footage secured and exported to the recorded hashes.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, journalQuery, makeStation, parseJson, runKluis, spawnKluis, storeObjects, until, type TestStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

const mounts: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m]);
});

function spoolOnTmpfs(st: TestStation, size: string): void {
  mkdirSync(st.spool, { recursive: true, mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'kluis-test-spool', st.spool]);
  mounts.push(st.spool);
}

/** Writes zeros until the disk says ENOSPC; returns the file. */
function fillUp(dir: string): string {
  const file = path.join(dir, 'ballast');
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (;;) writeSync(fd, buf);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

type Outcome = { batchId: string; status: string; files: Array<{ path: string; class: string; status: string; sanitizedSha256?: string }> };

function expectSecuredAndExportable(st: TestStation, out: Outcome, footage: number): void {
  expect(out.status).toBe('secured');
  const files = out.files.filter((f) => f.class === 'footage');
  expect(files).toHaveLength(footage);
  expect(files.every((f) => f.status === 'secured')).toBe(true);
  expect(storeObjects(st).filter((o) => !path.basename(o).startsWith('.'))).toHaveLength(footage + 3); // + report, custody record, manifest
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-df-export-'));
  const exp = runKluis(['export', out.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', dir]);
  expect(exp.code, exp.stderr).toBe(0);
  for (const f of files) expect(createHash('sha256').update(readFileSync(path.join(dir, 'sanitized', f.path))).digest('hex')).toBe(f.sanitizedSha256);
}

describe('spool disk full', () => {
  it('refuses a card that does not fit before reading it, and secures it once the disk is larger', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-df1-'));
    const st = makeStation(path.join(work, 'station'));
    spoolOnTmpfs(st, '8m');
    const card = makeCard(path.join(work, 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 2 },
    ]);
    const r = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(11);
    expect(r.stderr).toMatch(/kluis: error: .*\[E_DISK_FULL\]/);
    expect(r.stderr).toContain('kluis: hint: free space');
    expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
    expect(auditEntries(st, 'file-acquired')).toEqual([]);
    expect(journalQuery(st, "SELECT path FROM files WHERE state NOT IN ('seen','rejected')")).toEqual([]);

    execFileSync('mount', ['-o', 'remount,size=64m', st.spool]);
    const again = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(again.code, again.stderr).toBe(0);
    expectSecuredAndExportable(st, parseJson<Outcome>(again), 2);
  });

  it('stops cleanly when the disk fills half-way and finishes after space is freed, reading only the rest', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-df2-'));
    const st = makeStation(path.join(work, 'station'));
    spoolOnTmpfs(st, '48m');
    const card = makeCard(path.join(work, 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'big', name: 'DJI_0002.JPG' },
      { kind: 'mp4', name: 'DJI_0003.MP4', seconds: 2 },
    ]);
    const proc = spawnKluis(['ingest', card, '--config', st.config, '--json', '--quiet'], { KLUIS_TEST_ACQUIRE_DELAY_MS: '1500' });
    await until(() => auditEntries(st, 'file-acquired').length > 0);
    const ballast = fillUp(st.spool);
    const r = await proc.exited;
    expect(r.code, r.stderr).toBe(11);
    expect(r.stderr).toMatch(/kluis: error: .*\[E_DISK_FULL\]/);
    expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
    // Nothing was given up because of the full disk: no file is failed.
    expect(journalQuery(st, "SELECT path, error_code FROM files WHERE state = 'failed'")).toEqual([]);
    const readFirst = auditEntries(st, 'file-acquired').map((e) => String(e.file));

    rmSync(ballast);
    const again = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(again.code, again.stderr).toBe(0);
    expectSecuredAndExportable(st, parseJson<Outcome>(again), 3);
    // What was read before the disk filled was not read again.
    const acquired = auditEntries(st, 'file-acquired').map((e) => String(e.file));
    expect(new Set(acquired).size).toBe(3);
    for (const f of readFirst) expect(acquired.filter((a) => a === f).length, f).toBe(1);
  });
});
