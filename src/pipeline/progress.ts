/**
 * The one reducer of pipeline events into what a person watching a card needs to know: is the
 * card being read (how far, how fast, how long still), safe to remove, pulled, or not safe; how
 * many files were sealed, held, withheld or failed; how many deliveries verified.
 *
 * The terminal (cli/progress.ts) feeds it live events; the dashboard feeds it the journal's event
 * table (`eventFromRow`), so both show the same thing for the same events. It reads nothing
 * itself and never influences the pipeline. Times are passed in, so a reducer fed from the
 * table computes rates from the times the events were written.
 */
import type { EventRow } from './journal.js';
import type { PipelineEvent } from './events.js';

/** Where a card stands, from the events alone. */
export type CardPresence = 'seen' | 'reading' | 'missing' | 'not-safe' | 'safe';

export interface CardProgress {
  batchId: string;
  card: string;
  label?: string;
  presence: CardPresence;
  files: number;
  bytes: number;
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  /** The card file being read now, and the bytes done when it started. */
  path?: string;
  fileStart: number;
  /** Files not read when the card was pulled (presence 'missing'). */
  missing?: number;
  /** Files whose card bytes are not sealed although the card was read to the end. */
  notSafe?: number;
  sealed: number;
  failed: number;
  held: number;
  withheld: number;
  verified: number;
  deliveryProblems: number;
  /** Recent (time ms, bytesDone) samples for the rate; internal to the reducer. */
  samples: Array<{ t: number; bytes: number }>;
}

/** The rate window: rates are taken over the last few seconds of reading. */
export const RATE_WINDOW_MS = 5_000;

export class ProgressReducer {
  readonly cards = new Map<string, CardProgress>();

  card(batchId: string): CardProgress {
    let c = this.cards.get(batchId);
    if (!c) {
      c = { batchId, card: '', presence: 'seen', files: 0, bytes: 0, bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 0, fileStart: 0, samples: [], sealed: 0, failed: 0, held: 0, withheld: 0, verified: 0, deliveryProblems: 0 };
      this.cards.set(batchId, c);
    }
    return c;
  }

  /** Applies one event that happened at time `at` (ms since the epoch); returns its card. */
  apply(e: PipelineEvent, at: number): CardProgress {
    const c = this.card(e.batchId);
    switch (e.type) {
      case 'card-seen':
        Object.assign(c, { card: e.card, files: e.files, bytes: e.bytes, bytesTotal: e.bytes, filesTotal: e.files, bytesDone: 0, filesDone: 0, fileStart: 0, presence: 'reading' });
        if (e.label) c.label = e.label;
        delete c.path;
        delete c.missing;
        delete c.notSafe;
        c.samples = [];
        break;
      case 'acquire-progress':
        c.presence = 'reading';
        if (e.path !== c.path) {
          c.fileStart = c.bytesDone;
          c.path = e.path;
        }
        c.bytesDone = e.bytesDone;
        c.bytesTotal = e.bytesTotal;
        c.filesDone = e.filesDone;
        c.filesTotal = e.filesTotal;
        c.samples.push({ t: at, bytes: e.bytesDone });
        while (c.samples.length > 2 && c.samples[0]!.t < at - RATE_WINDOW_MS) c.samples.shift();
        break;
      case 'safe-to-remove':
        c.presence = 'safe';
        break;
      case 'card-missing':
        c.presence = 'missing';
        c.missing = e.remaining;
        break;
      case 'card-not-safe':
        c.presence = 'not-safe';
        c.notSafe = Array.isArray(e.files) ? e.files.length : 0;
        break;
      case 'file-state':
        if (e.state === 'sealed') c.sealed++;
        else if (e.state === 'failed') c.failed++;
        else if (e.state === 'held') c.held++;
        else if (e.state === 'withheld') c.withheld++;
        break;
      case 'delivery':
        if (e.state === 'verified') c.verified++;
        else if (e.state === 'refused' || e.state === 'failed') c.deliveryProblems++;
        break;
      default:
        break;
    }
    return c;
  }

  /** Bytes per second over the rate window; null until two samples exist. */
  rate(c: CardProgress): number | null {
    const a = c.samples[0];
    const b = c.samples[c.samples.length - 1];
    if (!a || !b || b.t <= a.t) return null;
    return ((b.bytes - a.bytes) * 1000) / (b.t - a.t);
  }

  /** Seconds left at the current rate; 0 when everything is read, null when unknown. */
  eta(c: CardProgress): number | null {
    const left = c.bytesTotal - c.bytesDone;
    const r = this.rate(c);
    return r && r > 0 ? Math.ceil(left / r) : left === 0 ? 0 : null;
  }
}

/** Every pipeline event type, as a record so that a type added to PipelineEvent must be added here. */
const EVENT_TYPES: Record<PipelineEvent['type'], true> = {
  'card-seen': true,
  'card-writable': true,
  'card-warning': true,
  'acquire-progress': true,
  'file-state': true,
  'safe-to-remove': true,
  'card-not-safe': true,
  'card-missing': true,
  delivery: true,
  'batch-status': true,
  wiped: true,
};

/**
 * The pipeline event a row of the journal's event table holds (the pipeline stores each event
 * whole), or undefined for a row that is not one (unreadable, another kind, no batch).
 */
export function eventFromRow(r: EventRow): PipelineEvent | undefined {
  if (!r.batch_id || !Object.hasOwn(EVENT_TYPES, r.type)) return undefined;
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(r.data) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  // Rows written before events were stored whole carry only their fields: type and batch come
  // from the row.
  return { ...data, type: r.type, batchId: r.batch_id } as PipelineEvent;
}
