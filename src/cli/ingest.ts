/**
 * `kluis ingest CARD --config FILE [--json]`: runs the whole flow once on a card folder.
 * Exit 0 only when every footage file is secured on every required target; 3 (partial) when
 * some are not; 1 when none could be secured.
 */
import type { Command } from 'commander';
import * as os from 'node:os';
import { action, printJson, printLines } from './output.js';
import { EXIT } from '../errors.js';
import { openLockedStation } from '../pipeline/station.js';
import { ingestCard } from '../pipeline/ingest.js';
import { cleanSpool } from '../pipeline/spool.js';
import { wipeSecured } from '../pipeline/wipe.js';
import { lineProgress } from './progress.js';
import type { BatchOutcome } from '../pipeline/finalize.js';

export function exitFor(outcome: BatchOutcome): number {
  return outcome.status === 'secured' ? EXIT.ok : outcome.status === 'partial' ? EXIT.partial : EXIT.failure;
}

export function printOutcome(o: BatchOutcome): void {
  const lines = [`batch ${o.batchId}: ${o.status.toUpperCase()}${o.alreadySecured ? ' (this card was already secured; nothing copied again)' : ''}`];
  for (const f of o.files) {
    lines.push(`  ${f.status.padEnd(8)} ${f.class.padEnd(7)} ${f.path}${f.error ? `  [${f.error.code}] ${f.error.message}` : ''}`);
    // Not sanitized, but never lost: say where its sealed original is.
    if (f.status === 'held') lines.push(`           ${f.heldAt ? `sealed original held on this station: ${f.heldAt}` : `sealed original on ${Object.keys(f.targets ?? {}).join(', ')} (kluis export --originals)`}`);
  }
  if (!o.safeToRemove && !o.alreadySecured) lines.push('  the card is NOT safe to remove: keep it (see the files above), insert it again and run the same command');
  for (const t of o.targets) {
    lines.push(`  target ${t.name} (${t.type}${t.required ? ', required' : ''}): ${t.status} ${t.verified}/${t.objects}${t.error ? `  [${t.error.code}] ${t.error.message}` : ''}`);
  }
  printLines(lines);
}

export function register(program: Command): void {
  program
    .command('ingest')
    .description('secure one card: read, sanitize, seal, deliver, verify')
    .argument('<card>', 'the card folder (the one that holds DCIM/)')
    .requiredOption('--config <file>', 'the signed station config (kluis.json)')
    .option('--operator <name>', 'who inserted the card (recorded)', os.userInfo().username)
    .option('--case <id>', 'case or flight reference (recorded)')
    .option('--wipe-after-secured', 'erase the secured files from the card once every required target verified them')
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'no progress on stderr')
    .option('--verbose', 'more progress on stderr')
    .action(
      action(async (card: string, opts: { config: string; operator: string; case?: string; wipeAfterSecured?: boolean; json?: boolean; quiet?: boolean; verbose?: boolean }) => {
        const { station, unlock } = await openLockedStation(opts.config, { operator: opts.operator, ...(opts.case ? { caseRef: opts.case } : {}) });
        try {
          await cleanSpool(station.layout.spoolDir, station.journal);
          const progress = lineProgress(opts);
          let outcome: BatchOutcome;
          try {
            outcome = await ingestCard(station, { card, onEvent: progress });
          } finally {
            progress.finish();
          }
          // Again after the work: sealed originals of files now verified (and the spool of a
          // secured batch) leave the spool now, not at the next start.
          await cleanSpool(station.layout.spoolDir, station.journal);
          const wipe = opts.wipeAfterSecured || station.config.policy.wipeAfterSecured;
          const wiped = wipe && outcome.status === 'secured' && !outcome.alreadySecured ? await wipeSecured(station, outcome.batchId, card) : undefined;
          if (opts.json) printJson({ ...outcome, ...(wiped ? { wiped } : {}) });
          else printOutcome(outcome);
          return exitFor(outcome);
        } finally {
          await unlock();
          await station.close();
        }
      }),
    );
}
