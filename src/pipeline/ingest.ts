/**
 * The ingest job chain for one card: inventory → acquire → sanitize → seal → deliver → verify,
 * each step recorded in the journal after its work is durable, so the same call on the same
 * card (or `resume`) continues where a crash, a pulled card or a dead network left it.
 *
 * Decisions live here (what is footage, what is withheld, when a batch is secured, when the card
 * is safe to remove); the stages it calls hold the technology. It never writes to the card;
 * the optional wipe is a separate step (wipe.ts) that runs only on a secured batch.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../errors.js';
import { inventory, type CardEntry } from '../card/inventory.js';
import { cardFsPath } from '../card/names.js';
import { acquireFile } from '../card/acquire.js';
import { cardIdentity, type CardIdentity } from '../card/identity.js';
import { sanitizeFile } from '../sanitize/index.js';
import type { SanitizeResult } from '../sanitize/types.js';
import { sealFile } from '../seal/index.js';
import { formatPublicKey } from '../seal/keys.js';
import { errorLines, oneLine } from '../util/terminal.js';
import { crashPoint } from './crash.js';
import { deliverAlongside, drainOutbox, pool } from './deliver.js';
import { fanOut, type EventSink, type PipelineEvent } from './events.js';
import type { BatchRow, FileRow } from './journal.js';
import type { Station } from './station.js';
import { finalizeBatch, batchOutcome, recordBatchStatus, type BatchOutcome } from './finalize.js';
import { makeThumbnail } from './thumbs.js';
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
 * Sanitize/seal workers: one more than the cores, at least 2. A worker spends part of each file
 * waiting (fsyncs, the ExifTool round trip, ffmpeg's start-up), so cores + 1 keeps every core
 * busy; measured on the 2-core bench VM, 3 workers take the 2 GB bench card 7 % faster than 2,
 * at the same CPU time. Each worker holds at most one picture in memory (MAX_IMAGE_BYTES).
 */
