/**
 * `kluis serve --config FILE [--port N] [--bind ADDR] [--allow-remote-bind] [--watch --roots DIR…]`:
 * the local dashboard (src/dashboard). Prints the address with this start's token on stdout
 * (one line) and runs until Ctrl-C / SIGTERM. With --watch, the card watcher (`kluis watch`,
 * src/cli/watch.ts) runs in this same process, so one command gives the operator the whole
 * station; it holds the station lock, and the dashboard's retries work the outbox alongside it.
 *
 * Never: listens on a non-loopback address without --allow-remote-bind.
 */
import type { Command } from 'commander';
import * as os from 'node:os';
import { action, info } from './output.js';
import { KluisError } from '../errors.js';
import { openStation } from '../pipeline/station.js';
import { startDashboard } from '../dashboard/server.js';

interface ServeOptions {
  config: string;
  desk?: boolean;
  identity?: string[];
  port: string;
  bind: string;
  allowRemoteBind?: boolean;
  watch?: boolean;
  roots?: string[];
  settle?: string;
  operator?: string;
  case?: string;
  quiet?: boolean;
  verbose?: boolean;
}

export const DEFAULT_PORT = 7373;

export function register(program: Command): void {
  program
    .command('serve')
    .description('the local dashboard (127.0.0.1 only), optionally with the card watcher')
    .requiredOption('--config <file>', 'the signed station config (kluis.json); with --desk, an evidence desk config')
    .option('--desk', 'the evidence desk page instead: search, inspect, verify and export batches (src/dashboard/desk)')
    .option('--identity <key>', 'with --desk: evidence secret key file; repeatable (default: keys/evidence.key beside the config)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--port <n>', 'port (0 = any free port)', String(DEFAULT_PORT))
    .option('--bind <addr>', 'address to listen on; loopback only unless --allow-remote-bind', '127.0.0.1')
    .option('--allow-remote-bind', 'admin only: allow a non-loopback --bind (and non-loopback clients)')
    .option('--watch', 'also watch for cards and secure each one (like kluis watch)')
    .option('--roots <dir...>', 'with --watch: mount roots to watch (default: watchRoots from the config)')
    .option('--settle <seconds>', 'with --watch: seconds a card must be unchanged before it is read')
    .option('--operator <name>', 'with --watch: who runs the station (recorded)')
    .option('--case <id>', 'with --watch: case or flight reference (recorded)')
    .option('--quiet', 'with --watch: no progress on stderr')
    .option('--verbose', 'with --watch: more progress on stderr')
    .action(action(async (opts: ServeOptions) => runServe(opts)));
}

async function runServe(opts: ServeOptions): Promise<number> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new KluisError('E_USAGE', `--port ${opts.port} is not a port number`, { hint: 'use 0-65535 (0 = any free port)' });
  }
  if (opts.roots && !opts.watch) {
    throw new KluisError('E_USAGE', '--roots only makes sense with --watch');
  }
  if (opts.desk) {
    if (opts.watch) throw new KluisError('E_USAGE', '--watch is for a station; a desk only reads');
    const { runDeskServe } = await import('./serve-desk.js');
    return runDeskServe({ config: opts.config, port, bind: opts.bind, allowRemoteBind: opts.allowRemoteBind === true, ...(opts.identity ? { identity: opts.identity } : {}), ...(opts.operator ? { operator: opts.operator } : {}) }, untilSignal);
  } else if (opts.identity) {
    throw new KluisError('E_USAGE', '--identity only makes sense with --desk');
  }
  const station = await openStation(opts.config);
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined;
  try {
    dashboard = await startDashboard(station, {
      port,
      bind: opts.bind,
      allowRemoteBind: opts.allowRemoteBind === true,
      lockHeldInProcess: opts.watch === true,
    });
    process.stdout.write(`${dashboard.loginUrl}\n`);
    info(`dashboard for station ${station.config.station}: open the address above in a browser on this computer (the token in it is new each start; keep it to yourself). Ctrl-C stops${opts.watch ? ' the dashboard and the watcher' : ''}.`);
    if (opts.watch) return await runWatchInProcess(opts);
    await untilSignal();
    return 0;
  } finally {
    await dashboard?.close();
    await station.close();
  }
}

/** Runs the watch service (src/cli/watch.ts) with the serve options in this process; resolves when it stops. */
async function runWatchInProcess(opts: ServeOptions): Promise<number> {
  const { runWatch } = await import('./watch.js');
  return runWatch({
    config: opts.config,
    operator: opts.operator ?? os.userInfo().username,
    ...(opts.roots?.length ? { roots: opts.roots } : {}),
    ...(opts.settle !== undefined ? { settle: opts.settle } : {}),
    ...(opts.case !== undefined ? { case: opts.case } : {}),
    ...(opts.quiet ? { quiet: true } : {}),
    ...(opts.verbose ? { verbose: true } : {}),
  });
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
