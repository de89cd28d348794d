/**
 * What the dashboard shows, computed from the journal (batches, files, deliveries) and the
 * journal's event table (reading progress, a pulled card). It reads only; it contacts no target
 * and never opens footage. The same snapshot is served as JSON and pushed over SSE.
 *
 * Rates and time left come from the event times the pipeline wrote, over a short window, so a
 * dashboard started in the middle of a card still shows a sensible rate.
 */
import type { EventRow } from '../pipeline/journal.js';
import { ProgressReducer, eventFromRow } from '../pipeline/progress.js';
import { fileCounts, type FileCounts } from '../pipeline/status.js';
import type { Station } from '../pipeline/station.js';
import { batchOutcome, requiredTargets, type FileOutcome, type TargetOutcome } from '../pipeline/finalize.js';
import type { CardState, DeliveryView, ProgressView, StationCard, StationState, TargetView, VerifyView } from './wire.js';

// The types the page reads are declared in wire.ts (the browser script compiles them too); the
// snapshot's types extend them, so the compiler checks that it gives the page what it reads.
export type { CardState, ProgressView, ProblemView, DeliveryView, VerifyItem, VerifyView, TargetView } from './wire.js';

export interface CardView extends StationCard {
  outcome: 'secured' | 'partial' | 'failed';
  securedAt: string | null;
  counts: FileCounts;
  files: Array<FileOutcome & { thumb: boolean }>;
  targets: TargetOutcome[];
}

export interface DashboardState extends StationState {
  generatedAt: string;
  lastEventId: number;
  cards: CardView[];
  outbox: number;
}

/** Follows the event table through the pipeline's one reducer: reading progress and card presence per batch. */
export class EventTracker {
  lastId = 0;
  private readonly reducer = new ProgressReducer();

  apply(rows: EventRow[]): void {
    for (const r of rows) {
      this.lastId = Math.max(this.lastId, r.id);
      const e = eventFromRow(r);
      if (e) this.reducer.apply(e, Date.parse(r.time));
    }
  }

  progress(batchId: string): ProgressView | undefined {
    const c = this.reducer.cards.get(batchId);
    if (!c || c.path === undefined) return undefined;
    const { path, bytesDone, bytesTotal, filesDone, filesTotal } = c;
    return { path, bytesDone, bytesTotal, filesDone, filesTotal, rate: this.reducer.rate(c), eta: this.reducer.eta(c) };
  }

  /** The last card event: seen (inserted or being read), missing (pulled), safe (all read). */
  cardEvent(batchId: string): { card?: 'seen' | 'missing' | 'safe'; remaining?: number } {
    const c = this.reducer.cards.get(batchId);
    if (!c) return {};
    if (c.presence === 'missing') return { card: 'missing', ...(c.missing !== undefined ? { remaining: c.missing } : {}) };
    if (c.presence === 'safe') return { card: 'safe' };
    // Seen only if its card-seen (or reading) is among the events followed.
    return c.card || c.path !== undefined ? { card: 'seen' } : {};
  }
}

/**
 * Reads the tail of the event table at start-up, so progress and a pulled card already in
 * progress show at once (without replaying a long history).
 */
export function seedTracker(station: Station, tracker: EventTracker, window = 5_000): void {
  const row = station.journal.db.prepare('SELECT MAX(id) AS m FROM events').get() as { m: number | null };
  const max = row.m ?? 0;
  let after = Math.max(0, max - window);
  for (;;) {
    const rows = station.journal.eventsAfter(after, 1000);
    if (rows.length === 0) break;
    tracker.apply(rows);
    after = rows[rows.length - 1]!.id;
  }
  tracker.lastId = Math.max(tracker.lastId, max);
}

function cardState(o: { status: string; safeToRemove: boolean }, phase: string, ev: { card?: string }, progress: ProgressView | undefined, workLeft: boolean): CardState {
  if (o.status === 'secured') return 'secured';
  if (o.status === 'failed' && (o.safeToRemove || phase === 'failed')) return 'failed';
  // Read completely, nothing left to do, yet not secured: some file failed for good.
  if (o.safeToRemove && !workLeft) return 'partial';
  if (o.safeToRemove) return 'safe';
  if (ev.card === 'missing') return 'missing';
  if (ev.card === 'seen') return progress ? 'reading' : 'inserted';
  return 'waiting';
}

function objectLabel(key: string, fileByObject: Map<string, string>, reportObject: string | null): string {
  const tail = key.slice(key.indexOf('/') + 1);
  if (tail === 'manifest.json') return 'manifest';
  if (reportObject && tail === reportObject) return 'report';
  return fileByObject.get(key) ?? tail;
}

