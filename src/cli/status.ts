/**
 * `kluis status --config FILE [--json]`: batches (with "safe to remove" and secured), files per
 * state, targets and the outbox, read from the journal. Files held as their sealed original only
 * (not sanitized) are always named, with where the original is. Reads only; contacts no target.
 */
import type { Command } from 'commander';
import { action, printJson, printLines } from './output.js';
import { openStation } from '../pipeline/station.js';
import { batchOutcome } from '../pipeline/finalize.js';

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

export function stationStatus(station: Awaited<ReturnType<typeof openStation>>, onlyBatch?: string) {
  const { journal } = station;
  const batches = journal.batches().filter((b) => !onlyBatch || b.id === onlyBatch || b.id.startsWith(onlyBatch));
  const deliveries = journal.allDeliveries();
  return {
    station: station.config.station,
    batches: batches.map((b) => {
      const o = batchOutcome(station, b.id);
      const footage = o.files.filter((f) => f.class === 'footage');
      return {
        batchId: b.id,
        status: o.status,
        phase: b.status,
        createdAt: b.created_at,
        safeToRemove: o.safeToRemove,
        safeToRemoveAt: b.safe_to_remove_at,
        securedAt: b.secured_at,
        operator: b.operator,
        case: b.case_ref,
        card: o.card,
        counts: {
          files: o.files.length,
          footage: footage.length,
          secured: footage.filter((f) => f.status === 'secured').length,
          withheld: o.files.filter((f) => f.status === 'withheld').length,
          rejected: o.files.filter((f) => f.status === 'rejected').length,
          failed: o.files.filter((f) => f.status === 'failed').length,
          held: o.files.filter((f) => f.status === 'held').length,
          queued: o.files.filter((f) => f.status === 'queued').length,
        },
        held: o.files
          .filter((f) => f.status === 'held')
          .map((f) => ({
            path: f.path,
            code: f.error?.code ?? '',
            message: f.error?.message ?? '',
            ...(f.heldAt ? { heldAt: f.heldAt } : {}),
            targets: Object.keys(f.targets ?? {}),
            ...(f.original ? { original: f.original } : {}),
          })),
        targets: o.targets,
        ...(onlyBatch ? { files: o.files } : {}),
      };
    }),
    targets: [...station.targetConfigs.values()].map((t) => {
      const rows = deliveries.filter((d) => d.target === t.name);
      const ok = rows.filter((d) => d.state === 'verified').sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1))[0];
      const bad = rows.filter((d) => d.last_error_code && d.state !== 'verified').sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1))[0];
      return {
        name: t.name,
        type: t.type,
        class: t.class,
        required: t.required,
        outbox: rows.filter((d) => d.state === 'pending' || d.state === 'delivered').length,
        verified: rows.filter((d) => d.state === 'verified').length,
        refused: rows.filter((d) => d.state === 'refused').length,
        ...(ok ? { lastSuccess: ok.updated_at } : {}),
        ...(bad ? { lastError: { code: bad.last_error_code!, message: bad.last_error ?? '' } } : {}),
      };
    }),
  };
}