export function defaultWorkers(): number {
  return Math.max(2, os.availableParallelism() + 1);
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
  if (!entries.some((e) => e.path.toUpperCase().startsWith('DCIM/'))) {
    process.stderr.write(`kluis: warning: ${oneLine(cardRoot)} holds no DCIM/ folder; is this really a camera card?\n`);
  }
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
  await checkWritable(station, batchId, cardRoot, identity, emit);

  await reportRejections(station, batchId, previous.length === 0);
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
    if (!deliveries && (e.type === 'safe-to-remove' || e.type === 'card-missing')) deliveries = deliverAlongside(station, emit, batchId);
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

/** Says on stderr why each rejected entry is not taken; audits it once, when the batch is new. */
async function reportRejections(station: Station, batchId: string, firstTime: boolean): Promise<void> {
  for (const f of station.journal.files(batchId)) {
    if (f.state !== 'rejected' && !(f.state === 'failed' && f.error_code === 'E_CARD_READ' && !f.card_sha256)) continue;
    process.stderr.write(errorLines({ code: f.error_code ?? 'E_REJECTED', message: f.error_message ?? 'rejected', hint: f.error_hint ?? undefined }, f.path));
    if (firstTime) await station.audit.append('file-rejected', { batchId, file: f.path, code: f.error_code, reason: f.error_message });
  }
}

async function checkWritable(station: Station, batchId: string, card: string, id: CardIdentity, emit: EventSink): Promise<void> {
  if (!id.writable) return;
  await station.audit.append('card-writable', { batchId, card, mountPoint: id.mountPoint, mountOptions: id.mountOptions, policy: station.config.policy.writableCard });
  emit({ type: 'card-writable', batchId, card, ...(id.mountOptions ? { mountOptions: id.mountOptions } : {}) });
  if (station.config.policy.writableCard === 'refuse') {
    throw new KluisError('E_CARD_WRITABLE', `the card at ${card} is mounted read-write; policy refuses to read it`, {
      hint: 'remount it read-only (mount -o remount,ro,noatime) or install the udev rule in deploy/, then insert it again',
    });
  }
  process.stderr.write(`kluis: warning: the card at ${oneLine(card)} is mounted READ-WRITE (${oneLine(id.mountOptions ?? 'unknown options')}); kluis will not write to it, but mount cards read-only (see deploy/)\n`);
}

async function checkSpace(station: Station, batchId: string): Promise<void> {
  const need = station.journal
    .files(batchId)
    .filter((f) => f.state === 'seen' && isStored(station, f))
    .reduce((s, f) => s + f.size, 0);
  const biggest = Math.max(0, ...station.journal.files(batchId).map((f) => f.size));
  // Room for every acquired file plus, for the largest, its sanitized and sealed copies.
  const needed = need + 2 * biggest + 16 * 1024 * 1024;
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
 * Reads every not-yet-acquired file from the card once, and as each one lands in the spool,
 * hands it to the sanitize/seal workers, so reading the card and sealing overlap.
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

  const queue: FileRow[] = files.filter((f) => f.state === 'acquired' || f.state === 'sanitized');
  let producing = true;
  let waiters: Array<() => void> = [];
  // A worker's error (disk full) must stop the reading and reach the caller, never float as an
  // unhandled rejection that kills the process with a stack trace.
  let workerError: unknown;
  const consumers = Array.from({ length: concurrency }, async () => {
    for (;;) {
      const next = queue.shift();
      if (next) {
        await processFile(station, batchId, next.path, sp, emit);
        continue;
      }
      if (!producing) return;
      await new Promise<void>((r) => waiters.push(r));
    }
  }).map((p) =>
    p.catch((e: unknown) => {
      workerError ??= e;
    }),
  );
  const notify = (): void => {
    const ws = waiters;
    waiters = [];
    for (const w of ws) w();
  };

  try {
    for (const f of todo) {
      if (cardGone || workerError) break;
      const src = cardFsPath(cardRoot, f.path);
      const keep = isStored(station, f);
      const dst = keep ? path.join(sp.acquired, `${newId(8)}`) : null;
      try {
        let last = 0;
        const r = await acquireFile(src, dst, f.size, (n) => {
          bytesDone += n;
          if (bytesDone - last >= 4 * 1024 * 1024) {
            last = bytesDone;
            emit({ type: 'acquire-progress', batchId, path: f.path, bytesDone, bytesTotal, filesDone, filesTotal: todo.length });
          }
          crashPoint('mid-acquire');
        });
        crashPoint('after-acquire');
        filesDone += 1;
        if (keep) {
          // Audit before journal throughout: a kill in between repeats a true audit line on
          // resume; the other order would lose the card hash from the audit log for good.
          await audit.append('file-acquired', { batchId, file: f.path, size: r.size, sha256: r.sha256, xxh128: r.xxh128 });
          journal.setFile(batchId, f.path, { state: 'acquired', card_sha256: r.sha256, card_xxh128: r.xxh128, spool_path: dst, error_code: null, error_message: null, error_hint: null });
          emit({ type: 'file-state', batchId, path: f.path, state: 'acquired' });
          queue.push(journal.file(batchId, f.path)!);
          notify();
        } else {
          const reason = f.class === 'sidecar' ? 'vendor sidecar (telemetry/proxy): withheld by policy' : 'not a recognised picture or video format: withheld (kluis cannot prove it clean)';
          const code = f.class === 'sidecar' ? 'W_SIDECAR_WITHHELD' : 'W_UNKNOWN_WITHHELD';
          journal.setFile(batchId, f.path, { state: 'withheld', card_sha256: r.sha256, card_xxh128: r.xxh128, error_code: code, error_message: reason });
          await audit.append('file-withheld', { batchId, file: f.path, size: r.size, sha256: r.sha256, reason });
          emit({ type: 'file-state', batchId, path: f.path, state: 'withheld' });
        }
        emit({ type: 'acquire-progress', batchId, path: f.path, bytesDone, bytesTotal, filesDone, filesTotal: todo.length });
      } catch (e) {
        const err = asKluisError(e, 'E_CARD_READ');
        if (err.code === 'E_DISK_FULL') throw err;
        if (!(await cardPresent(cardRoot))) {
          cardGone = true;
          break;
        }
        journal.setFile(batchId, f.path, { state: 'failed', error_code: err.code, error_message: err.message, error_hint: err.hint ?? null });
        await audit.append('file-rejected', { batchId, file: f.path, code: err.code, reason: err.message });
        emit({ type: 'file-state', batchId, path: f.path, state: 'failed', error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } });
        process.stderr.write(errorLines(err, f.path));
      }
    }
    if (workerError) throw workerError;
    const remaining = journal.files(batchId).filter((f) => f.state === 'seen').length;
    if (cardGone || remaining > 0) {
      journal.setBatch(batchId, { status: 'acquiring' });
      emit({ type: 'card-missing', batchId, card: cardRoot, remaining });
      process.stderr.write(
        errorLines({
          code: 'E_CARD_REMOVED',
          message: `the card was removed before ${remaining} file(s) were read`,
          hint: 'insert the card again and run the same command; files already read are kept and are not read again',
        }),
      );
    } else {
      const t = new Date().toISOString();
      if (!journal.batch(batchId)!.safe_to_remove_at) {
        journal.setBatch(batchId, { safe_to_remove_at: t, status: 'processing' });
        await audit.append('card-safe-to-remove', { batchId, card: cardRoot });
      }
      emit({ type: 'safe-to-remove', batchId, card: cardRoot });
    }
  } finally {
    producing = false;
    notify();
    await Promise.all(consumers);
  }
  if (workerError) throw workerError;
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
  const rows = station.journal.files(batchId).filter((f) => f.state === 'acquired' || f.state === 'sanitized');
  await pool(rows, concurrency, (f) => processFile(station, batchId, f.path, sp, emit));
}

