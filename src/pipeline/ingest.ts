/**
 * The ingest job chain for one card: inventory → acquire → sanitize → seal → deliver → verify,
 * each step recorded in the journal after its work is durable, so the same call on the same
 * card (or `resume`) continues where a crash, a pulled card or a dead network left it.
 *
 * One pass over the bytes: each card file is read once, and on those bytes the card reader
 * hashes it, seals the original into the spool (fsynced: this is what makes the card safe to
 * remove) and writes a plaintext working copy; a sanitize/seal worker then reads that copy once
 * and seals the sanitized stream as it is produced. The byte work runs on worker threads
 * (workers.ts, tasks.ts); the main thread keeps the journal and the audit log.
 *
 * This module takes the card in: it plans the batch from the card's inventory (a new batch, or
 * the unfinished one continued), reads each file once and hands it on. The rest of the chain has
 * its own module: what is stored and whether it fits (batch-plan.ts), the per-file sanitize/seal
 * tasks (process-file.ts), whether the card may be removed (card-safe.ts), deliveries alongside
 * and the batch's close (batch-run.ts). Decisions live in these modules (what is footage, what is
 * withheld, when a batch is secured, when the card is safe to remove); the stages they call hold
 * the technology. Nothing here writes to the card; the optional wipe is a separate step (wipe.ts)
 * that runs only on a secured batch. Nothing writes to the terminal either: every problem and
 * warning is an event (events.ts) that the command line renders (cli/progress.ts), the journal
 * keeps and the dashboard shows.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../errors.js';
import { cardFsPath, cardIdentity, inventory, type CardEntry, type CardIdentity, type CardReadResult } from '../card/index.js';
import { formatPublicKey, publishSealed } from '../seal/index.js';
import { crashPoint } from './crash.js';
import type { EventSink } from './events.js';
import type { BatchRow } from './journal.js';
import type { Station } from './station.js';
import { batchOutcome, type BatchOutcome } from './finalize.js';
import { WorkerPool } from './workers.js';
import { ensureSpool, newId } from './spool.js';
import { checkSpace, isStored, originalsTargets, reportRejections } from './batch-plan.js';
import { closeBatch, sinkFor, withDeliveryAlongside } from './batch-run.js';
import { cardPresent, decideCardSafe } from './card-safe.js';
import { Processing, diskFullOr, processAcquired } from './process-file.js';

export interface IngestOptions {
  card: string;
  onEvent?: EventSink;
  /** How long to keep retrying deliveries before leaving the rest queued (ms). */
  deliveryWaitMs?: number;
  /** Parallel sanitize/seal workers (default: defaultWorkers()). */
  concurrency?: number;
}

/**
 * Sanitize/seal worker threads while a card is read: one per core but the one the card reader's
 * own thread keeps busy (at least 1); with no card to read (resume), one per core, at least 2.
 * Workers run at a lower CPU priority than the reader, and each holds at most one picture in
 * memory (MAX_IMAGE_BYTES) besides its own heap (tens of MB): on the 2-core bench VM a second
 * worker beside the reader added ~40 MB of peak RSS and no speed (see docs/benchmark.md).
 */
export function defaultWorkers(reading = true): number {
  const cores = os.availableParallelism();
  return reading ? Math.max(1, cores - 1) : Math.max(2, cores);
}

