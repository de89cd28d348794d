/**
 * Loads the signed config and the station's local layout around it.
 *
 * The config file is trusted only when its signature verifies against the admin key pinned on
 * this station (`keys/admin.pub`, written by `kluis init`). Unsigned, altered, or signed by any
 * other key: refused with E_CONFIG_*, before anything else happens. The pin is not taken from the
 * config file itself, so editing the file cannot swap the key that checks it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { canonicalJson } from '../util/canonical-json.js';
import { KluisError } from '../errors.js';
import { ConfigSchema, SignedConfigFileSchema, type Config } from './schema.js';
import {
  formatPublicKey,
  parsePublicKey,
  readPublicKey,
  sign,
  verifySignature,
  type PublicKey,
  type SecretKey,
} from '../seal/keys.js';
import { writeFileAtomic } from '../util/fsx.js';

/** Where a station keeps things, all relative to the folder of its config file. */
export interface StationLayout {
  configFile: string;
  root: string;
  keysDir: string;
  stationKeyFile: string;
  adminPinFile: string;
  spoolDir: string;
  stateDir: string;
  auditFile: string;
  journalFile: string;
}

export function layoutFor(configFile: string): StationLayout {
  const abs = path.resolve(configFile);
  const root = path.dirname(abs);
  const keysDir = path.join(root, 'keys');
  const stateDir = path.join(root, 'state');
  return {
    configFile: abs,
    root,
    keysDir,
    stationKeyFile: path.join(keysDir, 'station.key'),
    adminPinFile: path.join(keysDir, 'admin.pub'),
    spoolDir: path.join(root, 'spool'),
    stateDir,
    auditFile: path.join(stateDir, 'audit.jsonl'),
    journalFile: path.join(stateDir, 'journal.db'),
  };
}

export interface LoadedConfig {
  config: Config;
  layout: StationLayout;
  adminKey: PublicKey;
}

export function signatureMessage(config: unknown): Uint8Array {
  return new TextEncoder().encode(`kluis-config-v1\n${canonicalJson(config)}`);
}

/** Reads and parses the file without checking the signature (for `config check` to explain). */
export async function readConfigFile(file: string): Promise<{ raw: unknown; signature?: { alg: 'ed25519'; key: string; value: string; signedAt?: string } }> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new KluisError('E_CONFIG_MISSING', `cannot read config ${file}`, {
      hint: 'create one with `kluis init --dir DIR`, then pass --config DIR/kluis.json',
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new KluisError('E_CONFIG_SYNTAX', `config ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = SignedConfigFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new KluisError('E_CONFIG_SHAPE', `config ${file} is not a kluis config file: ${formatZod(parsed.error)}`, {
      hint: 'a config file is {"config": {...}, "signature": {...}}; make one with `kluis init`',
    });
  }
  return { raw: parsed.data.config, ...(parsed.data.signature ? { signature: parsed.data.signature } : {}) };
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  const layout = layoutFor(file);
  const { raw, signature } = await readConfigFile(layout.configFile);
  const adminKey = await readPublicKey(layout.adminPinFile, 'admin').catch((err) => {
    throw new KluisError('E_CONFIG_NO_PIN', `no pinned admin key at ${layout.adminPinFile}`, {
      hint: 'this station was not set up with `kluis init`; the admin public key must be pinned there',
      cause: err,
    });
  });
  if (!signature) {
    throw new KluisError('E_CONFIG_UNSIGNED', `config ${file} is not signed`, {
      hint: 'the admin signs it with `kluis config sign --config FILE --admin-key KEY`',
    });
  }
  if (signature.key !== formatPublicKey(adminKey)) {
    throw new KluisError('E_CONFIG_WRONG_SIGNER', `config ${file} is signed by ${signature.key}, not by this station's admin key`, {
      hint: `the station trusts only ${formatPublicKey(adminKey)}; have that admin sign the config`,
    });
  }
  const sig = Buffer.from(signature.value, 'base64');
  if (!verifySignature(adminKey, signatureMessage(raw), sig)) {
    throw new KluisError('E_CONFIG_SIGNATURE', `config ${file} was changed after it was signed (signature does not verify)`, {
      hint: 'undo the change, or have the admin review and sign it again with `kluis config sign`',
    });
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new KluisError('E_CONFIG_INVALID', `config ${file} is invalid: ${formatZod(parsed.error)}`, {
      hint: 'fix the named field, then sign again',
    });
  }
  return { config: parsed.data, layout, adminKey };
}

/** Validates `config` and writes it signed by `admin`. */
export async function writeSignedConfig(file: string, config: unknown, admin: SecretKey): Promise<Config> {
  const parsed = ConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new KluisError('E_CONFIG_INVALID', `config is invalid: ${formatZod(parsed.error)}`);
  }
  const value = Buffer.from(sign(admin, signatureMessage(config))).toString('base64');
  const doc = {
    config,
    signature: { alg: 'ed25519', key: formatPublicKey(admin.publicKey), value, signedAt: new Date().toISOString() },
  };
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o644);
  return parsed.data;
}

export function formatZod(err: { issues: Array<{ path: Array<string | number>; message: string }> }): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`).join('; ');
}

export { parsePublicKey };
