/**
 * The per-file work of a batch after the card read, on a pool of worker threads: each acquired
 * file is sanitized from its working copy straight into a sealed object, journaled and queued for
 * every target; a file that cannot be sanitized is kept as its sealed original (held on the
 * station when no target takes originals). A full spool disk stops the batch with the files not
 * started still acquired (resumable); any other failure is the file's own. It never reads the
 * card, only the working copies in the spool.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../errors.js';
import { formatPublicKey } from '../seal/index.js';
import { originalsTargets } from './batch-plan.js';
import { crashPoint } from './crash.js';
import type { EventSink } from './events.js';
import type { FileRow } from './journal.js';
import type { Station } from './station.js';
import { heldPathFor, holdSealed } from './hold.js';
import { WorkerPool } from './workers.js';
import { ensureSpool, newId, type SpoolPaths } from './spool.js';

/**
 * The files of one batch being sanitized and sealed on a worker pool. The first error that must
 * stop the batch (a full disk) is kept; files not started by then stay acquired (resumable).
 */
export class Processing {
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

  /** Lets up to `workers` files be processed at once from now on (never fewer than before). */
  grow(workers: number): void {
    this.pool.grow(workers);
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
export async function diskFullOr(err: KluisError, spoolDir: string): Promise<KluisError> {
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