export async function ingestCard(station: Station, opts: IngestOptions): Promise<BatchOutcome> {
  const { journal, audit, config, layout } = station;
  const cardRoot = path.resolve(opts.card);
  const entries = await inventory(cardRoot);
  const noDcim = !entries.some((e) => e.path.toUpperCase().startsWith('DCIM/'));
  const identity = await cardIdentity(cardRoot, entries);
  crashPoint('after-inventory');

  // A card already secured is recognised, not copied again; an unfinished batch is resumed.
  const previous = journal.batchesForCard(identity.fingerprint);
  const secured = previous.find((b) => b.status === 'secured');
  if (secured) {
    const outcome = batchOutcome(station, secured.id);
    outcome.alreadySecured = true;
    return outcome;
  }
  let batch = previous.find((b) => b.status !== 'failed');
  const emitBase = opts.onEvent;
  if (!batch) {
    const id = newId();
    journal.db.transaction(() => {
      journal.createBatch({
        id,
        card_fingerprint: identity.fingerprint,
        card_root: cardRoot,
        card_label: identity.label ?? null,
        card_uuid: identity.uuid ?? null,
        operator: station.operator ?? null,
        case_ref: station.caseRef ?? null,
        status: 'acquiring',
        recipients: JSON.stringify(config.recipients),
      });
      for (const e of entries) addEntry(station, id, e);
    })();
    batch = journal.batch(id)!;
  } else {
    journal.setBatch(batch.id, { card_root: cardRoot });
    readAgain(station, batch.id, entries);
  }
  const emit = sinkFor(station, emitBase);
  const batchId = batch.id;
  const who = { batchId, operator: station.operator, case: station.caseRef };
  await audit.append('card-seen', {
    ...who,
    card: cardRoot,
    fingerprint: identity.fingerprint,
    label: identity.label,
    uuid: identity.uuid,
    device: identity.device,
    mountOptions: identity.mountOptions,
    files: entries.length,
    resumed: previous.length > 0,
  });
  emit({ type: 'card-seen', batchId, card: cardRoot, files: entries.length, bytes: entries.reduce((s, e) => s + e.size, 0), ...(identity.label ? { label: identity.label } : {}) });
  if (noDcim) emit({ type: 'card-warning', batchId, card: cardRoot, code: 'W_CARD_NO_DCIM', message: `${cardRoot} holds no DCIM/ folder; is this really a camera card?` });
  await checkWritable(station, batchId, cardRoot, identity, emit);

  await reportRejections(station, batchId, previous.length === 0, emit);
  await checkSpace(station, batchId);
  await withDeliveryAlongside(station, batchId, emit, { afterCard: true }, (e) =>
    acquireAndProcess(station, batch, cardRoot, e, opts.concurrency ?? defaultWorkers(), opts.concurrency ?? defaultWorkers(false)),
  );
  return closeBatch(station, batchId, emit, opts.deliveryWaitMs ?? 15_000);
}

/** Continues every unfinished batch that no longer needs its card (sanitize, seal, deliver). */
export async function resumeAll(station: Station, opts: { onEvent?: EventSink; deliveryWaitMs?: number } = {}): Promise<BatchOutcome[]> {
  const emit = sinkFor(station, opts.onEvent);
  const out: BatchOutcome[] = [];
  for (const b of station.journal.unfinishedBatches()) {
    await withDeliveryAlongside(station, b.id, emit, { afterCard: false }, (e) => processAcquired(station, b.id, e, defaultWorkers(false)));
    out.push(await closeBatch(station, b.id, emit, opts.deliveryWaitMs ?? 0));
  }
  return out;
}

function addEntry(station: Station, batchId: string, e: CardEntry): void {
  station.journal.addFile({
    batch_id: batchId,
    path: e.path,
    class: e.class,
    format: e.format ?? null,
    size: e.size,
    mtime_ms: Math.floor(e.mtimeMs),
    // A policy refusal (link, special or empty file) is "rejected"; a file that could not be read is "failed".
    state: e.rejected ? (e.rejected.code === 'E_CARD_READ' ? 'failed' : 'rejected') : 'seen',
    ...(e.rejected ? { error_code: e.rejected.code, error_message: e.rejected.message, error_hint: e.rejected.hint ?? null } : {}),
  });
}

/**
 * The card is here again: a file that could not be read before (E_CARD_READ, E_CARD_CHANGED) is
 * taken as the card lists it now and read again, so a card called "not safe" can become safe.
 */
function readAgain(station: Station, batchId: string, entries: CardEntry[]): void {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const f of station.journal.files(batchId)) {
    const e = byPath.get(f.path);
    if (!e || f.state !== 'failed' || f.card_sha256 || !(f.error_code === 'E_CARD_READ' || f.error_code === 'E_CARD_CHANGED')) continue;
    station.journal.setFile(batchId, f.path, {
      class: e.class, format: e.format ?? null, size: e.size, mtime_ms: Math.floor(e.mtimeMs),
      state: e.rejected ? (e.rejected.code === 'E_CARD_READ' ? 'failed' : 'rejected') : 'seen',
      error_code: e.rejected?.code ?? null, error_message: e.rejected?.message ?? null, error_hint: e.rejected?.hint ?? null,
    });
  }
}

