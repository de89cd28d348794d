/**
 * `kluis resume --config FILE`: finishes what is queued on this station without a card:
 * sanitize and seal what was acquired, deliver the outbox, verify, write manifests. What still
 * needs its card stays waiting for it.
 */
import type { Command } from 'commander';
import { action, printJson } from './output.js';
import { openLockedStation } from '../pipeline/station.js';
import { resumeAll } from '../pipeline/ingest.js';
import { cleanSpool } from '../pipeline/spool.js';
import { lineProgress } from './progress.js';
import { EXIT } from '../errors.js';

export function register(program: Command): void {
  program
    .command('resume')
    .description('finish queued work (outbox, sealing) without a card')
    .requiredOption('--config <file>', 'the signed station config (kluis.json)')
    .option('--wait <seconds>', 'keep retrying deliveries this long', '0')
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'no progress on stderr')
    .option('--verbose', 'more progress on stderr')
    .action(
      action(async (opts: { config: string; wait: string; json?: boolean; quiet?: boolean; verbose?: boolean }) => {
        const { station, unlock } = await openLockedStation(opts.config);
        try {
          await cleanSpool(station.layout.spoolDir, station.journal);
          const progress = lineProgress(opts);
          const outcomes = await resumeAll(station, { onEvent: progress, deliveryWaitMs: Number(opts.wait) * 1000 }).finally(() => progress.finish());
          await cleanSpool(station.layout.spoolDir, station.journal); // what the work just finished with
          if (opts.json) printJson({ batches: outcomes });
          else for (const o of outcomes) process.stdout.write(`batch ${o.batchId}: ${o.status}\n`);
          return outcomes.every((o) => o.status === 'secured') ? EXIT.ok : EXIT.partial;
        } finally {
          await unlock();
          await station.close();
        }
      }),
    );
}
