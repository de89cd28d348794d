/**
 * One attempt at a time per delivery (src/pipeline/deliver.ts): ingest's deliveries alongside,
 * the watcher's outbox pass and a dashboard retry can reach the same queued delivery at the same
 * moment in one process. Three of them started together on one queued object must store it once
 * and write one `delivered` and one `verified` audit line for it, not one per caller.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { auditEntries } from '../helpers/kluis.js';
import { stationWithRequeuedDelivery } from '../helpers/outbox.js';
import { deliverOne, drainOutbox } from '../../src/pipeline/deliver.js';

describe('a queued delivery reached by several callers at once', () => {
  it('is put once and audited once', async () => {
    const { st, station, delivery: d, stored } = await stationWithRequeuedDelivery('kluis-once-');
    try {
      const count = (type: string): number => auditEntries(st, type).filter((e) => e.object === d.object_key && e.target === d.target).length;
      const delivered0 = count('delivered');
      const verified0 = count('verified');
      const noop = (): void => undefined;

      await Promise.all([
        drainOutbox(station, noop, { batchId: d.batch_id }),
        drainOutbox(station, noop, { batchId: d.batch_id }),
        deliverOne(station, d, noop),
      ]);

      expect(station.journal.delivery(d.batch_id, d.object_key, d.target)!.state).toBe('verified');
      expect(existsSync(stored)).toBe(true);
      expect(count('delivered') - delivered0).toBe(1);
      expect(count('verified') - verified0).toBe(1);
    } finally {
      await station.close();
    }
  });
});
