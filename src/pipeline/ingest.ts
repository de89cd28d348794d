/**
 * The ingest job chain for one card: inventory → acquire → sanitize → seal → deliver → verify,
 * each step recorded in the journal after its work is durable, so the same call on the same
 * card (or `resume`) continues where a crash, a pulled card or a dead network left it.
 *
 * One pass over the bytes: each card file is read once, and on those bytes the card reader
 * hashes it, seals the original into the spool (fsynced: this is what makes the card safe to
 * remove) and writes a plaintext working copy; a sanitize/seal worker then reads that copy once
 * and seals the sanitized stream as it is produced. The byte work runs on worker threads
 * (workers.ts, tasks.ts); this module, on the main thread, keeps the journal and the audit log.
 *
 * Decisions live here (what is footage, what is withheld, when a batch is secured, when the card
 * is safe to remove); the stages it calls hold the technology. It never writes to the card;
 * the optional wipe is a separate step (wipe.ts) that runs only on a secured batch. It never
 * writes to the terminal either: every problem and warning is an event (events.ts) that the
 * command line renders (cli/progress.ts), the journal keeps and the dashboard shows.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../errors.js';
import { cardFsPath, cardIdentity, inventory, type CardEntry, type CardIdentity } from '../card/index.js';
import { formatPublicKey } from '../seal/index.js';
import { crashPoint } from './crash.js';
import { deliverAlongside, drainOutbox } from './deliver.js';
import { fanOut, type EventSink, type PipelineEvent } from './events.js';
import type { BatchRow, FileRow } from './journal.js';
import type { Station } from './station.js';
import { finalizeBatch, batchOutcome, recordBatchStatus, type BatchOutcome } from './finalize.js';
import { heldPathFor, holdSealed } from './hold.js';
import { WorkerPool } from './workers.js';
import { ensureSpool, newId, type SpoolPaths } from './spool.js';

export interface IngestOptions {
  card: string;
  onEvent?: EventSink;
  /** How long to keep retrying deliveries before leaving the rest queued (ms). */
  deliveryWaitMs?: number;
  /** Parallel sanitize/seal workers (default: defaultWorkers()). */
  concurrency?: number;
}

/**
 * Sanitize/seal worker threads: one per core, at least 2, beside the card reader's own thread
 * while the card is read. They run at a lower CPU priority than the reader, and a worker spends
 * part of each file waiting (ExifTool, ffmpeg, fsyncs), so the cores stay busy. Each worker holds
 * at most one picture in memory (MAX_IMAGE_BYTES) and its own heap: on the 2-core bench VM a third
 * worker added ~60 MB of peak RSS (ingest of the 200 MB bench card: 363 MB with 2, 428 with 3).
 */
export function defaultWorkers(): number {
  return Math.max(2, os.availableParallelism());
}

/** Persisted acquire-progress events are at most this frequent (each is a synchronous fsync'ed insert). */
const PROGRESS_PERSIST_MS = 500;

/**
 * Journal events go to the dashboard; the caller's sink gets them too. Progress events are only
 * a display: the journal keeps one per PROGRESS_PERSIST_MS (and the last of the card), because
 * each insert is a synchronous fsync on the event loop that also drives the card copy.
 */
function sinkFor(station: Station, onEvent?: EventSink): EventSink {
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
  await withDeliveryAlongside(station, batchId, emit, { afterCard: true }, (e) => acquireAndProcess(station, batch, cardRoot, e, opts.concurrency ?? defaultWorkers()));
  await drainOutbox(station, emit, { batchId, waitMs: opts.deliveryWaitMs ?? 15_000 });
  await finalizeBatch(station, batchId, emit);
  await drainOutbox(station, emit, { batchId, waitMs: opts.deliveryWaitMs ?? 15_000 });
  return recordBatchStatus(station, batchId, emit);
}

