/**
 * One attempt at a time per delivery (src/pipeline/deliver.ts): ingest's deliveries alongside,
 * the watcher's outbox pass and a dashboard retry can reach the same queued delivery at the same
 * moment in one process. Three of them started together on one queued object must store it once
 * and write one `delivered` and one `verified` audit line for it, not one per caller.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, makeStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { openStation } from '../../src/pipeline/station.js';
import { ingestCard } from '../../src/pipeline/ingest.js';
import { deliverOne, drainOutbox } from '../../src/pipeline/deliver.js';

describe('a queued delivery reached by several callers at once', () => {
  it('is put once and audited once', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-once-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);
    const station = await openStation(st.config);
    try {
      const outcome = await ingestCard(station, { card, deliveryWaitMs: 10_000 });
      expect(outcome.status).toBe('secured');
      const d = station.journal.deliveries(outcome.batchId).find((x) => !x.object_key.endsWith('.json') && !x.object_key.endsWith('.html'))!;
      expect(d.state).toBe('verified');

      // Queue it again as if the store had lost it: the object leaves the store, the sealed
      // bytes are back in the spool where the outbox reads them.
      const stored = path.join(st.store, ...d.object_key.split('/'));
      if (!existsSync(d.local_path)) {
        mkdirSync(path.dirname(d.local_path), { recursive: true });
        copyFileSync(stored, d.local_path);
      }
      rmSync(stored);
      station.journal.setDelivery(d.batch_id, d.object_key, d.target, { state: 'pending', next_attempt_at: 0 });
      const before = (type: string): number => auditEntries(st, type).filter((e) => e.object === d.object_key && e.target === d.target).length;
      const delivered0 = before('delivered');
      const verified0 = before('verified');
      const row = station.journal.delivery(d.batch_id, d.object_key, d.target)!;
      const noop = (): void => undefined;

      await Promise.all([
        drainOutbox(station, noop, { batchId: d.batch_id }),
        drainOutbox(station, noop, { batchId: d.batch_id }),
        deliverOne(station, row, noop),
      ]);

      expect(station.journal.delivery(d.batch_id, d.object_key, d.target)!.state).toBe('verified');
      expect(existsSync(stored)).toBe(true);
      expect(before('delivered') - delivered0).toBe(1);
      expect(before('verified') - verified0).toBe(1);
    } finally {
      await station.close();
    }
  });
});
