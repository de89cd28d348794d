/**
 * The only things the dashboard can make happen, each limited to what the station already
 * does on its own:
 *  - retry a delivery: put a failed or waiting delivery back in the outbox, due now, and work
 *    the outbox for that batch (the same code path as ingest/resume, to the same configured,
 *    policy-checked targets);
 *  - re-check a batch: read every stored object back from every target and compare its
 *    ciphertext SHA-256 and size with the journal. The station holds no evidence key, so this
 *    checks what is stored, not what is inside; `kluis verify` with the key does the rest.
 *
 * Never: sends data anywhere not configured, deletes or overwrites anything on a target or in
 * the spool, retries a delivery refused by policy, decrypts anything.
 */
import { KluisError, asKluisError } from '../errors.js';
import { readBackSha256 } from '../pipeline/deliver.js';
import type { EventSink, PipelineEvent } from '../pipeline/events.js';
import type { Station } from '../pipeline/station.js';
import type { VerifyItem } from './state.js';

export interface DeliveryRef {
  batchId: string;
  object: string;
  target: string;
}

/** Pipeline events from dashboard actions go to the event table, like the pipeline's own. */
export function journalSink(station: Station): EventSink {
  return (e: PipelineEvent) => {
    station.journal.addEvent(e.type, e.batchId, e as unknown as Record<string, unknown>);
  };
}

/**
 * Makes a delivery due again. Returns the state it was put in. Throws E_DASHBOARD_NOT_FOUND
 * for an unknown delivery, E_DASHBOARD_REFUSED for one refused by policy (a retry cannot
 * change a policy; the admin changes the signed config) and E_DASHBOARD_NOTHING_TO_DO for one
 * already verified.
 */
export function requeueDelivery(station: Station, ref: DeliveryRef): 'pending' | 'delivered' {
  const d = station.journal.deliveries(ref.batchId).find((x) => x.object_key === ref.object && x.target === ref.target);
  if (!d) {
    throw new KluisError('E_DASHBOARD_NOT_FOUND', `no delivery of ${ref.object} to ${ref.target}`, { hint: 'reload the page; the batch may be gone' });
  }
  if (d.state === 'refused') {
    throw new KluisError('E_DASHBOARD_REFUSED', `the delivery to ${ref.target} was refused by policy (${d.last_error_code ?? 'refused'}); a retry cannot change that`, {
      hint: 'the admin decides which targets are allowed, in the signed config',
    });
  }
  if (d.state === 'verified') {
    throw new KluisError('E_DASHBOARD_NOTHING_TO_DO', `${ref.object} is already verified on ${ref.target}`);
  }
  // A failed delivery starts over with a put (an object already there is then read back and
  // judged by its hash); a waiting one keeps its state and only becomes due now.
  const state = d.state === 'failed' ? 'pending' : d.state;
  station.journal.setDelivery(ref.batchId, ref.object, ref.target, { state, next_attempt_at: Date.now() });
  return state;
}

/**
 * Reads back every delivered or verified object of the batch and compares it with the journal.
 * Objects not (yet) stored are reported as "unchecked" with their state. Each result is also
 * written to the audit log ("verified" / "verify-failed", by: dashboard).
 */
export async function recheckBatch(
  station: Station,
  batchId: string,
  label: (objectKey: string) => string,
  onItem?: (item: VerifyItem) => void,
): Promise<VerifyItem[]> {
  if (!station.journal.batch(batchId)) {
    throw new KluisError('E_DASHBOARD_NOT_FOUND', `no batch ${batchId} on this station`);
  }
  const items: VerifyItem[] = [];
  for (const d of station.journal.deliveries(batchId)) {
    const base = { object: d.object_key, label: label(d.object_key), target: d.target };
    let item: VerifyItem;
    if (d.state !== 'verified' && d.state !== 'delivered') {
      item = { ...base, result: 'unchecked', detail: `not stored yet (${d.state})` };
    } else {
      try {
        const back = await readBackSha256(station, d.target, d.object_key);
        item =
          back.sha256 === d.sha256 && back.size === d.size
            ? { ...base, result: 'ok' }
            : { ...base, result: 'mismatch', detail: `stored ${back.size} bytes sha256 ${back.sha256}, journal ${d.size} bytes sha256 ${d.sha256}` };
      } catch (e) {
        const err = asKluisError(e, 'E_TARGET_IO');
        item = err.code === 'E_TARGET_MISSING' ? { ...base, result: 'missing', detail: err.message } : { ...base, result: 'unchecked', detail: `${err.code}: ${err.message}` };
      }
      if (item.result === 'ok') {
        await station.audit.append('verified', { batchId, object: d.object_key, target: d.target, sha256: d.sha256, size: d.size, by: 'dashboard', check: 'ciphertext read-back' });
      } else {
        await station.audit.append('verify-failed', { batchId, object: d.object_key, target: d.target, code: item.result, reason: item.detail ?? item.result, by: 'dashboard' });
      }
    }
    items.push(item);
    onItem?.(item);
  }
  return items;
}