export interface SnapshotOptions {
  maxCards?: number;
  verify?: Map<string, VerifyView>;
}

/** The whole picture, newest card first. */
export function snapshot(station: Station, tracker: EventTracker, opts: SnapshotOptions = {}): DashboardState {
  const { journal } = station;
  const all = journal.batches();
  const max = opts.maxCards ?? 20;
  // Unfinished batches always show; of the finished ones, the most recent.
  const shown = all.filter((b, i) => i < max || (b.status !== 'secured' && b.status !== 'failed'));
  const cards: CardView[] = shown.map((b) => {
    const o = batchOutcome(station, b.id);
    const files = journal.files(b.id);
    const fileRows = new Map(files.map((f) => [f.path, f]));
    const fileByObject = new Map<string, string>();
    for (const f of files) if (f.object_id) fileByObject.set(`${b.id}/${f.object_id}`, f.path);
    const progress = tracker.progress(b.id);
    const ev = tracker.cardEvent(b.id);
    const open = journal.deliveries(b.id).some((d) => d.state === 'pending' || d.state === 'delivered');
    const workLeft = open || b.manifest_written !== 1 || o.files.some((f) => f.status === 'queued');
    const state = cardState(o, b.status, ev, progress, workLeft);
    const deliveries: DeliveryView[] = journal.deliveries(b.id).map((d) => ({
      object: d.object_key,
      label: objectLabel(d.object_key, fileByObject, b.report_object),
      target: d.target,
      state: d.state,
      attempts: d.attempts,
      ...(d.last_error_code ? { error: { code: d.last_error_code, message: d.last_error ?? '' } } : {}),
      canRetry: d.state === 'failed' || ((d.state === 'pending' || d.state === 'delivered') && d.attempts > 0),
    }));
    const verify = opts.verify?.get(b.id);
    // batchOutcome calls an unread file "card removed" (right once a run has ended); while the
    // card is in and being read, an unread file is simply still to come.
    const cardIn = state === 'reading' || state === 'inserted';
    const files_ = o.files.map((f): FileOutcome => {
      if (!cardIn || fileRows.get(f.path)?.state !== 'seen') return f;
      const { error: _e, ...rest } = f;
      return { ...rest, status: 'queued' };
    });
    return {
      batchId: b.id,
      card: { root: b.card_root, ...(b.card_label ? { label: b.card_label } : {}) },
      createdAt: b.created_at,
      state,
      outcome: o.status,
      phase: b.status,
      safeToRemoveAt: b.safe_to_remove_at,
      securedAt: b.secured_at,
      ...(state === 'missing' && ev.remaining !== undefined ? { remaining: ev.remaining } : {}),
      ...(progress && state === 'reading' ? { progress } : {}),
      counts: fileCounts(files_),
      // A held file is named with the rest: not sanitized, its sealed original kept (the hint says where).
      problems: files_
        .filter((f) => (f.status === 'rejected' || f.status === 'failed' || f.status === 'held') && f.error)
        .map((f) => ({ path: f.path, status: f.status, code: f.error!.code, message: f.error!.message, ...(f.error!.hint ? { hint: f.error!.hint } : {}) })),
      files: files_.map((f) => ({ ...f, thumb: Boolean(fileRows.get(f.path)?.thumb_path) })),
      deliveries,
      targets: o.targets,
      ...(verify ? { verify } : {}),
    };
  });

  const rows = journal.allDeliveries();
  const required = requiredTargets(station);
  const targets: TargetView[] = [...station.targetConfigs.values()].map((tc) => {
    const mine = rows.filter((d) => d.target === tc.name);
    const okAt = mine.filter((d) => d.state === 'verified' || d.state === 'delivered').map((d) => d.updated_at).sort().pop();
    const bad = mine.filter((d) => d.last_error_code && d.state !== 'verified').sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1))[0];
    const reachable: TargetView['reachable'] = bad && (!okAt || bad.updated_at > okAt) ? 'no' : okAt ? 'yes' : 'unknown';
    return {
      name: tc.name,
      type: tc.type,
      class: tc.class,
      required: required.includes(tc.name),
      reachable,
      ...(okAt ? { lastSuccess: okAt } : {}),
      ...(bad ? { lastError: { code: bad.last_error_code!, message: bad.last_error ?? '', at: bad.updated_at } } : {}),
      outbox: mine.filter((d) => d.state === 'pending' || d.state === 'delivered').length,
      refused: mine.filter((d) => d.state === 'refused').length,
    };
  });
  return {
    station: station.config.station,
    generatedAt: new Date().toISOString(),
    lastEventId: tracker.lastId,
    cards,
    targets,
    outbox: targets.reduce((s, t) => s + t.outbox, 0),
  };
}
