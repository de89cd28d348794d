/**
 * `kluis decrypt FILE --identity KEY [--identity KEY…] -o OUT [--force]`: opens one sealed object.
 * Thin: reads the identities (refused when group/world-readable or not recipient keys), calls
 * openToFile, prints. Streams with bounded memory; OUT appears only after the last chunk verified
 * and is never overwritten without --force. FILE may be `-` for standard input.
 * The plaintext temp beside OUT is removed on Ctrl-C / SIGTERM; one that a killed run left there
 * is swept when decrypt next starts with OUT in that folder (util/plain-temp.ts).
 */
import type { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import { action, info, printJson, printLines } from './output.js';
import { KluisError } from '../errors.js';
import * as path from 'node:path';
import { exists } from '../util/fsx.js';
import { sweepOrphans } from '../util/plain-temp.js';
import { openToFile, readSecretKeyFile, sealImplementation } from '../seal/index.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function register(program: Command): void {
  program
    .command('decrypt')
    .description('decrypt one sealed object with an evidence identity')
    .argument('<file>', 'the sealed object (or - for standard input)')
    .requiredOption('-i, --identity <key>', 'evidence secret key file; may be given several times (old and new keys)', collect, [])
    .requiredOption('-o, --out <file>', 'where to write the plaintext')
    .option('--force', 'replace OUT if it exists')
    .option('--json', 'print one JSON document')
    .action(
      action(async (file: string, opts: { identity: string[]; out: string; force?: boolean; json?: boolean }) => {
        if (opts.identity.length === 0) {
          throw new KluisError('E_USAGE', 'give at least one --identity', { hint: 'kluis decrypt FILE --identity evidence.key -o OUT' });
        }
        await sweepOrphans(path.dirname(path.resolve(opts.out)));
        const identities = [];
        for (const f of opts.identity) identities.push(await readSecretKeyFile(f, 'recipient'));
        if (file !== '-' && !(await exists(file))) {
          throw new KluisError('E_INPUT_MISSING', `sealed file ${file} does not exist`, { hint: 'check the path' });
        }
        if (!opts.force && (await exists(opts.out))) {
          throw new KluisError('E_OUTPUT_EXISTS', `${opts.out} already exists; not overwriting it`, {
            hint: 'choose another -o path, or add --force to replace it',
          });
        }
        if (opts.force && (await exists(opts.out)) && (await fsp.lstat(opts.out)).isDirectory()) {
          throw new KluisError('E_OUTPUT_EXISTS', `${opts.out} is a folder`, { hint: 'give a file name with -o' });
        }
        const res = await openToFile(file === '-' ? process.stdin : file, opts.out, identities);
        if (opts.json) {
          printJson({ file, out: opts.out, size: res.size, sha256: res.sha256, implementation: sealImplementation() });
        } else {
          printLines([`${res.sha256}  ${opts.out}`]);
          info(`decrypted ${res.size} bytes to ${opts.out}; every chunk verified`);
        }
      }),
    );
}
