/**
 * `kluis watch --config FILE [--roots DIR…] [--json] [--once]`: runs the station service
 * (src/pipeline/service.ts) and renders what it does. It holds the station lock for the service's
 * whole life and cleans the spool once at start; the service then ingests every card that appears
 * under the watch roots once it has settled (src/card/watch.ts), and works the outbox of
 * unfinished batches every `--outbox-interval` seconds, so a target that comes back gets its
 * batches secured without anyone doing anything.
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
import { EXIT } from '../errors.js';
import { openLockedStation, type Station } from '../pipeline/station.js';
import { StationService, type ServiceEvent } from '../pipeline/service.js';
import { cleanSpool } from '../pipeline/spool.js';
import { fanOut, type PipelineEvent } from '../pipeline/events.js';
import { defaultSettleMs } from '../card/index.js';
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
  const { station, unlock } = await openLockedStation(opts.config, { operator: opts.operator, ...(opts.case ? { caseRef: opts.case } : {}) });
  try {
    await cleanSpool(station.layout.spoolDir, station.journal);
    return await serve(station, opts);
  } finally {
    await unlock();
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
  const onServiceEvent = (n: ServiceEvent): void => {
    switch (n.type) {
      case 'watch-started':
        say(`watching ${n.roots.join(', ')} for cards (settle ${n.settleMs / 1000} s, outbox every ${n.outboxMs / 1000} s)`);
        jsonLine({ ...n, pid: process.pid });
        return;
      case 'card-detected':
        say(`card detected at ${n.card}; waiting until it has settled`);
        jsonLine(n);
        return;
      case 'card-removed':
        say(`card ${n.card} was removed (its batch stays resumable; insert it again to finish anything unread)`);
        jsonLine(n);
        return;
      case 'wiped':
      case 'outbox-pass':
        jsonLine(n);
        return;
      case 'ingest-done':
        if (n.alreadySecured) say(`card ${n.card} was already secured as batch ${n.batchId}; nothing copied again. It is safe to remove.`);
        jsonLine(n);
        say(`card ${n.card}: batch ${n.batchId} ${n.status}${n.status === 'secured' ? '' : ' (queued work continues in the background)'}`);
        return;
      case 'ingest-error':
        process.stderr.write(errorLines(n.error, `card ${n.card}`));
        jsonLine({ type: n.type, card: n.card, error: n.error.toJSON() });
        return;
      case 'outbox-error':
        process.stderr.write(errorLines(n.error, 'outbox'));
        jsonLine({ type: n.type, error: n.error.toJSON() });
        return;
      case 'warning':
        warn(n.message);
        return;
      case 'watch-stopped':
        jsonLine({ type: n.type, reason: n.reason === 'stopped' ? 'signal' : 'once', batches: n.batches });
        return;
    }
  };

  const service = new StationService(station, {
    roots,
    settleMs,
    outboxMs,
    once: opts.once === true,
    wipeAfterSecured: opts.wipeAfterSecured === true,
    onEvent,
    onServiceEvent,
  });

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      warn(`second ${sig}: exiting now; the journal resumes the work in hand next time`);
      process.exit(130);
    }
    say(`${sig}: stopping after the current step`);
    service.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const result = await service.run();
    if (result.stopped) return EXIT.ok;
    return [...result.batches.values()].every((s) => s === 'secured') ? EXIT.ok : EXIT.partial;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
