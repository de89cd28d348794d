/**
 * `kluis audit verify|show --config FILE`: checks or lists the station's hash-chained audit log.
 * Thin: parses, calls src/audit/, prints. `verify` also compares the log with the audit
 * heads the station's signed manifests carry on its targets (src/pipeline/anchors.ts; `--offline`
 * skips that), so a log cut back to an earlier checkpoint is found. It exits EXIT.mismatch on any
 * problem, EXIT.couldNotCheck when the log is sound but a target could not be read.
 */
import type { Command } from 'commander';
import { action, info, printJson, printLines } from './output.js';
import { EXIT } from '../errors.js';
import { loadConfig } from '../config/index.js';
import { parsePublicKey } from '../seal/index.js';
import { readAuditLog, verifyAuditLog, type AuditEntry } from '../audit/index.js';
import { checkAuditAnchors, type AnchorCheck } from '../pipeline/anchors.js';

export function register(program: Command): void {
  const audit = program.command('audit').description('check or list the station audit log');

  audit
    .command('verify')
    .description("check the hash chain and signed checkpoints of the audit log, and the log against the heads the targets' manifests carry")
    .requiredOption('--config <file>', 'the station config (kluis.json)')
    .option('--offline', 'check the log alone; do not read the targets')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: { config: string; offline?: boolean; json?: boolean }) => {
        const loaded = await loadConfig(opts.config);
        const { config, layout } = loaded;
        const pub = parsePublicKey(config.stationKey, 'station');
        const res = await verifyAuditLog(layout.auditFile, pub);
        const anchors: AnchorCheck | undefined = opts.offline ? undefined : await checkAuditAnchors(loaded);
        const ok = res.ok && (!anchors || anchors.result !== 'mismatch');
        if (opts.json) {
          printJson({ file: layout.auditFile, ...res, ok, logOk: res.ok, ...(anchors ? { targets: anchors } : {}) });
        } else {
          printLines(res.problems.map((p) => `line ${p.line}: ${p.code}: ${p.message}`));
          printLines((anchors?.problems ?? []).map((p) => `seq ${p.seq}: ${p.code}: ${p.message}`));
          for (const n of anchors?.notes ?? []) info(n);
          process.stdout.write(
            `${ok ? 'ok' : 'NOT OK'}: ${res.entries} entries, ${res.checkpoints} signed checkpoints, ` +
              `${res.unsignedTail} entries after the last checkpoint, ${res.problems.length + (anchors?.problems.length ?? 0)} problems\n`,
          );
          if (anchors) {
            process.stdout.write(
              `targets: ${anchors.compared} audit head(s) of ${anchors.manifests} manifest(s) of this station compared with the log` +
                `${anchors.compared ? ` (highest seq ${anchors.highestHead}, the log ends at seq ${anchors.logLastSeq})` : ''}: ${anchors.result}\n`,
            );
          } else process.stdout.write("targets: not read (--offline); a log cut back to an earlier checkpoint is found only against them\n");
        }
        if (!ok) return EXIT.mismatch;
        return anchors?.result === 'unchecked' ? EXIT.couldNotCheck : EXIT.ok;
      }),
    );

  audit
    .command('show')
    .description('list audit entries, optionally of one batch')
    .requiredOption('--config <file>', 'the station config (kluis.json)')
    .option('--batch <id>', 'only entries of this batch')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: { config: string; batch?: string; json?: boolean }) => {
        const { layout } = await loadConfig(opts.config);
        const out: AuditEntry[] = [];
        let bad = 0;
        let shown = 0;
        for await (const { entry } of readAuditLog(layout.auditFile)) {
          if (!entry) {
            bad++;
            continue;
          }
          if (opts.batch && entry.batchId !== opts.batch) continue;
          shown++;
          if (opts.json) out.push(entry);
          else printLines([formatEntry(entry)]);
        }
        if (opts.json) printJson({ file: layout.auditFile, entries: out });
        if (bad > 0) info(`${bad} unreadable line(s) skipped; run \`kluis audit verify\``);
        if (opts.batch && shown === 0) info(`no audit entries for batch ${opts.batch}`);
      }),
    );
}

const SHOWN = new Set(['seq', 'time', 'type', 'station', 'prev', 'hash', 'operator', 'case', 'batchId', 'card', 'file']);

function formatEntry(e: AuditEntry): string {
  const who = [e.operator && `operator=${e.operator}`, e.case && `case=${e.case}`, e.batchId && `batch=${e.batchId}`]
    .filter(Boolean)
    .join(' ');
  const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !SHOWN.has(k)));
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
  return `${String(e.seq).padStart(6)} ${e.time} ${e.type}${e.file ? ` ${e.file}` : ''}${who ? ` (${who})` : ''}${extra}`;
}