async function processFile(station: Station, batchId: string, filePath: string, sp: SpoolPaths, emit: EventSink): Promise<void> {
  const { journal, audit } = station;
  let f = journal.file(batchId, filePath)!;
  try {
    if (f.state === 'acquired') {
      const out = path.join(sp.sanitized, newId(8));
      let result: SanitizeResult;
      try {
        result = await sanitizeFile(f.spool_path!, out, { thermal: station.config.policy.thermal });
      } catch (e) {
        const err = await diskFullOr(asKluisError(e, 'E_SANITIZE_FAILED'), sp.dir);
        await fsp.rm(out, { force: true });
        if (err.code === 'E_DISK_FULL') throw err;
        await fsp.rm(f.spool_path!, { force: true });
        journal.setFile(batchId, filePath, { state: 'failed', error_code: err.code, error_message: err.message, error_hint: err.hint ?? null, spool_path: null });
        await audit.append('file-sanitize-failed', { batchId, file: filePath, code: err.code, reason: err.message });
        emit({ type: 'file-state', batchId, path: filePath, state: 'failed', error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } });
        process.stderr.write(errorLines(err, filePath));
        return;
      }
      const thumb = await makeThumbnail(out, result.format, path.join(sp.thumbs, `${newId(8)}.jpg`));
      await audit.append('file-sanitized', {
        batchId, file: filePath, format: result.format, sha256: result.sha256, size: result.size,
        essence: result.essence, removed: result.removed, kept: result.kept, checks: result.checks,
      });
      journal.setFile(batchId, filePath, { state: 'sanitized', sanitized_path: out, sanitize_json: JSON.stringify(result), thumb_path: thumb, format: result.format });
      emit({ type: 'file-state', batchId, path: filePath, state: 'sanitized' });
      crashPoint('after-sanitize');
      f = journal.file(batchId, filePath)!;
    }
    if (f.state === 'sanitized') {
      const objectId = newId(16);
      const sealedPath = path.join(sp.sealed, objectId);
      crashPoint('mid-seal');
      const sealed = await sealFile(f.sanitized_path!, sealedPath, station.recipients);
      const key = `${batchId}/${objectId}`;
      await audit.append('file-sealed', {
        batchId, file: filePath, object: key, sha256: sealed.sha256, size: sealed.size,
        recipients: station.recipients.map((r) => formatPublicKey(r)),
      });
      // Originals (the card's bytes, unsanitized) go sealed to the targets the admin allowed them on, and nowhere else.
      const originalTargets = [...station.targetConfigs.values()].filter((t) => t.originalsAllowed).map((t) => t.name);
      let original: { id: string; path: string; sha256: string; size: number } | undefined;
      if (originalTargets.length > 0) {
        const id = newId(16);
        const p = path.join(sp.sealed, id);
        const o = await sealFile(f.spool_path!, p, station.recipients);
        original = { id, path: p, sha256: o.sha256, size: o.size };
        await audit.append('file-sealed', {
          batchId, file: filePath, object: `${batchId}/${id}`, kind: 'original', sha256: o.sha256, size: o.size, targets: originalTargets,
          recipients: station.recipients.map((r) => formatPublicKey(r)),
        });
      }
      journal.db.transaction(() => {
        journal.setFile(batchId, filePath, {
          state: 'sealed', object_id: objectId, sealed_path: sealedPath, sealed_sha256: sealed.sha256, sealed_size: sealed.size,
          ...(original ? { orig_object_id: original.id, orig_sealed_path: original.path, orig_sealed_sha256: original.sha256, orig_sealed_size: original.size } : {}),
        });
        journal.enqueue(batchId, key, [...station.targets.keys()], { size: sealed.size, sha256: sealed.sha256, localPath: sealedPath });
        if (original) journal.enqueue(batchId, `${batchId}/${original.id}`, originalTargets, { size: original.size, sha256: original.sha256, localPath: original.path });
      })();
      crashPoint('after-seal');
      // Plaintext leaves the spool as soon as the sealed copy is durable and journaled.
      await fsp.rm(f.sanitized_path!, { force: true });
      await fsp.rm(f.spool_path!, { force: true });
      journal.setFile(batchId, filePath, { spool_path: null, sanitized_path: null });
      emit({ type: 'file-state', batchId, path: filePath, state: 'sealed' });
    }
  } catch (e) {
    const err = await diskFullOr(asKluisError(e), sp.dir);
    if (err.code === 'E_DISK_FULL') throw err;
    // A file failed for good keeps no plaintext: its card copy and sanitized copy leave the spool
    // now, not whenever a later run happens to clean it (that may be never after a one-off ingest).
    const row = journal.file(batchId, filePath);
    await audit.append('file-rejected', { batchId, file: filePath, code: err.code, reason: err.message });
    journal.setFile(batchId, filePath, { state: 'failed', error_code: err.code, error_message: err.message, error_hint: err.hint ?? null, spool_path: null, sanitized_path: null });
    for (const p of [row?.spool_path, row?.sanitized_path]) if (p) await fsp.rm(p, { force: true });
    emit({ type: 'file-state', batchId, path: filePath, state: 'failed', error: { code: err.code, message: err.message } });
    process.stderr.write(errorLines(err, filePath));
  }
}
