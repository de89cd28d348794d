/**
 * The station service (`kluis watch`): ingests every card the card watcher hands over once it has
 * settled, and works the outbox of unfinished batches every `outboxMs`, so a target that comes
 * back gets its batches secured without anyone doing anything.
 *
 * All work (one card's ingest, one outbox pass) runs one job at a time on one queue: a card is
 * never ingested twice at once and the outbox is never worked by two loops. A pulled card is
 * reported as such; its batch stays resumable and the card is ingested again when it returns (a
 * card handed over again while its own ingest runs is ingested once more right after). Between
 * two jobs nothing is in flight, so the spool is cleaned there. `stop()`: take no more cards,
 * finish the job in hand, and let `run()` resolve. With `once`, `run()` resolves when no card is
 * settling or queued and one outbox pass ran after the last card.
 *
 * The caller holds the station lock and renders the events: pipeline events go to `onEvent`, the
 * service's own (card-detected, ingest-done, outbox-pass, …) to `onServiceEvent`. The service
 * never writes to the terminal and never handles signals.
 */
import { CardWatcher } from '../card/index.js';
import { asKluisError, type KluisError } from '../errors.js';
import type { EventSink } from './events.js';
import type { BatchOutcome } from './finalize.js';
import { ingestCard, resumeAll } from './ingest.js';
import { cleanSpool } from './spool.js';
import type { Station } from './station.js';
import { wipeSecured } from './wipe.js';

type BatchStatus = BatchOutcome['status'];

/** The service's own events, beside the pipeline's. */
export type ServiceEvent =
  | { type: 'watch-started'; roots: string[]; settleMs: number; outboxMs: number }
  | { type: 'card-detected'; card: string }
  | { type: 'card-removed'; card: string }
  | { type: 'wiped'; batchId: string; deleted: number; kept: number }
  | { type: 'ingest-done'; card: string; batchId: string; status: BatchStatus; alreadySecured: boolean; safeToRemove: boolean }
  | { type: 'ingest-error'; card: string; error: KluisError }
  | { type: 'outbox-pass'; batches: Array<{ batchId: string; status: BatchStatus }> }
  | { type: 'outbox-error'; error: KluisError }
  /** Something that does not stop the service: the watcher's problems, a failed spool clean-up. */
  | { type: 'warning'; message: string }
  /** `stopped`: stop() was called; `once`: nothing was left to do. */
  | { type: 'watch-stopped'; reason: 'stopped' | 'once'; batches: Record<string, BatchStatus> };

export interface StationServiceOptions {
  /** Mount roots watched for cards. */
  roots: string[];
  /** How long a card's listing must stay unchanged before it is read (ms). */
  settleMs: number;
  /** How often queued deliveries are retried (ms). */
  outboxMs: number;
  once?: boolean;
  /** Wipe each card's secured files (besides the config's policy saying so). */
  wipeAfterSecured?: boolean;
  onEvent: EventSink;
  onServiceEvent: (n: ServiceEvent) => void;
}

export interface ServiceResult {
  /** True when stop() ended it, false when `once` found nothing left to do. */
  stopped: boolean;
  /** The status each batch it touched was left in. */
  batches: Map<string, BatchStatus>;
}

type Job = { kind: 'card'; card: string } | { kind: 'outbox' };

