/**
 * `kluis status --config FILE [--json]`: batches (with "safe to remove" and secured), files per
 * state, targets and the outbox, read from the journal. Files held as their sealed original only
 * (not sanitized) are always named, with where the original is. Reads only; contacts no target.
 */
import type { Command } from 'commander';
import { action, printJson, printLines } from './output.js';
import { openStation } from '../pipeline/station.js';
import { stationStatus } from '../pipeline/status.js';

export function register(program: Command): void {
  program
    .command('status')
    .description('batches, files, targets and the outbox of this station')
    .requiredOption('--config <file>', 'the signed station config (kluis.json)')
    .option('--batch <id>', 'only this batch, with its files')
    .option('--json', 'print one JSON document on stdout')
    .action(
      action(async (opts: { config: string; batch?: string; json?: boolean }) => {
        const station = await openStation(opts.config);
        try {
          const status = stationStatus(station, opts.batch);
          if (opts.json) printJson(status);
          else {
            const out: string[] = [];
            for (const b of status.batches) {
              out.push(`${b.batchId}  ${b.status.padEnd(8)} ${b.safeToRemove ? 'safe-to-remove' : 'CARD NEEDED   '}  ${b.counts.secured}/${b.counts.footage} footage secured  ${b.card.root}  ${b.createdAt}`);
              if (opts.batch) for (const f of b.files ?? []) out.push(`    ${f.status.padEnd(8)} ${f.class.padEnd(7)} ${f.path}${f.error ? `  [${f.error.code}] ${f.error.message}` : ''}`);
              // Held files are always named: not sanitized, only their sealed original is kept.
              for (const h of b.held) out.push(`    held     ${h.path}  [${h.code}] ${h.message}; sealed original ${h.heldAt ? `held at ${h.heldAt}` : `on ${h.targets.join(', ')}`}`);
            }
            for (const t of status.targets) out.push(`target ${t.name} (${t.type}, ${t.class}${t.required ? ', required' : ''}): outbox ${t.outbox}, verified ${t.verified}${t.lastSuccess ? `, last success ${t.lastSuccess}` : ''}${t.lastError ? `, last error [${t.lastError.code}] ${t.lastError.message}` : ''}`);
            if (status.batches.length === 0) out.push('no batches yet');
            printLines(out);
          }
        } finally {
          await station.close();
        }
      }),
    );
}
