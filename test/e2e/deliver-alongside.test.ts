/**
 * Deliveries go out while the card is still being read (src/pipeline/deliver.ts,
 * deliverAlongside): the first file is stored and read back before the last file has left the
 * card, instead of everything waiting for the slowest proof. Seen in the journal: a `verified`
 * delivery while another footage file is still only `seen`. KLUIS_TEST_ACQUIRE_DELAY_MS (test
 * only, src/card/acquire.ts) pauses before each file is opened, which leaves the first file
 * seconds to be sealed and delivered; without the overlap no delivery starts before every file
 * is read, and the test fails when the process exits without the state ever having been seen.
 * Then the usual end: secured, one delivery and one read-back per object and target.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, journalQuery, makeStation, parseJson, spawnKluis, storeObjects } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

function overlapSeen(st: ReturnType<typeof makeStation>): boolean {
  try {
    const verified = journalQuery(st, "SELECT 1 FROM deliveries WHERE state = 'verified'").length > 0;
    const unread = journalQuery(st, "SELECT 1 FROM files WHERE state = 'seen' AND class = 'footage'").length > 0;
    return verified && unread;
  } catch {
    return false; // the journal is not created yet
  }
}

describe('delivery alongside processing', () => {
  it('stores and verifies the first file before the last one is read from the card', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-alongside-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'jpeg', name: 'DJI_0002.JPG' },
      { kind: 'jpeg', name: 'DJI_0003.JPG' },
    ]);
    const proc = spawnKluis(['ingest', card, '--config', st.config, '--json', '--quiet'], { KLUIS_TEST_ACQUIRE_DELAY_MS: '4000' });
    let exited = false;
    const done = proc.exited.finally(() => {
      exited = true;
    });
    let seen = false;
    while (!exited && !seen) {
      seen = overlapSeen(st);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await done;
    expect(seen, 'a verified delivery while a footage file was still unread').toBe(true);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson<{ status: string; files: Array<{ status: string }> }>(r);
    expect(out.status).toBe('secured');
    expect(out.files.map((f) => f.status)).toEqual(['secured', 'secured', 'secured']);

    // No object twice: one `delivered` and one `verified` audit line per object and target.
    for (const type of ['delivered', 'verified']) {
      const keys = auditEntries(st, type).map((e) => `${String(e.object)} ${String(e.target)}`);
      expect(new Set(keys).size, type).toBe(keys.length);
    }
    const deliveries = journalQuery<{ n: number }>(st, 'SELECT COUNT(*) AS n FROM deliveries')[0]!.n;
    expect(auditEntries(st, 'verified')).toHaveLength(deliveries);
    expect(storeObjects(st).length).toBe(deliveries);
  });
});
