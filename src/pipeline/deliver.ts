/**
 * Deliver and verify: moves sealed objects from the outbox to their targets, then reads each
 * one back from the target and checks its SHA-256 against what was sealed. A delivery is
 * "verified" only on that read-back, never on a write's word. Failures are recorded on the
 * delivery with a retry time from the one retry policy; refusals (egress/policy) are final.
 *
 * Only ciphertext ever passes through here: the outbox holds sealed files and signed manifests.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import PQueue from 'p-queue';
import { asKluisError, isRetryable, KluisError } from '../errors.js';
import { backoffMs } from './retry.js';
import { crashPoint } from './crash.js';
import { youngGcEvery } from '../util/young-gc.js';
import type { DeliveryRow } from './journal.js';
import type { Station } from './station.js';
import type { EventSink } from './events.js';

/** A network read-back frees its socket buffers every this many bytes (util/young-gc.ts). */
const READ_BACK_GC_BYTES = 4 << 20;

export async function readBackSha256(station: Station, target: string, key: string): Promise<{ sha256: string; size: number }> {
  const t = station.targets.get(target);
  if (!t) throw new KluisError('E_TARGET_UNKNOWN', `target ${target} is not in the config`);
  if (typeof t.readBackSha256 === 'function') return t.readBackSha256(key);
  const stream = await t.get(key);
  const h = createHash('sha256');
  let size = 0;
  const collect = youngGcEvery(READ_BACK_GC_BYTES);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
    collect(chunk.length);
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * Deliveries an attempt is under way for, per station, in this process. Ingest's deliveries
 * alongside, the watcher's outbox pass and a dashboard retry can reach the same delivery at once
 * (other processes are kept out by the station lock); one attempt at a time keeps the audit log
 * free of repeated `delivered`/`verified` lines and the target free of a second upload.
 */
const underWay = new WeakMap<Station, Set<string>>();

function claimsOf(station: Station): Set<string> {
  let set = underWay.get(station);
  if (!set) underWay.set(station, (set = new Set()));
  return set;
}

function idOf(d: Pick<DeliveryRow, 'batch_id' | 'object_key' | 'target'>): string {
  return `${d.batch_id}\0${d.object_key}\0${d.target}`;
}

/** Whether an attempt at this delivery is under way in this process. */
export function attemptUnderWay(station: Station, d: Pick<DeliveryRow, 'batch_id' | 'object_key' | 'target'>): boolean {
  return claimsOf(station).has(idOf(d));
}

/**
 * One attempt at one delivery: put (unless already delivered), then read back and verify. When
 * another attempt at it is under way in this process, returns at once with the state as it is;
 * otherwise works from the journal's current row (an attempt that just ended may have moved it on).
 */
export async function deliverOne(station: Station, row: DeliveryRow, emit: EventSink): Promise<DeliveryRow['state']> {
  const claims = claimsOf(station);
  const id = idOf(row);
  if (claims.has(id)) return row.state;
  claims.add(id);
  try {
    const d = station.journal.delivery(row.batch_id, row.object_key, row.target) ?? row;
    if (d.state !== 'pending' && d.state !== 'delivered') return d.state;
    return await attempt(station, d, emit);
  } finally {
    claims.delete(id);
  }
}

async function attempt(station: Station, d: DeliveryRow, emit: EventSink): Promise<DeliveryRow['state']> {
  const { journal, audit } = station;
  const t = station.targets.get(d.target);
  const base = { batchId: d.batch_id, object: d.object_key, target: d.target };
  if (!t) {
    journal.setDelivery(d.batch_id, d.object_key, d.target, { state: 'refused', last_error_code: 'E_TARGET_NOT_ALLOWED', last_error: 'target is no longer in the signed config' });
    return 'refused';
  }
  try {
    if (d.state === 'pending') {
      crashPoint('before-put');
      try {
        // localPath lets a target on this file system take the sealed file without copying it.
        await t.put(d.object_key, () => createReadStream(d.local_path, { highWaterMark: 1 << 20 }), { size: d.size, sha256: d.sha256, localPath: d.local_path });
      } catch (err) {
        // Already there from an attempt that crashed after the put: the read-back decides.
        if (!(err instanceof KluisError && err.code === 'E_TARGET_EXISTS')) throw err;
      }
      crashPoint('after-put');
      // Audit first, journal second: a kill in between repeats a true audit line on resume,
      // where the other order would lose it for good (the journal would skip this step).
      await audit.append('delivered', { batchId: d.batch_id, object: d.object_key, target: d.target, size: d.size, sha256: d.sha256 });
      journal.setDelivery(d.batch_id, d.object_key, d.target, { state: 'delivered', last_error_code: null, last_error: null });
      emit({ type: 'delivery', ...base, state: 'delivered' });
      crashPoint('after-delivered');
    }
    const back = await readBackSha256(station, d.target, d.object_key);
    if (back.sha256 !== d.sha256 || back.size !== d.size) {
      // A wrong object under our key: never overwrite evidence; flag it for a person.
      throw new KluisError('E_VERIFY_MISMATCH', `object ${d.object_key} on ${d.target} does not match what was sealed`, {
        hint: 'someone or something changed the stored object; run `kluis verify` and check the target',
        details: { retryable: false },
      });
    }
    await audit.append('verified', { batchId: d.batch_id, object: d.object_key, target: d.target, sha256: back.sha256, size: back.size });
    journal.setDelivery(d.batch_id, d.object_key, d.target, { state: 'verified', last_error_code: null, last_error: null });
    emit({ type: 'delivery', ...base, state: 'verified' });
    crashPoint('after-verify');
    return 'verified';
  } catch (e) {
    const err = asKluisError(e, 'E_TARGET_IO');
    const attempts = d.attempts + 1;
    const refused = err.code.startsWith('E_EGRESS') || err.code.startsWith('E_POLICY') || err.code === 'E_TARGET_NOT_ALLOWED';
    const retry = !refused && isRetryable(err);
    const state = refused ? 'refused' : retry ? d.state : 'failed';
    journal.setDelivery(d.batch_id, d.object_key, d.target, {
      state,
      attempts,
      next_attempt_at: Date.now() + backoffMs(attempts),
      last_error_code: err.code,
      last_error: err.message,
    });
    if (refused) {
      await audit.append('refused', { batchId: d.batch_id, object: d.object_key, target: d.target, code: err.code, reason: err.message, bytesSent: 0 });
    } else {
      await audit.append(d.state === 'pending' ? 'delivery-failed' : 'verify-failed', {
        batchId: d.batch_id, object: d.object_key, target: d.target, code: err.code, reason: err.message, willRetry: retry,
      });
    }
    emit({ type: 'delivery', ...base, state: refused ? 'refused' : retry ? 'queued' : 'failed', error: { code: err.code, message: err.message } });
    return state;
  }
}

export function openDeliveries(station: Station, batchId?: string): DeliveryRow[] {
  // Asked every half second while a batch is processed: the journal filters, not a copy of every row.
  return station.journal.openDeliveries(batchId || undefined);
}

/**
 * Works the outbox: every open delivery whose time has come gets an attempt. With `waitMs`, it
 * keeps trying (sleeping until the next due attempt) until nothing is open or the time is up.
 */
export async function drainOutbox(station: Station, emit: EventSink, opts: { batchId?: string; waitMs?: number; concurrency?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.waitMs ?? 0);
  for (;;) {
    const open = openDeliveries(station, opts.batchId);
    if (open.length === 0) return;
    const free = open.filter((d) => !attemptUnderWay(station, d));
    const due = free.filter((d) => d.next_attempt_at <= Date.now());
    if (due.length > 0) {
      const queue = new PQueue({ concurrency: opts.concurrency ?? 2 });
      await queue.addAll(due.map((d) => () => deliverOne(station, d, emit)));
      continue;
    }
    // What another attempt of this process holds is looked at again shortly.
    const busy = free.length < open.length ? Date.now() + 200 : Infinity;
    const next = Math.min(busy, ...free.map((d) => d.next_attempt_at));
    if (next > deadline) return;
    await new Promise((r) => setTimeout(r, Math.max(50, next - Date.now())));
  }
}

/**
 * Delivers a batch's objects while the batch is still being acquired, sanitized and sealed, so
 * writing to the targets and reading back overlap the proofs instead of following them. Each due
 * delivery gets the same one attempt as in drainOutbox (deliverOne: journaled, crash-safe, never
 * two at once for one delivery). `kick()` says a new object was queued. `stop()` starts no
 * more attempts, waits for those under way, and rethrows an error that escaped deliverOne;
 * drainOutbox then takes over whatever is left, with its waiting and retries.
 */
export function deliverAlongside(station: Station, emit: EventSink, batchId: string, concurrency = 1): { kick(): void; stop(): Promise<void> } {
  let stopped = false;
  let escaped: unknown;
  let waiters: Array<() => void> = [];
  const kick = (): void => {
    const ws = waiters;
    waiters = [];
    for (const w of ws) w();
  };
  const worker = async (): Promise<void> => {
    while (!stopped && escaped === undefined) {
      const now = Date.now();
      const d = openDeliveries(station, batchId).find((x) => x.next_attempt_at <= now && !attemptUnderWay(station, x));
      if (!d) {
        // Woken by a newly sealed object, or after a while for a retry that has come due.
        await new Promise<void>((r) => {
          const wake = (): void => {
            clearTimeout(t);
            r();
          };
          const t = setTimeout(() => {
            waiters = waiters.filter((w) => w !== wake);
            r();
          }, 500);
          waiters.push(wake);
        });
        continue;
      }
      try {
        await deliverOne(station, d, emit);
      } catch (e) {
        escaped ??= e;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    kick,
    async stop(): Promise<void> {
      stopped = true;
      kick();
      await Promise.all(workers);
      if (escaped !== undefined) throw escaped;
    },
  };
}
