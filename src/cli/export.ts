/**
 * `kluis export BATCH --config FILE --identity KEY --out DIR [--originals] [--into-existing]`:
 * decrypts a batch's sanitized footage into DIR/sanitized/ under the card's paths, with its
 * report and an ASC MHL history that covers all of it (src/evidence/export.ts has the layout).
 * DIR must be new or empty unless --into-existing.
 */
import type { Command } from 'commander';
import * as os from 'node:os';
import { action, printJson, printLines, info } from './output.js';
import { readSecretKeyFile } from '../seal/index.js';
import { loadSource } from '../evidence/source.js';
import { exportBatch } from '../evidence/export.js';
import { AuditLog } from '../audit/index.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  program
    .command('export')
    .description('decrypt a batch into a folder, with its report and an ASC MHL history')
    .argument('<batch>', 'batch id (see kluis status)')
    .requiredOption('--config <file>', 'the signed station or evidence desk config (kluis.json)')
    .requiredOption('--identity <key>', 'evidence secret key file (repeatable)', collect, [])
    .requiredOption('--out <dir>', 'folder to write into (new or empty)')
    .option('--operator <name>', 'who exports (recorded)', os.userInfo().username)
    .option('--originals', 'also decrypt the sealed unsanitized originals into DIR/originals/ (where a target holds them)')
    .option('--into-existing', 'write into a DIR that is not empty (same names are replaced; the ASC MHL history gets a new generation)')
    .option('--json', 'print one JSON document on stdout')
    .action(
      action(async (batch: string, opts: { config: string; identity: string[]; out: string; operator: string; originals?: boolean; intoExisting?: boolean; json?: boolean }) => {
        const source = await loadSource(opts.config);
        const identities = await Promise.all(opts.identity.map((k) => readSecretKeyFile(k, 'recipient')));
        // Decrypting evidence is recorded (a station: in its audit log; a desk: in the desk's own
        // log): the log is opened before any plaintext is written, and an export that cannot be
        // recorded does not happen (E_AUDIT_OPEN).
        const audit = await AuditLog.open(source.record.file, { station: source.record.name });
        let result;
        try {
          result = await exportBatch(source, batch, identities, opts.out, {
            operator: opts.operator,
            ...(opts.originals ? { originals: true } : {}),
            ...(opts.intoExisting ? { intoExisting: true } : {}),
          });
          await audit.append('export', {
            batchId: batch, operator: opts.operator, target: result.target, out: result.out, files: result.files.length,
            ...(source.kind === 'desk' && result.station ? { batchStation: result.station.name } : {}),
          });
        } finally {
          await audit.close();
        }
        if (opts.json) printJson(result);
        else {
          printLines([
            ...result.files.map((f) => `exported ${f.path}  sha256 ${f.sha256}  -> ${f.file}`),
            ...(result.originals ?? []).map((o) => `original ${o.path}  sha256 ${o.sha256}  -> ${o.file}`),
            ...result.skipped.map((s) => `not in batch ${s.path} (${s.status}${s.reason ? `: ${s.reason}` : ''})`),
          ]);
          info(`${result.files.length} file(s) in ${result.out}${result.report ? `, report ${result.report}` : ''}${result.mhl ? `, MHL ${result.mhl}` : ''}`);
        }
      }),
    );
}
