/**
 * `kluis keys new-station|new-recipient|new-admin --out FILE` and `kluis keys public FILE`.
 * Thin: makes or reads a key through src/seal/keys.ts and prints its public key. Secret key
 * files are written 0600 and never overwritten; a secret key is never printed.
 */
import type { Command } from 'commander';
import { action, info, printJson } from './output.js';
import { KluisError } from '../errors.js';
import { formatPublicKey, generateKey, readSecretKeyFile, writeSecretKeyFile, type KeyKind } from '../seal/index.js';

const ROLES: Array<{ cmd: string; kind: KeyKind; what: string; note: string }> = [
  { cmd: 'new-recipient', kind: 'recipient', what: 'an evidence recipient key (files are sealed to its public key)', note: 'keep this secret key off the station: whoever holds it can open the evidence' },
  { cmd: 'new-station', kind: 'station', what: 'a station signing key (signs manifests and audit checkpoints; cannot decrypt)', note: 'this key stays on the station' },
  { cmd: 'new-admin', kind: 'admin', what: 'an admin key (signs the station config)', note: 'keep this secret key off the station' },
];

export function register(program: Command): void {
  const keys = program.command('keys').description('make keys and show public keys');

  for (const role of ROLES) {
    keys
      .command(role.cmd)
      .description(`make ${role.what}`)
      .requiredOption('--out <file>', 'where to write the secret key (mode 0600; never overwritten)')
      .option('--json', 'print one JSON document')
      .action(
        action(async (opts: { out: string; json?: boolean }) => {
          const key = generateKey(role.kind);
          try {
            await writeSecretKeyFile(opts.out, key);
          } catch (err) {
            const e = err as NodeJS.ErrnoException;
            if (e && e.code === 'EEXIST') {
              throw new KluisError('E_KEY_EXISTS', `${opts.out} already exists; refusing to overwrite a key file`, {
                hint: 'choose another --out path, or move the old key away first if you really mean to replace it',
              });
            }
            throw new KluisError('E_KEY_WRITE', `cannot write key file ${opts.out}: ${e?.message ?? String(err)}`, {
              hint: 'check that the folder exists and is writable',
              cause: err,
            });
          }
          const publicKey = formatPublicKey(key.publicKey);
          if (opts.json) {
            printJson({ kind: role.kind, publicKey, file: opts.out });
          } else {
            process.stdout.write(`${publicKey}\n`);
            info(`wrote ${role.kind} secret key to ${opts.out} (mode 0600); ${role.note}`);
          }
        }),
      );
  }

  keys
    .command('public')
    .description('print the public key of a secret key file')
    .argument('<file>', 'secret key file')
    .option('--json', 'print one JSON document')
    .action(
      action(async (file: string, opts: { json?: boolean }) => {
        const key = await readSecretKeyFile(file);
        const publicKey = formatPublicKey(key.publicKey);
        if (opts.json) printJson({ kind: key.kind, publicKey, file });
        else process.stdout.write(`${publicKey}\n`);
      }),
    );
}
