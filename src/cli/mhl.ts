/**
 * `kluis mhl verify DIR [--json] [--record]`: checks a folder against its ASC MHL history.
 * Thin: parses, calls src/evidence/mhl, prints. Exit 0 when every file and manifest matches,
 * EXIT.missing when the only problems are missing files/manifests, EXIT.mismatch otherwise.
 */
import type { Command } from 'commander';
import * as os from 'node:os';
import { action, printJson, printLines } from './output.js';
import { EXIT } from '../errors.js';
import { verifyMhl } from '../evidence/mhl/index.js';

export function register(program: Command): void {
  const mhl = program.command('mhl').description('ASC MHL v2 histories of exported folders');
  mhl
    .command('verify')
    .description('re-hash a folder and check it against its ascmhl/ history')
    .argument('<dir>', 'the folder holding ascmhl/')
    .option('--json', 'print one JSON document')
    .option('--record', 'also write this check as a new generation (verified/failed)')
    .option('--operator <name>', 'who runs the check (recorded with --record)')
    .action(
      action(async (dir: string, opts: { json?: boolean; record?: boolean; operator?: string }) => {
        const res = await verifyMhl(dir, opts.record ? { record: { hostname: os.hostname(), ...(opts.operator ? { author: { name: opts.operator } } : {}) } } : {});
        if (opts.json) {
          printJson({ dir, ...res });
        } else {
          printLines([
            ...res.problems.map((p) => `${p.code}: ${p.message}`),
            `${res.ok ? 'ok' : 'NOT OK'}: ${res.checked} files checked against ${res.generations} generation(s), ${res.problems.length} problems`,
          ]);
        }
        if (res.ok) return EXIT.ok;
        const onlyMissing = res.problems.every((p) => p.code === 'missing' || p.code === 'manifest-missing');
        return onlyMissing ? EXIT.missing : EXIT.mismatch;
      }),
    );
}