async function checkWritable(station: Station, batchId: string, card: string, id: CardIdentity, emit: EventSink): Promise<void> {
  if (!id.writable) return;
  await station.audit.append('card-writable', { batchId, card, mountPoint: id.mountPoint, mountOptions: id.mountOptions, policy: station.config.policy.writableCard });
  emit({ type: 'card-writable', batchId, card, refused: station.config.policy.writableCard === 'refuse', ...(id.mountOptions ? { mountOptions: id.mountOptions } : {}) });
  if (station.config.policy.writableCard === 'refuse') {
    throw new KluisError('E_CARD_WRITABLE', `the card at ${card} is mounted read-write; policy refuses to read it`, {
      hint: 'remount it read-only (mount -o remount,ro,noatime) or install the udev rule in deploy/, then insert it again',
    });
  }
}

/**
 * Reads every not-yet-acquired file from the card once (the card reader worker: hashes, sealed
 * original, working copy), and as each one is journaled hands it to the sanitize/seal workers, so
 * reading the card and sanitizing overlap. Once the card is read, the reader's threads end and the
 * sanitize/seal workers grow to `afterCard`, so the files still queued use every core. Then decides
 * whether the card may be removed (card-safe.ts).
 */
async function acquireAndProcess(station: Station, batch: BatchRow, cardRoot: string, emit: EventSink, concurrency: number, afterCard: number): Promise<void> {
  const { journal, audit } = station;
  const batchId = batch.id;
  const sp = await ensureSpool(station.layout.spoolDir, batchId);
  const files = journal.files(batchId);
  const todo = files.filter((f) => f.state === 'seen');
  const bytesTotal = todo.reduce((s, f) => s + f.size, 0);
  let bytesDone = 0;
  let filesDone = 0;
  let cardGone = false;
  const recipients = station.recipients.map((r) => formatPublicKey(r));
  const originalTargets = originalsTargets(station);

  const reader = new WorkerPool(1);
  const processing = new Processing(station, batchId, sp, emit, new WorkerPool(concurrency, { background: true }));
  for (const f of files) if (f.state === 'acquired' || f.state === 'sanitized') processing.add(f.path, true);
  /**
   * What follows a file's read (its sealed original made durable and put in place, then audit,
   * journal and hand-over) runs as `tail`, in card order, while the next file is read: file N's
   * after-read work overlaps file N+1's read, and file N+2's read starts only once file N's
   * after-read work has ended, so at most one file's work is outstanding behind the reader. A
   * file's error is handled as before: a full disk stops the batch, a card gone ends the read.
   */
  let tail: Promise<void> = Promise.resolve();
  let older: Promise<void> = Promise.resolve();
  let stop: unknown;
  const fileError = async (f: (typeof todo)[number], e: unknown): Promise<void> => {
    const err = await diskFullOr(asKluisError(e, 'E_CARD_READ'), sp.dir);
    if (err.code === 'E_DISK_FULL' || err.code === 'E_INTERNAL' || err.code === 'E_SPOOL') throw err;
    if (!(await cardPresent(cardRoot))) {
      cardGone = true;
      return;
    }
    journal.setFile(batchId, f.path, { state: 'failed', error_code: err.code, error_message: err.message, error_hint: err.hint ?? null });
    await audit.append('file-rejected', { batchId, file: f.path, code: err.code, reason: err.message });
    emit({ type: 'file-state', batchId, path: f.path, state: 'failed', error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } });
  };
  const afterRead = async (f: (typeof todo)[number], r: CardReadResult, workingCopy: string | null, origId: string, origPath: string): Promise<void> => {
    if (r.sealed?.pending) await publishSealed(r.sealed.pending, origPath);
    crashPoint('after-acquire');
    bytesDone += f.size;
    filesDone += 1;
    const changed = r.size !== f.size || Math.floor(r.mtimeMs) !== f.mtime_ms ? { size: r.size, mtime_ms: Math.floor(r.mtimeMs) } : {};
    if (workingCopy) {
      // Audit before journal throughout: a kill in between repeats a true audit line on
      // resume; the other order would lose the card hash from the audit log for good.
      await audit.append('file-acquired', {
        batchId, file: f.path, size: r.size, sha256: r.sha256, xxh128: r.xxh128,
        ...(r.size !== f.size ? { listedSize: f.size } : {}), ...(r.attempts > 1 ? { reads: r.attempts } : {}),
      });
      const sealed = r.sealed!;
      await audit.append('file-sealed', {
        batchId, file: f.path, object: `${batchId}/${origId}`, kind: 'original', sha256: sealed.sha256, size: sealed.size,
        ...(originalTargets.length > 0 ? { targets: originalTargets } : {}), recipients,
      });
      journal.db.transaction(() => {
        journal.setFile(batchId, f.path, {
          state: 'acquired', card_sha256: r.sha256, card_xxh128: r.xxh128, spool_path: workingCopy, ...changed,
          orig_object_id: origId, orig_sealed_path: origPath, orig_sealed_sha256: sealed.sha256, orig_sealed_size: sealed.size,
          error_code: null, error_message: null, error_hint: null,
        });
        // Originals go sealed to the targets the admin allowed them on, and nowhere else.
        if (originalTargets.length > 0) journal.enqueue(batchId, `${batchId}/${origId}`, originalTargets, { size: sealed.size, sha256: sealed.sha256, localPath: origPath });
      })();
      emit({ type: 'file-state', batchId, path: f.path, state: 'acquired' });
      processing.add(f.path, false);
    } else {
      const reason = f.class === 'sidecar' ? 'vendor sidecar (telemetry/proxy): withheld by policy' : 'not a recognised picture or video format: withheld (kluis cannot prove it clean)';
      const code = f.class === 'sidecar' ? 'W_SIDECAR_WITHHELD' : 'W_UNKNOWN_WITHHELD';
      journal.setFile(batchId, f.path, { state: 'withheld', card_sha256: r.sha256, card_xxh128: r.xxh128, ...changed, error_code: code, error_message: reason });
      await audit.append('file-withheld', { batchId, file: f.path, size: r.size, sha256: r.sha256, reason });
      emit({ type: 'file-state', batchId, path: f.path, state: 'withheld' });
    }
    emit({ type: 'acquire-progress', batchId, path: f.path, bytesDone, bytesTotal, filesDone, filesTotal: todo.length });
  };
  try {
    for (const f of todo) {
      // The after-read work of the file before the last has ended before this one is read.
      await older;
      if (stop) throw stop;
      if (cardGone || processing.error) break;
      const src = cardFsPath(cardRoot, f.path);
      const keep = isStored(station, f);
      const workingCopy = keep ? path.join(sp.acquired, newId(8)) : null;
      const origId = newId(16);
      const origPath = path.join(sp.sealed, origId);
      let r: CardReadResult;
      try {
        let lastShown = 0;
        r = await reader.run('read-card', { src, expectSize: f.size, workingCopy, sealTo: keep ? origPath : null, deferSeal: true, recipients }, (n) => {
          if (n - lastShown >= 4 * 1024 * 1024) {
            lastShown = n;
            emit({ type: 'acquire-progress', batchId, path: f.path, bytesDone: bytesDone + n, bytesTotal, filesDone, filesTotal: todo.length });
          }
        });
      } catch (e) {
        await tail;
        if (stop) throw stop;
        await fileError(f, e);
        if (cardGone) break;
        continue;
      }
      const prev = tail;
      older = prev;
      tail = (async () => {
        await prev;
        try {
          await afterRead(f, r, workingCopy, origId, origPath);
        } catch (e) {
          await fileError(f, e);
        }
      })().catch((e: unknown) => {
        stop ??= e;
      });
    }
    await tail;
    if (stop) throw stop;
    await reader.close();
    processing.grow(afterCard);
    if (processing.error) throw processing.error;
    await decideCardSafe(station, batchId, cardRoot, cardGone, emit);
  } finally {
    await tail; // never rejects; a file's after-read work does not outlive the batch
    await reader.close();
    await processing.finish();
  }
}
