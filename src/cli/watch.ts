/**
 * `kluis watch --config FILE [--roots DIR…] [--json] [--once]`: the station service. It holds
 * the station lock for its whole life, cleans the spool once at start, then ingests every card
 * that appears under the watch roots once it has settled (src/card/watch.ts), and works the
 * outbox of unfinished batches every `--outbox-interval` seconds, so a target that comes back
 * gets its batches secured without anyone doing anything.
 *
 * All work (one card's ingest, one outbox pass) runs one job at a time on one queue: a card is
 * never ingested twice at once and the outbox is never worked by two loops. A pulled card is
 * reported as such; its batch stays resumable and the card is ingested again when it returns.
 *
 * Output: progress and "SAFE TO REMOVE" on stderr; with --json, one JSON object per line on
 * stdout for every event (pipeline events plus watch-started, card-detected, card-removed,
 * ingest-done, ingest-error, outbox-pass, watch-stopped). SIGTERM/SIGINT: stop taking cards,
 * finish the job in hand, release the lock, exit 0; a second signal exits at once (the journal
 * makes that safe). --once: exit when no card is settling or queued and one outbox pass ran
 * after the last card; exit 0 when every batch it touched is secured, else 3.
 */
import type { Command } from 'commander';
import * as os from 'node:os';
import { action, info, warn } from './output.js';
import { EXIT, asKluisError } from '../errors.js';
import { openStation, type Station } from '../pipeline/station.js';
import { ingestCard, resumeAll } from '../pipeline/ingest.js';
import { cleanSpool } from '../pipeline/spool.js';
import { lockStation } from '../pipeline/lock.js';
import { wipeSecured } from '../pipeline/wipe.js';
import { fanOut, type PipelineEvent } from '../pipeline/events.js';
import type { BatchOutcome } from '../pipeline/finalize.js';
import { CardWatcher, defaultSettleMs } from '../card/index.js';
import { lineProgress } from './progress.js';
import { errorLines } from '../util/terminal.js';

