/**
 * `kluis init --dir DIR [--admin-pin FILE]`: a working station set-up in one folder: keys
 * (station, evidence recipient, admin; secret keys 0600), a config signed by the admin key (at
 * revision 1) whose one target is a local store in DIR/store, the state folder, and the admin
 * public key pinned for this station: in DIR/keys/admin.pub, or in FILE (named in the signed
 * config as `adminPin`; run as root for a root-owned pin such as /etc/kluis/admin.pub). A pin
 * its own user could change is refused at every start (src/config/pin.ts); init says so.
 */
import type { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { action, info, printJson, warn } from './output.js';
import { KluisError } from '../errors.js';
import { formatPublicKey, generateKey, writeSecretKeyFile } from '../seal/keys.js';
import { layoutFor, writeSignedConfig } from '../config/load.js';
import { assertPinProtected } from '../config/pin.js';
import { exists } from '../util/fsx.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a station set-up: keys, a signed config and a local store')
    .requiredOption('--dir <dir>', 'folder for the set-up (kluis.json, keys/, store/)')
    .option('--station <name>', 'station name recorded in manifests and the audit log', os.hostname())
    .option('--admin-pin <file>', 'pin the admin key in this file (e.g. /etc/kluis/admin.pub, as root) instead of DIR/keys/admin.pub')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (opts: { dir: string; station: string; adminPin?: string; json?: boolean }) => {
        const dir = path.resolve(opts.dir);
        const configFile = path.join(dir, 'kluis.json');
        if (await exists(configFile)) {
          throw new KluisError('E_CONFIG_EXISTS', `${configFile} already exists`, { hint: 'choose another --dir, or remove the old set-up first' });
        }
        const layout = layoutFor(configFile);
        const pinFile = opts.adminPin ? path.resolve(opts.adminPin) : layout.adminPinFile;
        if (opts.adminPin && (await exists(pinFile))) {
          throw new KluisError('E_CONFIG_EXISTS', `${pinFile} already exists`, { hint: 'another station pins its admin key there; choose another --admin-pin, or remove it first' });
        }
        await fsp.mkdir(layout.keysDir, { recursive: true, mode: 0o700 });
        await fsp.mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
        await fsp.chmod(layout.keysDir, 0o700);
        await fsp.mkdir(path.join(dir, 'store'), { recursive: true, mode: 0o700 });
        const station = generateKey('station');
        const evidence = generateKey('recipient');
        const admin = generateKey('admin');
        await writeSecretKeyFile(layout.stationKeyFile, station);
        await writeSecretKeyFile(path.join(layout.keysDir, 'evidence.key'), evidence);
        await writeSecretKeyFile(path.join(layout.keysDir, 'admin.key'), admin);
        await fsp.writeFile(path.join(layout.keysDir, 'evidence.pub'), `${formatPublicKey(evidence.publicKey)}\n`, { mode: 0o644 });
        await fsp.writeFile(path.join(layout.keysDir, 'station.pub'), `${formatPublicKey(station.publicKey)}\n`, { mode: 0o644 });
        if (opts.adminPin) await fsp.mkdir(path.dirname(pinFile), { recursive: true, mode: 0o755 });
        await fsp.writeFile(pinFile, `${formatPublicKey(admin.publicKey)}\n`, { mode: 0o644, flag: opts.adminPin ? 'wx' : 'w' });
        const config = {
          version: 1,
          ...(opts.adminPin ? { adminPin: pinFile } : {}),
          station: opts.station,
          stationKey: formatPublicKey(station.publicKey),
          recipients: [formatPublicKey(evidence.publicKey)],
          targets: [{ name: 'local', type: 'fs', url: 'store', class: 'onprem', required: true }],
          policy: {},
          egress: {},
        };
        await writeSignedConfig(configFile, config, admin);
        const result = {
          config: configFile,
          station: { name: opts.station, key: formatPublicKey(station.publicKey) },
          evidence: { publicKey: formatPublicKey(evidence.publicKey), secretKey: path.join(layout.keysDir, 'evidence.key') },
          admin: { publicKey: formatPublicKey(admin.publicKey), secretKey: path.join(layout.keysDir, 'admin.key'), pin: pinFile },
          store: path.join(dir, 'store'),
        };
        try {
          assertPinProtected(pinFile);
        } catch (err) {
          const e = err as KluisError;
          warn(`${e.message}. kluis will refuse to start until it is fixed: ${e.hint ?? ''}`);
        }
        warn(`${result.evidence.secretKey} and ${result.admin.secretKey} belong elsewhere: move them to the evidence desk and the admin, off this station. The station needs neither to ingest, and while they sit here a stolen station can read its own footage.`);
        if (opts.json) printJson(result);
        else {
          info(`set up in ${dir}`);
          process.stdout.write(
            [
              `config:        ${configFile} (signed by the admin key)`,
              `store:         ${result.store}`,
              `station key:   ${result.station.key}`,
              `evidence key:  ${result.evidence.publicKey}  (secret: ${result.evidence.secretKey})`,
              `admin key:     ${result.admin.publicKey}  (secret: ${result.admin.secretKey}; pinned in ${pinFile})`,
              '',
              `next: kluis ingest CARD --config ${configFile}`,
              '',
            ].join('\n'),
          );
        }
      }),
    );
}