/** Continues every unfinished batch that no longer needs its card (sanitize, seal, deliver). */
export async function resumeAll(station: Station, opts: { onEvent?: EventSink; deliveryWaitMs?: number } = {}): Promise<BatchOutcome[]> {
  const emit = sinkFor(station, opts.onEvent);
  const out: BatchOutcome[] = [];
  for (const b of station.journal.unfinishedBatches()) {
    await withDeliveryAlongside(station, b.id, emit, { afterCard: false }, (e) => processAcquired(station, b.id, e, defaultWorkers()));
    await drainOutbox(station, emit, { batchId: b.id, waitMs: opts.deliveryWaitMs ?? 0 });
    await finalizeBatch(station, b.id, emit);
    await drainOutbox(station, emit, { batchId: b.id, waitMs: opts.deliveryWaitMs ?? 0 });
    out.push(await recordBatchStatus(station, b.id, emit));
  }
  return out;
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
async function withDeliveryAlongside(
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

/** Says (an event per file) why each rejected entry is not taken; audits it once, when the batch is new. */
async function reportRejections(station: Station, batchId: string, firstTime: boolean, emit: EventSink): Promise<void> {
  for (const f of station.journal.files(batchId)) {
    if (f.state !== 'rejected' && !(f.state === 'failed' && f.error_code === 'E_CARD_READ' && !f.card_sha256)) continue;
    const code = f.error_code ?? 'E_REJECTED';
    emit({ type: 'file-state', batchId, path: f.path, state: f.state, error: { code, message: f.error_message ?? 'rejected', ...(f.error_hint ? { hint: f.error_hint } : {}) } });
    if (firstTime) await station.audit.append('file-rejected', { batchId, file: f.path, code: f.error_code, reason: f.error_message });
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

async function checkSpace(station: Station, batchId: string): Promise<void> {
  const need = station.journal
    .files(batchId)
    .filter((f) => f.state === 'seen' && isStored(station, f))
    .reduce((s, f) => s + f.size, 0);
  const biggest = Math.max(0, ...station.journal.files(batchId).map((f) => f.size));
  // Room for every file's sealed original and its working copy (which becomes its sealed
  // sanitized copy), plus, for the largest, the sanitizer's scratch at worst (the ffmpeg fallback
  // for video works on files) and its partial sealed output.
  const needed = 2 * need + 2 * biggest + 16 * 1024 * 1024;
  const st = await fsp.statfs(station.layout.spoolDir);
  const free = Number(st.bavail) * Number(st.bsize);
  if (free < needed) {
    throw new KluisError('E_DISK_FULL', `the spool disk has ${mb(free)} free, the card needs about ${mb(needed)}`, {
      hint: `free space on the disk holding ${station.layout.spoolDir} (or wait for queued batches to deliver), then insert the card again`,
    });
  }
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}


/**
 * Reads every not-yet-acquired file from the card once (the card reader worker: hashes, sealed
 * original, working copy), and as each one is journaled hands it to the sanitize/seal workers, so
 * reading the card and sanitizing overlap. Then decides whether the card may be removed: only
 * when the original bytes of every footage file are sealed and durable.
 */
async function acquireAndProcess(station: Station, batch: BatchRow, cardRoot: string, emit: EventSink, concurrency: number): Promise<void> {
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
  try {
    for (const f of todo) {
      if (cardGone || processing.error) break;
      const src = cardFsPath(cardRoot, f.path);
      const keep = isStored(station, f);
      const workingCopy = keep ? path.join(sp.acquired, newId(8)) : null;
      const origId = newId(16);
      const origPath = path.join(sp.sealed, origId);
      try {
        let lastShown = 0;
        const r = await reader.run('read-card', { src, expectSize: f.size, workingCopy, sealTo: keep ? origPath : null, recipients }, (n) => {
          if (n - lastShown >= 4 * 1024 * 1024) {
            lastShown = n;
            emit({ type: 'acquire-progress', batchId, path: f.path, bytesDone: bytesDone + n, bytesTotal, filesDone, filesTotal: todo.length });
          }
        });
        crashPoint('after-acquire');
        bytesDone += f.size;
        filesDone += 1;
        const changed = r.size !== f.size || Math.floor(r.mtimeMs) !== f.mtime_ms ? { size: r.size, mtime_ms: Math.floor(r.mtimeMs) } : {};
        if (keep) {
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
      } catch (e) {
        const err = await diskFullOr(asKluisError(e, 'E_CARD_READ'), sp.dir);
        if (err.code === 'E_DISK_FULL' || err.code === 'E_INTERNAL' || err.code === 'E_SPOOL') throw err;
        if (!(await cardPresent(cardRoot))) {
          cardGone = true;
          break;
        }
        journal.setFile(batchId, f.path, { state: 'failed', error_code: err.code, error_message: err.message, error_hint: err.hint ?? null });
        await audit.append('file-rejected', { batchId, file: f.path, code: err.code, reason: err.message });
        emit({ type: 'file-state', batchId, path: f.path, state: 'failed', error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } });
      }
    }
    await reader.close();
    if (processing.error) throw processing.error;
    const rows = journal.files(batchId);
    const remaining = rows.filter((f) => f.state === 'seen').length;
    const unsafe = unsafeFiles(station, rows);
    if (cardGone || remaining > 0) {
      journal.setBatch(batchId, { status: 'acquiring' });
      emit({ type: 'card-missing', batchId, card: cardRoot, remaining });
    } else if (unsafe.length > 0) {
      journal.setBatch(batchId, { status: 'acquiring' });
      emit({
        type: 'card-not-safe', batchId, card: cardRoot,
        files: unsafe.map((f) => ({ path: f.path, code: f.error_code ?? 'E_CARD_READ', message: f.error_message ?? 'not read' })),
      });
    } else {
      if (!journal.batch(batchId)!.safe_to_remove_at) {
        await audit.append('card-safe-to-remove', { batchId, card: cardRoot });
        journal.setBatch(batchId, { safe_to_remove_at: new Date().toISOString(), status: 'processing' });
      }
      emit({ type: 'safe-to-remove', batchId, card: cardRoot });
    }
  } finally {
    await reader.close();
    await processing.finish();
  }
}

/**
 * Files whose card bytes are not sealed and durable, so removing the card would lose them:
 * footage (and stored proxies) without a sealed original, and files that could not even be
 * read to be classified. Withheld sidecars are not kept by policy; links, special and empty
 * files hold nothing to keep.
 */
function unsafeFiles(station: Station, rows: FileRow[]): FileRow[] {
  return rows.filter((f) => {
    if (f.state === 'rejected' || f.state === 'withheld') return false;
    if (isStored(station, f)) return !f.orig_sealed_sha256 && !(f.state === 'sealed' && !f.orig_object_id); // (the latter: a journal from before originals were always sealed)
    return f.state === 'failed' && !f.card_sha256 && f.class === 'other' && (f.error_code ?? '').startsWith('E_CARD');
  });
}

function originalsTargets(station: Station): string[] {
  return [...station.targetConfigs.values()].filter((t) => t.originalsAllowed).map((t) => t.name);
}

/**
 * The files of one batch being sanitized and sealed on a worker pool. The first error that must
 * stop the batch (a full disk) is kept; files not started by then stay acquired (resumable).
 */
class Processing {
  error: unknown;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly station: Station,
    private readonly batchId: string,
    private readonly sp: SpoolPaths,
    private readonly emit: EventSink,
    private readonly pool: WorkerPool,
  ) {}

  add(filePath: string, resumed: boolean): void {
    const p: Promise<void> = (async () => {
      if (this.error) return;
      await processFile(this.station, this.batchId, filePath, this.sp, this.emit, this.pool, resumed);
    })().catch((e: unknown) => {
      this.error ??= e;
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Waits for every file added, closes the pool, and throws the first batch-stopping error. */
  async finish(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    await this.pool.close();
    if (this.error) throw this.error;
  }
}

/**
 * A tool that ran out of space (ffmpeg, the sealer) may report it under its own code. Whether
 * the spool disk is full is decided by the error's errno chain or by the disk itself, so a full
 * disk leaves the file resumable instead of failing it for good.
 */
async function diskFullOr(err: KluisError, spoolDir: string): Promise<KluisError> {
  if (err.code === 'E_DISK_FULL') return err;
  let full = false;
  for (let c: unknown = err.cause; c && !full; c = (c as { cause?: unknown }).cause) {
    const code = (c as NodeJS.ErrnoException).code;
    full = code === 'ENOSPC' || code === 'EDQUOT' || code === 'E_DISK_FULL';
  }
  const st = full ? null : await fsp.statfs(spoolDir).catch(() => null);
  if (full || (st && Number(st.bavail) * Number(st.bsize) < 1024 * 1024)) {
    return new KluisError('E_DISK_FULL', `the spool disk is full (${err.code}: ${err.message})`, {
      hint: 'free space on the disk holding the spool, then run the same command again; queued work resumes',
      cause: err,
    });
  }
  return err;
}

/**
 * Which files are copied, sanitized and stored: footage always; an LRF proxy (video bytes in a
 * sidecar role) only when the admin's policy says `lrf: "sanitize"`; every other sidecar never.
 */
export function isStored(station: Station, f: Pick<FileRow, 'class' | 'format' | 'path'>): boolean {
  if (f.class === 'footage') return true;
  const video = f.format === 'mp4' || f.format === 'mov';
  return f.class === 'sidecar' && video && f.path.toLowerCase().endsWith('.lrf') && station.config.policy.lrf === 'sanitize';
}

async function cardPresent(cardRoot: string): Promise<boolean> {
  try {
    await fsp.access(cardRoot);
    await fsp.readdir(cardRoot);
    return true;
  } catch {
    return false;
  }
}

/** Sanitizes and seals every acquired file of a batch (used on resume, card not needed). */
export async function processAcquired(station: Station, batchId: string, emit: EventSink, concurrency: number): Promise<void> {
  const sp = await ensureSpool(station.layout.spoolDir, batchId);
  const processing = new Processing(station, batchId, sp, emit, new WorkerPool(concurrency, { background: true }));
  for (const f of station.journal.files(batchId)) if (f.state === 'acquired' || f.state === 'sanitized') processing.add(f.path, true);
  await processing.finish();
}

/**
 * One acquired file: sanitized from its working copy straight into a sealed object (a worker
 * task), then journaled and queued for every target; or, when it cannot be sanitized, held as
 * its sealed original. `resumed`: picked up from the journal rather than just read, so the
 * working copy is checked against the card hash first (it is not fsynced, see card/acquire.ts).
 */
async function processFile(station: Station, batchId: string, filePath: string, sp: SpoolPaths, emit: EventSink, pool: WorkerPool, resumed: boolean): Promise<void> {
  const { journal, audit } = station;
  let f = journal.file(batchId, filePath)!;
  const recipients = station.recipients.map((r) => formatPublicKey(r));
  if (f.state === 'sanitized') {
    // Left by a kluis that sanitized into a plaintext file and sealed in a second step: that file
    // is dropped (spool clean-up removes it) and the working copy is sanitized again.
    journal.setFile(batchId, filePath, { state: 'acquired', sanitized_path: null });
    f = journal.file(batchId, filePath)!;
  }
  if (f.state !== 'acquired') return;
  try {
    if (resumed || !f.orig_sealed_sha256) {
      // A file acquired before originals were always sealed gets its original sealed now, from
      // the working copy, which must still hash to what was read from the card.
      const origId = newId(16);
      const origPath = path.join(sp.sealed, origId);
      const r = await pool.run('check-copy', { input: f.spool_path ?? '', expect: { sha256: f.card_sha256!, size: f.size }, sealTo: f.orig_sealed_sha256 ? null : origPath, recipients });
      if (r.sealed) {
        const targets = originalsTargets(station);
        await audit.append('file-sealed', { batchId, file: filePath, object: `${batchId}/${origId}`, kind: 'original', sha256: r.sealed.sha256, size: r.sealed.size, ...(targets.length > 0 ? { targets } : {}), recipients });
        journal.db.transaction(() => {
          journal.setFile(batchId, filePath, { orig_object_id: origId, orig_sealed_path: origPath, orig_sealed_sha256: r.sealed!.sha256, orig_sealed_size: r.sealed!.size });
          if (targets.length > 0) journal.enqueue(batchId, `${batchId}/${origId}`, targets, { size: r.sealed!.size, sha256: r.sealed!.sha256, localPath: origPath });
        })();
        f = journal.file(batchId, filePath)!;
      }
    }
  } catch (e) {
    const err = await diskFullOr(asKluisError(e, 'E_SPOOL_COPY_LOST'), sp.dir);
    if (err.code === 'E_DISK_FULL') throw err;
    await keepOriginalOnly(station, batchId, f, err, emit);
    return;
  }

  const objectId = newId(16);
  const sealedPath = path.join(sp.sealed, objectId);
  let out: Awaited<ReturnType<typeof pool.run<'sanitize-seal'>>>;
  try {
    out = await pool.run('sanitize-seal', {
      input: f.spool_path!, output: sealedPath, recipients, policy: { thermal: station.config.policy.thermal }, scratchDir: sp.sanitized, thumbnail: true,
    });
  } catch (e) {
    const err = await diskFullOr(asKluisError(e, 'E_SANITIZE_FAILED'), sp.dir);
    if (err.code === 'E_DISK_FULL') throw err;
    await keepOriginalOnly(station, batchId, f, err, emit);
    return;
  }
  crashPoint('after-sanitize');
  const result = out.result;
  let thumb: string | null = null;
  if (out.thumbnail) {
    thumb = path.join(sp.thumbs, `${newId(8)}.jpg`);
    await fsp.writeFile(thumb, out.thumbnail, { mode: 0o600 }).catch(() => {
      thumb = null; // a preview that cannot be written is "no preview", not a failure of the file
    });
  }
  await audit.append('file-sanitized', {
    batchId, file: filePath, format: result.format, sha256: result.sha256, size: result.size,
    essence: result.essence, removed: result.removed, kept: result.kept, checks: result.checks,
  });
  const key = `${batchId}/${objectId}`;
  await audit.append('file-sealed', { batchId, file: filePath, object: key, sha256: out.sealed.sha256, size: out.sealed.size, recipients });
  journal.db.transaction(() => {
    journal.setFile(batchId, filePath, {
      state: 'sealed', object_id: objectId, sealed_path: sealedPath, sealed_sha256: out.sealed.sha256, sealed_size: out.sealed.size,
      sanitize_json: JSON.stringify(result), thumb_path: thumb, format: result.format,
    });
    journal.enqueue(batchId, key, [...station.targets.keys()], { size: out.sealed.size, sha256: out.sealed.sha256, localPath: sealedPath });
  })();
  crashPoint('after-seal');
  // Plaintext leaves the spool as soon as the sealed copy is durable and journaled.
  if (f.spool_path) await fsp.rm(f.spool_path, { force: true });
  journal.setFile(batchId, filePath, { spool_path: null, sanitized_path: null });
  emit({ type: 'file-state', batchId, path: filePath, state: 'sealed' });
}

/**
 * A footage file that cannot be sanitized is never lost: its sealed original is kept. It is
 * already queued for the targets that allow originals; with none, it is held on the station
 * (hold.ts). The file is 'held' (the batch stays partial) and its plaintext leaves the spool.
 */
async function keepOriginalOnly(station: Station, batchId: string, f: FileRow, err: KluisError, emit: EventSink): Promise<void> {
  const { journal, audit } = station;
  const error = { code: err.code, message: err.message };
  if (!f.orig_sealed_sha256 || !f.orig_object_id || !f.orig_sealed_path) {
    // Only a file acquired by an older kluis whose working copy is gone: nothing sealed to keep.
    await audit.append('file-rejected', { batchId, file: f.path, code: err.code, reason: err.message });
    journal.setFile(batchId, f.path, { state: 'failed', error_code: err.code, error_message: err.message, error_hint: err.hint ?? null, spool_path: null, sanitized_path: null });
    if (f.spool_path) await fsp.rm(f.spool_path, { force: true });
    emit({ type: 'file-state', batchId, path: f.path, state: 'failed', error: { ...error, ...(err.hint ? { hint: err.hint } : {}) } });
    return;
  }
  const targets = journal.deliveries(batchId).filter((d) => d.object_key === `${batchId}/${f.orig_object_id}`).map((d) => d.target);
  let heldAt: string | undefined;
  if (targets.length === 0) {
    heldAt = heldPathFor(station.layout.stateDir, batchId, f.orig_object_id);
    await holdSealed(f.orig_sealed_path, heldAt, f.orig_sealed_size!);
    crashPoint('after-hold');
  }
  const hint = heldAt
    ? `its original is sealed and held on this station at ${heldAt}: open it with the evidence key (kluis decrypt FILE --identity evidence.key -o OUT); the card is not needed for it`
    : `its original is sealed and goes to ${targets.join(', ')} (targets that allow originals): kluis export --originals gives it back`;
  await audit.append('file-held', {
    batchId, file: f.path, code: err.code, reason: err.message, object: `${batchId}/${f.orig_object_id}`,
    sha256: f.orig_sealed_sha256, size: f.orig_sealed_size, cardSha256: f.card_sha256, ...(heldAt ? { heldAt } : { targets }),
  });
  journal.setFile(batchId, f.path, {
    state: 'held', error_code: err.code, error_message: err.message, error_hint: hint, spool_path: null, sanitized_path: null,
    ...(heldAt ? { held_path: heldAt, orig_sealed_path: heldAt } : {}),
  });
  if (f.spool_path) await fsp.rm(f.spool_path, { force: true });
  emit({ type: 'file-state', batchId, path: f.path, state: 'held', error: { ...error, hint }, kept: heldAt ? { heldAt } : { targets } });
}
