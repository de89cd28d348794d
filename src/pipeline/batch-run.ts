/**
 * What every batch run does around its byte work, whether it starts from a card (ingest.ts) or
 * from the journal (resume): events go to the caller and to the journal, the batch's deliveries
 * go out alongside the work, and the batch is closed (outbox drained, finalized, drained again,
 * its status recorded). Never writes to the card or to the terminal.
 */
import { deliverAlongside, drainOutbox } from './deliver.js';
import { fanOut, type EventSink, type PipelineEvent } from './events.js';
import type { Station } from './station.js';
import { finalizeBatch, recordBatchStatus, type BatchOutcome } from './finalize.js';

/** Persisted acquire-progress events are at most this frequent (each is a synchronous fsync'ed insert). */
const PROGRESS_PERSIST_MS = 500;

/**
 * Journal events go to the dashboard; the caller's sink gets them too. Progress events are only
 * a display: the journal keeps one per PROGRESS_PERSIST_MS (and the last of the card), because
 * each insert is a synchronous fsync on the event loop that also drives the card copy.
 */
export function sinkFor(station: Station, onEvent?: EventSink): EventSink {
  let lastProgress = 0;
  return fanOut(onEvent, (e: PipelineEvent) => {
    if (e.type === 'acquire-progress' && e.filesDone < e.filesTotal) {
      const now = Date.now();
      if (now - lastProgress < PROGRESS_PERSIST_MS) return;
      lastProgress = now;
    }
    station.journal.addEvent(e.type, 'batchId' in e ? e.batchId : null, e as unknown as Record<string, unknown>);
  });
}

/**
 * Runs `work` (acquire/sanitize/seal of one batch) with the batch's deliveries going out alongside
 * it (deliverAlongside), woken by each newly sealed file. With `afterCard`, deliveries start once
 * the card is read (safe to remove, or gone): until then the card read has the station to itself
 * but for the proofs, which run at a lower priority (wrappers/priority.ts), so the operator gets
 * the card back sooner; on the 2-core bench VM the 2 GB card was free after 15 s instead of 20 s,
 * at the same total time. An error of `work` wins over one of the deliveries; deliveries never
 * outlive this call.
 */
export async function withDeliveryAlongside(
  station: Station,
  batchId: string,
  emit: EventSink,
  opts: { afterCard: boolean },
  work: (emit: EventSink) => Promise<void>,
): Promise<void> {
  let deliveries = opts.afterCard ? undefined : deliverAlongside(station, emit, batchId);
  const kicking: EventSink = (e) => {
    emit(e);
    if (!deliveries && (e.type === 'safe-to-remove' || e.type === 'card-missing' || e.type === 'card-not-safe')) deliveries = deliverAlongside(station, emit, batchId);
    if (e.type === 'file-state' && e.state === 'sealed') deliveries?.kick();
  };
  try {
    await work(kicking);
  } catch (err) {
    await deliveries?.stop().catch(() => undefined);
    throw err;
  }
  await deliveries?.stop();
}

/**
 * Closes a batch after its byte work: delivers what is queued (waiting up to `waitMs` for
 * targets that are down), writes the manifest, report and custody record (finalize.ts), delivers
 * those, and records the batch's status.
 */
export async function closeBatch(station: Station, batchId: string, emit: EventSink, waitMs: number): Promise<BatchOutcome> {
  await drainOutbox(station, emit, { batchId, waitMs });
  await finalizeBatch(station, batchId, emit);
  await drainOutbox(station, emit, { batchId, waitMs });
  return recordBatchStatus(station, batchId, emit);
}
