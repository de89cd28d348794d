/**
 * The card is pulled (its folder renamed away) in the middle of acquire: the files already read
 * are kept and secured, the rest are reported missing (E_CARD_REMOVED, batch partial, exit 3,
 * not safe to remove); re-inserting the card (renaming it back) and running the same command
 * finishes the batch without reading again what was read (one `file-acquired` audit line per
 * file). Then a third run on the secured card is recognised and copies nothing.
 *
 * KLUIS_TEST_ACQUIRE_DELAY_MS (test-only, read in src/cli/seams.ts) pauses before each file
 * is opened, so the pull happens between two files: the test waits for the journal to say a
 * file was acquired, then renames the card.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, renameSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, journalQuery, makeStation, parseJson, runKluis, spawnKluis, storeObjects, until, type TestStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

let st: TestStation;
let card: string;
const FILES = ['DCIM/100MEDIA/DJI_0001.JPG', 'DCIM/100MEDIA/DJI_0002.JPG', 'DCIM/100MEDIA/DJI_0003.MP4', 'DCIM/100MEDIA/DJI_0004.JPG'];

beforeAll(() => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-pulled-'));
  st = makeStation(path.join(work, 'station'));
  card = makeCard(path.join(work, 'card'), [
    { kind: 'jpeg', name: 'DJI_0001.JPG' },
    { kind: 'big', name: 'DJI_0002.JPG' },
    { kind: 'mp4', name: 'DJI_0003.MP4', seconds: 2 },
    { kind: 'jpeg', name: 'DJI_0004.JPG' },
  ]);
});

type Outcome = { batchId: string; status: string; safeToRemove: boolean; alreadySecured?: boolean; files: Array<{ path: string; status: string; error?: { code: string } }> };

/** The journal once the process has created it (it does not exist before the first open). */
function footageRead(): boolean {
  try {
    return journalQuery(st, "SELECT path FROM files WHERE state != 'seen' AND class = 'footage'").length > 0;
  } catch {
    return false;
  }
}

// One scenario in three phases that build on each other, so one test.
describe('card pulled mid-acquire, then re-inserted', () => {
  it('keeps and secures what was read and reports the rest missing; re-insert finishes without re-reading; a secured card is recognised', async () => {
    const proc = spawnKluis(['ingest', card, '--config', st.config, '--json', '--quiet'], { KLUIS_TEST_ACQUIRE_DELAY_MS: '1500' });
    await until(footageRead);
    renameSync(card, `${card}.pulled`);
    const r = await proc.exited;
    const first = parseJson<Outcome>(r);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('E_CARD_REMOVED');
    expect(first.status).toBe('partial');
    expect(first.safeToRemove).toBe(false);
    const readBeforePull = auditEntries(st, 'file-acquired').map((e) => String(e.file));
    expect(readBeforePull.length).toBeGreaterThan(0);
    expect(readBeforePull.length).toBeLessThan(FILES.length);
    for (const f of first.files) {
      if (readBeforePull.includes(f.path)) expect(f.status, f.path).toBe('secured');
      else expect(f, f.path).toMatchObject({ status: 'failed', error: { code: 'E_CARD_REMOVED' } });
    }
    const status = parseJson<{ batches: Array<{ batchId: string; safeToRemove: boolean; status: string }> }>(runKluis(['status', '--config', st.config, '--json']));
    expect(status.batches).toEqual([expect.objectContaining({ batchId: first.batchId, safeToRemove: false, status: 'partial' })]);

    // Re-inserted: finishes, reading only what was not read.
    renameSync(`${card}.pulled`, card);
    const r2 = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(r2.code, r2.stderr).toBe(0);
    const second = parseJson<Outcome>(r2);
    expect(second.batchId).toBe(first.batchId);
    expect(second.status).toBe('secured');
    expect(second.files.filter((f) => FILES.includes(f.path)).every((f) => f.status === 'secured')).toBe(true);
    const acquired = auditEntries(st, 'file-acquired').map((e) => String(e.file));
    expect(acquired.sort()).toEqual([...FILES].sort()); // each file read exactly once over both runs
    const seen = auditEntries(st, 'card-seen');
    expect(seen.map((e) => e.resumed)).toEqual([false, true]);
    expect(storeObjects(st)).toHaveLength(FILES.length + 3); // + report, custody record, manifest

    // Inserted once more: recognised as secured, nothing copied.
    const before = storeObjects(st);
    const acquiredBefore = auditEntries(st, 'file-acquired').length;
    const r3 = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(parseJson<Outcome>(r3)).toMatchObject({ batchId: first.batchId, status: 'secured', alreadySecured: true });
    expect(auditEntries(st, 'file-acquired')).toHaveLength(acquiredBefore);
    expect(storeObjects(st)).toEqual(before);
    const plain = runKluis(['ingest', card, '--config', st.config, '--quiet']);
    expect(plain.stdout).toContain('already secured');
  });
});