export interface WatchOptions {
  config: string;
  roots?: string[];
  json?: boolean;
  once?: boolean;
  settle?: string;
  outboxInterval?: string;
  operator: string;
  case?: string;
  wipeAfterSecured?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

function seconds(v: string | undefined, envName: string, fallbackMs: number): number {
  if (v !== undefined) return Math.round(Number(v) * 1000);
  const env = Number(process.env[envName]);
  return process.env[envName] && Number.isFinite(env) ? env : fallbackMs;
}

export function register(program: Command): void {
  program
    .command('watch')
    .description('wait for cards under the mount roots and secure each one (the station service)')
    .requiredOption('--config <file>', 'the signed station config (kluis.json)')
    .option('--roots <dir...>', 'mount roots to watch (default: watchRoots from the config)')
    .option('--settle <seconds>', 'a card must be unchanged this long before it is read (default 2, env KLUIS_WATCH_SETTLE_MS)')
    .option('--outbox-interval <seconds>', 'how often queued deliveries are retried (default 30, env KLUIS_WATCH_OUTBOX_MS)')
    .option('--operator <name>', 'who runs the station (recorded)', os.userInfo().username)
    .option('--case <id>', 'case or flight reference (recorded)')
    .option('--wipe-after-secured', 'erase the secured files from each card once every required target verified them')
    .option('--once', 'exit when no card and no due work is left (for tests and cron)')
    .option('--json', 'one JSON object per event on stdout (JSON lines)')
    .option('--quiet', 'no progress on stderr')
    .option('--verbose', 'more progress on stderr')
    .action(action(async (opts: WatchOptions) => runWatch(opts)));
}

/** The watch service with these options until it stops (SIGTERM/SIGINT, or --once); its exit code. */
export async function runWatch(opts: WatchOptions): Promise<number> {
  const station = await openStation(opts.config, { operator: opts.operator, ...(opts.case ? { caseRef: opts.case } : {}) });
  let unlock: (() => Promise<void>) | undefined;
  try {
    unlock = await lockStation(station.layout.stateDir);
    await cleanSpool(station.layout.spoolDir, station.journal);
    return await serve(station, opts);
  } finally {
    await unlock?.();
    await station.close();
  }
}

async function serve(station: Station, opts: WatchOptions): Promise<number> {
  const roots = opts.roots && opts.roots.length > 0 ? opts.roots : station.config.watchRoots;
  const settleMs = seconds(opts.settle, 'KLUIS_WATCH_SETTLE_MS', defaultSettleMs());
  const outboxMs = seconds(opts.outboxInterval, 'KLUIS_WATCH_OUTBOX_MS', 30_000);
  const jsonLine = (o: Record<string, unknown>): void => {
    if (opts.json) process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`);
  };
  const progress = lineProgress(opts);
  const onEvent = fanOut(progress, (e: PipelineEvent) => jsonLine(e as unknown as Record<string, unknown>));
  const say = (s: string): void => {
    if (!opts.quiet) info(s);
  };

  // One queue for all work: cards and outbox passes never overlap.
  const queue: Array<{ kind: 'card'; card: string } | { kind: 'outbox' }> = [];
  const queuedCards = new Set<string>();
  // A card handed over again while its own ingest runs (pulled and re-inserted mid-way) is
  // ingested once more right after, so what the first run could not read is read.
  const again = new Set<string>();
  let running: string | undefined;
  const touched = new Map<string, BatchOutcome['status']>();
  let stopping = false;
  let outboxAfterLastCard = false;
  let wake: (() => void) | undefined;
  const kick = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const watcher = new CardWatcher({
    roots,
    settleMs,
    onDetected: (card) => {
      say(`card detected at ${card}; waiting until it has settled`);
      jsonLine({ type: 'card-detected', card });
    },
    onCard: (card) => {
      if (stopping) return;
      if (queuedCards.has(card)) {
        if (running === card) again.add(card);
        return;
      }
      queuedCards.add(card);
      queue.push({ kind: 'card', card });
      kick();
    },
    onRemoved: (card) => {
      say(`card ${card} was removed (its batch stays resumable; insert it again to finish anything unread)`);
      jsonLine({ type: 'card-removed', card });
    },
    onWarning: (m) => warn(m),
  });

  const runCard = async (card: string): Promise<void> => {
    try {
      const outcome = await ingestCard(station, { card, onEvent, deliveryWaitMs: 0 });
      touched.set(outcome.batchId, outcome.status);
      if (outcome.alreadySecured) say(`card ${card} was already secured as batch ${outcome.batchId}; nothing copied again. It is safe to remove.`);
      const wipe = opts.wipeAfterSecured || station.config.policy.wipeAfterSecured;
      if (wipe && outcome.status === 'secured' && !outcome.alreadySecured) {
        const wiped = await wipeSecured(station, outcome.batchId, card);
        jsonLine({ type: 'wiped', batchId: outcome.batchId, deleted: wiped.deleted.length, kept: wiped.kept.length });
      }
      jsonLine({ type: 'ingest-done', card, batchId: outcome.batchId, status: outcome.status, alreadySecured: outcome.alreadySecured ?? false, safeToRemove: outcome.safeToRemove });
      say(`card ${card}: batch ${outcome.batchId} ${outcome.status}${outcome.status === 'secured' ? '' : ' (queued work continues in the background)'}`);
    } catch (e) {
      const err = asKluisError(e);
      process.stderr.write(errorLines(err, `card ${card}`));
      jsonLine({ type: 'ingest-error', card, error: err.toJSON() });
    }
  };

  const runOutbox = async (): Promise<void> => {
    try {
      const outcomes = await resumeAll(station, { onEvent, deliveryWaitMs: 0 });
      for (const o of outcomes) touched.set(o.batchId, o.status);
      jsonLine({ type: 'outbox-pass', batches: outcomes.map((o) => ({ batchId: o.batchId, status: o.status })) });
    } catch (e) {
      const err = asKluisError(e);
      process.stderr.write(errorLines(err, 'outbox'));
      jsonLine({ type: 'outbox-error', error: err.toJSON() });
    }
  };

  const outboxTimer = setInterval(() => {
    if (!queue.some((j) => j.kind === 'outbox')) {
      queue.push({ kind: 'outbox' });
      kick();
    }
  }, outboxMs);

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      warn(`second ${sig}: exiting now; the journal resumes the work in hand next time`);
      process.exit(130);
    }
    say(`${sig}: stopping after the current step`);
    stopping = true;
    kick();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    await watcher.start();
    say(`watching ${roots.join(', ')} for cards (settle ${settleMs / 1000} s, outbox every ${outboxMs / 1000} s)`);
    jsonLine({ type: 'watch-started', roots, settleMs, outboxMs, pid: process.pid });
    // Whatever a previous run left queued is worked first.
    queue.push({ kind: 'outbox' });
    for (;;) {
      if (stopping) break;
      const job = queue.shift();
      if (job) {
        if (job.kind === 'card') {
          running = job.card;
          await runCard(job.card);
          running = undefined;
          queuedCards.delete(job.card);
          if (again.delete(job.card) && !stopping) {
            queuedCards.add(job.card);
            queue.push({ kind: 'card', card: job.card });
          }
          outboxAfterLastCard = false;
        } else {
          await runOutbox();
          outboxAfterLastCard = true;
        }
        // Between two jobs nothing is in flight, so the start-up clean-up is safe here too: the
        // sealed copies of verified objects leave the spool instead of piling up for months.
        await cleanSpool(station.layout.spoolDir, station.journal).catch((e: unknown) => warn(`spool clean-up: ${asKluisError(e).message}`));
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
        wake = r;
        if (opts.once) setTimeout(r, 100).unref();
      });
    }
  } finally {
    clearInterval(outboxTimer);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await watcher.stop();
  }
  jsonLine({ type: 'watch-stopped', reason: stopping ? 'signal' : 'once', batches: Object.fromEntries(touched) });
  if (stopping) return EXIT.ok;
  return [...touched.values()].every((s) => s === 'secured') ? EXIT.ok : EXIT.partial;
}
