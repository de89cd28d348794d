/**
 * A station (opened in this process) with one secured batch whose first footage delivery is
 * queued again, as if the store had lost the object: the object leaves the fs store, the sealed
 * bytes are back where the outbox reads them, the journal says `pending`. For tests of who
 * delivers a queued object and how often.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStation, type Station } from '../../src/pipeline/station.js';
import { ingestCard } from '../../src/pipeline/ingest.js';
import type { DeliveryRow } from '../../src/pipeline/journal.js';
import { makeStation, type TestStation } from './kluis.js';
import { makeCard } from './card.js';

export interface RequeuedDelivery {
  st: TestStation;
  station: Station;
  delivery: DeliveryRow;
  /** Where the object is in the fs store once delivered again. */
  stored: string;
}

export async function stationWithRequeuedDelivery(prefix: string): Promise<RequeuedDelivery> {
  const work = mkdtempSync(path.join(os.tmpdir(), prefix));
  const st = makeStation(path.join(work, 'station'));
  const card = makeCard(path.join(work, 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);
  const station = await openStation(st.config);
  const outcome = await ingestCard(station, { card, deliveryWaitMs: 10_000 });
  if (outcome.status !== 'secured') throw new Error(`set-up ingest ended ${outcome.status}`);
  const d = station.journal.deliveries(outcome.batchId).find((x) => !x.object_key.endsWith('.json') && !x.object_key.endsWith('.html'))!;
  if (d.state !== 'verified') throw new Error(`set-up delivery is ${d.state}`);
  const stored = path.join(st.store, ...d.object_key.split('/'));
  if (!existsSync(d.local_path)) {
    mkdirSync(path.dirname(d.local_path), { recursive: true });
    copyFileSync(stored, d.local_path);
  }
  rmSync(stored);
  station.journal.setDelivery(d.batch_id, d.object_key, d.target, { state: 'pending', next_attempt_at: 0 });
  return { st, station, delivery: station.journal.delivery(d.batch_id, d.object_key, d.target)!, stored };
}