export class StationService {
  // One queue for all work: cards and outbox passes never overlap.
  private readonly queue: Job[] = [];
  private readonly queuedCards = new Set<string>();
  // A card handed over again while its own ingest runs (pulled and re-inserted mid-way) is
  // ingested once more right after, so what the first run could not read is read.
  private readonly again = new Set<string>();
  private running: string | undefined;
  private readonly touched = new Map<string, BatchStatus>();
  private stopping = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly station: Station,
    private readonly opts: StationServiceOptions,
  ) {}

  /** Take no more cards, finish the job in hand, then let run() resolve. */
  stop(): void {
    this.stopping = true;
    this.kick();
  }

  /** Serves until stop() (or, with `once`, until nothing is left to do). */
  async run(): Promise<ServiceResult> {
    const { opts, queue } = this;
    const tell = opts.onServiceEvent;
    const watcher = new CardWatcher({
      roots: opts.roots,
      settleMs: opts.settleMs,
      onDetected: (card) => tell({ type: 'card-detected', card }),
      onCard: (card) => this.cardReady(card),
      onRemoved: (card) => tell({ type: 'card-removed', card }),
      onWarning: (message) => tell({ type: 'warning', message }),
    });
    const outboxTimer = setInterval(() => {
      if (!queue.some((j) => j.kind === 'outbox')) {
        queue.push({ kind: 'outbox' });
        this.kick();
      }
    }, opts.outboxMs);

    let outboxAfterLastCard = false;
    try {
      await watcher.start();
      tell({ type: 'watch-started', roots: opts.roots, settleMs: opts.settleMs, outboxMs: opts.outboxMs });
      // Whatever a previous run left queued is worked first.
      queue.push({ kind: 'outbox' });
      for (;;) {
        if (this.stopping) break;
        const job = queue.shift();
        if (job) {
          if (job.kind === 'card') {
            this.running = job.card;
            await this.runCard(job.card);
            this.running = undefined;
            this.queuedCards.delete(job.card);
            if (this.again.delete(job.card) && !this.stopping) {
              this.queuedCards.add(job.card);
              queue.push({ kind: 'card', card: job.card });
            }
            outboxAfterLastCard = false;
          } else {
            await this.runOutbox();
            outboxAfterLastCard = true;
          }
          // Between two jobs nothing is in flight, so the start-up clean-up is safe here too: the
          // sealed copies of verified objects leave the spool instead of piling up for months.
          await cleanSpool(this.station.layout.spoolDir, this.station.journal).catch((e: unknown) =>
            tell({ type: 'warning', message: `spool clean-up: ${asKluisError(e).message}` }),
          );
          continue;
        }
        if (opts.once) {
          // Quiet means: a fresh scan found nothing new, nothing is settling, and the outbox was worked since the last card.
          await watcher.rescan();
          if (!watcher.settling && queue.length === 0) {
            if (!outboxAfterLastCard) {
              queue.push({ kind: 'outbox' });
              continue;
            }
            break;
          }
        }
        await new Promise<void>((r) => {
          this.wake = r;
          if (opts.once) setTimeout(r, 100).unref();
        });
      }
    } finally {
      clearInterval(outboxTimer);
      await watcher.stop();
    }
    const batches = Object.fromEntries(this.touched);
    tell({ type: 'watch-stopped', reason: this.stopping ? 'stopped' : 'once', batches });
    return { stopped: this.stopping, batches: new Map(this.touched) };
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private cardReady(card: string): void {
    if (this.stopping) return;
    if (this.queuedCards.has(card)) {
      if (this.running === card) this.again.add(card);
      return;
    }
    this.queuedCards.add(card);
    this.queue.push({ kind: 'card', card });
    this.kick();
  }

  private async runCard(card: string): Promise<void> {
    const { station, opts } = this;
    try {
      const outcome = await ingestCard(station, { card, onEvent: opts.onEvent, deliveryWaitMs: 0 });
      this.touched.set(outcome.batchId, outcome.status);
      const wipe = opts.wipeAfterSecured || station.config.policy.wipeAfterSecured;
      if (wipe && outcome.status === 'secured' && !outcome.alreadySecured) {
        const wiped = await wipeSecured(station, outcome.batchId, card);
        opts.onServiceEvent({ type: 'wiped', batchId: outcome.batchId, deleted: wiped.deleted.length, kept: wiped.kept.length });
      }
      opts.onServiceEvent({
        type: 'ingest-done', card, batchId: outcome.batchId, status: outcome.status, alreadySecured: outcome.alreadySecured ?? false, safeToRemove: outcome.safeToRemove,
      });
    } catch (e) {
      opts.onServiceEvent({ type: 'ingest-error', card, error: asKluisError(e) });
    }
  }

  private async runOutbox(): Promise<void> {
    try {
      const outcomes = await resumeAll(this.station, { onEvent: this.opts.onEvent, deliveryWaitMs: 0 });
      for (const o of outcomes) this.touched.set(o.batchId, o.status);
      this.opts.onServiceEvent({ type: 'outbox-pass', batches: outcomes.map((o) => ({ batchId: o.batchId, status: o.status })) });
    } catch (e) {
      this.opts.onServiceEvent({ type: 'outbox-error', error: asKluisError(e) });
    }
  }
}
