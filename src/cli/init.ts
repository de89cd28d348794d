/**
 * `kluis init --dir DIR [--admin-pin FILE]`: a working station set-up in one folder: keys
 * (station, evidence recipient, admin; secret keys 0600), a config signed by the admin key (at
 * revision 1) whose one target is a local store in DIR/store, the state folder, and the admin
 * public key pinned for this station: in DIR/keys/admin.pub, or in FILE (named in the signed
 * config as `adminPin`; run as root for a root-owned pin such as /etc/kluis/admin.pub). A pin
 * its own user could change is refused at every start (src/config/pin.ts); init says so.
 *
 * A further station of the same organisation: `--admin-key A/keys/admin.key --recipient
 * A/keys/evidence.pub` (a `kluis1…` key or a file holding one, repeatable): the config is signed
 * by that admin and seals to those recipients; only a station key is made.
 *
 * An evidence desk: `kluis init --desk --dir D --admin-key KEY --trust A/kluis.json … [--update]`
 * (src/config/desk.ts): a desk config signed by the admin, with the admin key pinned; no station
 * key, no spool, no store; its admin pin follows the same rule (--admin-pin).
 */
import type { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { action, info, printJson, warn } from './output.js';
import { KluisError } from '../errors.js';
import { formatPublicKey, generateKey, readPublicKey, readSecretKeyFile, writeSecretKeyFile, type SecretKey } from '../seal/index.js';
import { assertPinProtected, buildDeskConfig, deskLayoutFor, layoutFor, loadDeskConfig, writeDeskConfig, writeSignedConfig } from '../config/index.js';
import { exists } from '../util/fsx.js';
import { oneLine } from '../util/terminal.js';

interface InitOptions {
  dir: string;
  station: string;
  json?: boolean;
  adminKey?: string;
  adminPin?: string;
  recipient: string[];
  desk?: boolean;
  trust: string[];
  name?: string;
  update?: boolean;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  program
    .command('init')
    .description('create a station set-up (keys, a signed config, a local store), or with --desk an evidence desk')
    .requiredOption('--dir <dir>', 'folder for the set-up (kluis.json, keys/, store/)')
    .option('--station <name>', 'station name recorded in manifests and the audit log', os.hostname())
    .option('--admin-key <file>', "sign with this organisation's admin key instead of making a new one")
    .option('--admin-pin <file>', 'pin the admin key in this file (e.g. /etc/kluis/admin.pub, as root) instead of DIR/keys/admin.pub')
    .option('--recipient <key>', 'evidence recipient to seal to (kluis1… or a file holding one); repeatable; with it no evidence key is made', collect, [])
    .option('--desk', 'make an evidence desk config instead (needs --admin-key and --trust)')
    .option('--trust <config>', "with --desk: a station's signed config whose key and targets the desk takes; repeatable", collect, [])
    .option('--name <name>', 'with --desk: the desk name recorded in its log', os.hostname())
    .option('--update', 'with --desk: make the desk config again in an existing desk folder (new revision; the old one is refused from then on)')
    .option('--json', 'print the result as JSON')
    .action(action(async (opts: InitOptions) => (opts.desk ? initDesk(opts) : initStation(opts))));
}

async function refuseExisting(configFile: string, pinFile: string, pinGiven: boolean): Promise<void> {
  if (await exists(configFile)) {
    throw new KluisError('E_CONFIG_EXISTS', `${configFile} already exists`, { hint: 'choose another --dir, or remove the old set-up first' });
  }
  if (pinGiven && (await exists(pinFile))) {
    throw new KluisError('E_CONFIG_EXISTS', `${pinFile} already exists`, { hint: 'another set-up pins its admin key there; choose another --admin-pin, or remove it first' });
  }
}

/** Writes the admin pin; a given --admin-pin is never overwritten. */
async function writePin(pinFile: string, given: boolean, adminPub: string): Promise<void> {
  if (given) await fsp.mkdir(path.dirname(pinFile), { recursive: true, mode: 0o755 });
  await fsp.writeFile(pinFile, `${adminPub}\n`, { mode: 0o644, flag: given ? 'wx' : 'w' });
}

/** A pin its own user could change is refused at every start: say so now. */
function warnUnprotectedPin(pinFile: string): void {
  try {
    assertPinProtected(pinFile);
  } catch (err) {
    const e = err as KluisError;
    warn(`${e.message}. kluis will refuse to start until it is fixed: ${e.hint ?? ''}`);
  }
}

async function initStation(opts: InitOptions): Promise<void> {
  if (opts.trust.length > 0 || opts.update) throw new KluisError('E_USAGE', '--trust and --update only make sense with --desk');
  if (opts.adminKey && opts.recipient.length === 0) {
    throw new KluisError('E_USAGE', "a station of an existing organisation seals to that organisation's evidence key: give --recipient with --admin-key", {
      hint: 'e.g. --recipient A/keys/evidence.pub',
    });
  }
  const dir = path.resolve(opts.dir);
  const configFile = path.join(dir, 'kluis.json');
  const layout = layoutFor(configFile);
  const pinFile = opts.adminPin ? path.resolve(opts.adminPin) : layout.adminPinFile;
  await refuseExisting(configFile, pinFile, !!opts.adminPin);
  // Everything given is read before anything is written: a wrong key leaves no half set-up.
  const recipients = [];
  for (const r of opts.recipient) recipients.push(formatPublicKey(await readPublicKey(r, 'recipient')));
  const givenAdmin: SecretKey | undefined = opts.adminKey ? await readSecretKeyFile(opts.adminKey, 'admin') : undefined;

  await fsp.mkdir(layout.keysDir, { recursive: true, mode: 0o700 });
  await fsp.mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
  await fsp.chmod(layout.keysDir, 0o700);
  await fsp.mkdir(path.join(dir, 'store'), { recursive: true, mode: 0o700 });
  const station = generateKey('station');
  await writeSecretKeyFile(layout.stationKeyFile, station);
  await fsp.writeFile(path.join(layout.keysDir, 'station.pub'), `${formatPublicKey(station.publicKey)}\n`, { mode: 0o644 });
  let evidence: SecretKey | undefined;
  if (recipients.length === 0) {
    evidence = generateKey('recipient');
    await writeSecretKeyFile(path.join(layout.keysDir, 'evidence.key'), evidence);
    await fsp.writeFile(path.join(layout.keysDir, 'evidence.pub'), `${formatPublicKey(evidence.publicKey)}\n`, { mode: 0o644 });
    recipients.push(formatPublicKey(evidence.publicKey));
  }
  const admin = givenAdmin ?? generateKey('admin');
  if (!givenAdmin) await writeSecretKeyFile(path.join(layout.keysDir, 'admin.key'), admin);
  await writePin(pinFile, !!opts.adminPin, formatPublicKey(admin.publicKey));
  const config = {
    version: 1,
    ...(opts.adminPin ? { adminPin: pinFile } : {}),
    station: opts.station,
    stationKey: formatPublicKey(station.publicKey),
    recipients,
    targets: [{ name: 'local', type: 'fs', url: 'store', class: 'onprem', required: true }],
    policy: {},
    egress: {},
  };
  await writeSignedConfig(configFile, config, admin);
  const result = {
    config: configFile,
    station: { name: opts.station, key: formatPublicKey(station.publicKey) },
    recipients,
    ...(evidence ? { evidence: { publicKey: formatPublicKey(evidence.publicKey), secretKey: path.join(layout.keysDir, 'evidence.key') } } : {}),
    admin: { publicKey: formatPublicKey(admin.publicKey), ...(givenAdmin ? {} : { secretKey: path.join(layout.keysDir, 'admin.key') }), pin: pinFile },
    store: path.join(dir, 'store'),
  };
  warnUnprotectedPin(pinFile);
  const secrets = [result.evidence?.secretKey, result.admin.secretKey].filter(Boolean);
  if (secrets.length > 0) {
    warn(`${secrets.join(' and ')} belong${secrets.length === 1 ? 's' : ''} elsewhere: move ${secrets.length === 1 ? 'it' : 'them'} to the evidence desk and the admin, off this station. The station needs neither to ingest, and while they sit here a stolen station can read its own footage.`);
  }
  if (opts.json) printJson(result);
  else {
    info(`set up in ${dir}`);
    process.stdout.write(
      [
        `config:        ${oneLine(configFile)} (signed by the admin key)`,
        `store:         ${oneLine(result.store)}`,
        `station key:   ${result.station.key}`,
        ...(result.evidence ? [`evidence key:  ${result.evidence.publicKey}  (secret: ${oneLine(result.evidence.secretKey)})`] : recipients.map((r) => `recipient:     ${r}`)),
        `admin key:     ${result.admin.publicKey}${result.admin.secretKey ? `  (secret: ${oneLine(result.admin.secretKey)}` : ' (given'}; pinned in ${oneLine(pinFile)})`,
        '',
        `next: kluis ingest CARD --config ${oneLine(configFile)}`,
        '',
      ].join('\n'),
    );
  }
}

async function initDesk(opts: InitOptions): Promise<void> {
  if (!opts.adminKey) throw new KluisError('E_USAGE', 'a desk config is signed by the admin: give --admin-key', { hint: 'e.g. --admin-key A/keys/admin.key' });
  if (opts.trust.length === 0) throw new KluisError('E_USAGE', 'a desk trusts at least one station: give --trust STATION/kluis.json (repeatable)');
  if (opts.recipient.length > 0) throw new KluisError('E_USAGE', '--recipient is for stations; a desk decrypts with --identity when it reads');
  const dir = path.resolve(opts.dir);
  const layout = deskLayoutFor(path.join(dir, 'kluis.json'));
  const admin = await readSecretKeyFile(opts.adminKey, 'admin');
  let pinFile = opts.adminPin ? path.resolve(opts.adminPin) : layout.adminPinFile;
  if (opts.update) {
    // Only over a desk config this desk accepts, and only by the admin it pins.
    const current = await loadDeskConfig(layout.configFile);
    if (formatPublicKey(current.adminKey) !== formatPublicKey(admin.publicKey)) {
      throw new KluisError('E_CONFIG_WRONG_SIGNER', `${layout.configFile} is pinned to admin ${formatPublicKey(current.adminKey)}, not to the key given`, { hint: "use that admin's key" });
    }
    if (opts.adminPin && path.resolve(opts.adminPin) !== current.layout.adminPinFile) throw new KluisError('E_USAGE', '--admin-pin cannot move the pin of an existing desk');
    pinFile = current.layout.adminPinFile;
  } else {
    await refuseExisting(layout.configFile, pinFile, !!opts.adminPin);
  }
  const pinned = pinFile !== layout.adminPinFile;
  const { config, notes } = await buildDeskConfig({ name: opts.name ?? os.hostname(), trust: opts.trust, admin, ...(pinned ? { adminPin: pinFile } : {}) });
  await fsp.mkdir(layout.keysDir, { recursive: true, mode: 0o700 });
  await fsp.mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
  if (!opts.update) await writePin(pinFile, !!opts.adminPin, formatPublicKey(admin.publicKey));
  const desk = await writeDeskConfig(layout.configFile, config, admin);
  for (const n of notes) warn(n);
  warnUnprotectedPin(pinFile);
  const result = {
    config: layout.configFile,
    desk: desk.desk,
    revision: desk.revision,
    admin: formatPublicKey(admin.publicKey),
    stations: desk.stations,
    targets: desk.targets.map((t) => ({ name: t.name, type: t.type, url: t.url, ...(t.bucket ? { bucket: t.bucket } : {}) })),
    notes,
  };
  if (opts.json) printJson(result);
  else {
    info(`evidence desk ${opts.update ? 'updated' : 'set up'} in ${dir} at revision ${desk.revision} (read-only use of the targets; no station key, no spool)`);
    process.stdout.write(
      [
        `config:   ${oneLine(layout.configFile)} (signed by the admin key ${result.admin})`,
        ...desk.stations.map((s) => `station:  ${oneLine(s.name)} ${s.key} on ${s.targets.join(', ') || '(no target a desk can read)'}`),
        ...result.targets.map((t) => `target:   ${t.name} (${t.type}) ${oneLine(t.url)}${t.bucket ? ` bucket ${oneLine(t.bucket)}` : ''}`),
        '',
        `next: kluis catalog --config ${oneLine(layout.configFile)} --identity EVIDENCE.key`,
        '',
      ].join('\n'),
    );
  }
}
