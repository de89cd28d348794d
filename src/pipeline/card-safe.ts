/**
 * Whether the card may be removed, decided once it was read to the end: only when the original
 * bytes of every footage file (and stored proxy) are sealed and durable. Otherwise the batch stays
 * `acquiring` and the event says why: the card went away with files unread (card-missing), or
 * files could not be read (card-not-safe). Never writes to the card.
 */
import { promises as fsp } from 'node:fs';
import { isStored } from './batch-plan.js';
import type { EventSink } from './events.js';
import type { FileRow } from './journal.js';
import type { Station } from './station.js';

/**
 * Records and announces, after the card read, whether the card is safe to remove (safe-to-remove,
 * audited once), or why not. `cardGone`: the card disappeared during the read.
 */
export async function decideCardSafe(station: Station, batchId: string, cardRoot: string, cardGone: boolean, emit: EventSink): Promise<void> {
  const { journal, audit } = station;
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

/** Whether the card is still there to be read (its root can be listed). */
export async function cardPresent(cardRoot: string): Promise<boolean> {
  try {
    await fsp.access(cardRoot);
    await fsp.readdir(cardRoot);
    return true;
  } catch {
    return false;
  }
}
