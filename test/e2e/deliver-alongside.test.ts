/**
 * When deliveries go out (src/pipeline/batch-run.ts withDeliveryAlongside, src/pipeline/deliver.ts
 * deliverAlongside):
 * - during an ingest, not before the card is read: the card read comes first, so the operator
 *   gets the card back sooner. Seen in the journal of a slow card (KLUIS_TEST_ACQUIRE_DELAY_MS,
 *   test only, pauses before each file is opened): never a verified delivery while a footage
 *   file is still unread; at the end everything secured, each object delivered and verified once.
 * - then alongside the rest of the processing: deliverAlongside works queued deliveries as they
 *   are kicked, without waiting to be stopped (the test waits for the delivery to be verified
 *   before it calls stop(); without the overlap it would wait for ever and time out).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, journalQuery, makeStation, parseJson, spawnKluis, storeObjects, until } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { deliverAlongside } from '../../src/pipeline/deliver.js';
import { stationWithRequeuedDelivery } from '../helpers/outbox.js';

function deliveredWhileUnread(st: ReturnType<typeof makeStation>): boolean {
  try {
    const verified = journalQuery(st, "SELECT 1 FROM deliveries WHERE state = 'verified'").length > 0;
    const unread = journalQuery(st, "SELECT 1 FROM files WHERE state = 'seen' AND class = 'footage'").length > 0;
    return verified && unread;
  } catch {
    return false; // the journal is not created yet
  }
}

describe('deliveries during an ingest', () => {
  it('wait for the card to be read, then secure everything once', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-alongside-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'jpeg', name: 'DJI_0002.JPG' },
      { kind: 'jpeg', name: 'DJI_0003.JPG' },
    ]);
    // 2.5 s before each file: the first file is sealed long before the last one is read.
    const proc = spawnKluis(['ingest', card, '--config', st.config, '--json', '--quiet'], { KLUIS_TEST_ACQUIRE_DELAY_MS: '2500' });
    let exited = false;
    const done = proc.exited.finally(() => {
      exited = true;
    });
    let early = false;
    let sealedWhileUnread = false;
    while (!exited) {
      early ||= deliveredWhileUnread(st);
      try {
        sealedWhileUnread ||=
          journalQuery(st, "SELECT 1 FROM files WHERE state = 'sealed'").length > 0 &&
          journalQuery(st, "SELECT 1 FROM files WHERE state = 'seen' AND class = 'footage'").length > 0;
      } catch {
        // the journal is not created yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await done;
    expect(sealedWhileUnread, 'the scenario: a file was sealed while another was still unread').toBe(true);
    expect(early, 'a verified delivery while a footage file was still unread').toBe(false);
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

describe('deliverAlongside', () => {
  it('delivers a kicked delivery while its caller is still working, before stop()', async () => {
    const { station, delivery: d, stored } = await stationWithRequeuedDelivery('kluis-alongside-unit-');
    try {
      const alongside = deliverAlongside(station, () => undefined, d.batch_id);
      alongside.kick();
      await until(() => station.journal.delivery(d.batch_id, d.object_key, d.target)!.state === 'verified');
      await alongside.stop();
      expect(existsSync(stored)).toBe(true);
    } finally {
      await station.close();
    }
  });
});
