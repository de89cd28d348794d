/**
 * Loads the signed config and the station's local layout around it.
 *
 * The config file is trusted only when its signature verifies against the admin key pinned on
 * this station. Unsigned, altered, or signed by any other key: refused with E_CONFIG_*, before
 * anything else happens. The pin is a file only root can change (src/config/pin.ts: by default
 * `keys/admin.pub`, in a deployment /etc/kluis/admin.pub named by KLUIS_ADMIN_PIN); a pin its
 * own user could replace is refused (E_CONFIG_PIN_UNPROTECTED), since whoever replaces it can
 * sign any config.
 *
 * A config also carries `revision` and `signedAt` inside the signed content; one older than the
 * highest revision this station accepted is refused (E_CONFIG_REPLAYED, src/config/revision.ts),
 * and one without a revision (signed before they existed) too (E_CONFIG_NO_REVISION: sign it
 * again). Signing (`writeSignedConfig`) raises the revision and, on a station, records it.
 */
import { promises as fsp } from 'node:fs';
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
} from '../seal/index.js';
import { exists, writeFileAtomic } from '../util/fsx.js';
import { assertPinProtected, pinFileFor, ADMIN_PIN_ENV } from './pin.js';
import { checkRevision, configSha256, rememberedRevision, rememberRevision, type ConfigStamp, type Remembered } from './revision.js';
import { layoutFor, type StationLayout } from './layout.js';

export interface LoadedConfig {
  config: Config;
  /** `adminPinFile` here is the pin that was used (see pin.ts for which one). */
  layout: StationLayout;
  adminKey: PublicKey;
  /** Revision, signing time, signer and hash of this config. */
  stamp: ConfigStamp;
  /** The highest revision this station had accepted before this load, if any. */
  remembered?: Remembered;
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

/**
 * Reads a config file (a station's or a desk's) and checks its signature against the admin key
 * pinned for it (pin.ts: KLUIS_ADMIN_PIN, the config's `adminPin`, else `fallbackPin`); the pin
 * must be one only root can change. Returns the signed object, not yet checked against a schema.
 */
export async function readSignedConfig(
  file: string,
  root: string,
  fallbackPin: string,
): Promise<{ raw: unknown; adminKey: PublicKey; pinFile: string; signer: string }> {
  const { raw, signature } = await readConfigFile(file);
  const pinFile = pinFileFor(root, raw, fallbackPin);
  const adminKey = await readPublicKey(pinFile, 'admin').catch((err) => {
    throw new KluisError('E_CONFIG_NO_PIN', `no pinned admin key at ${pinFile}`, {
      hint: `kluis init pins the admin key in keys/admin.pub; a deployed station keeps it root-owned elsewhere and names it with ${ADMIN_PIN_ENV} (deploy/README.md)`,
      cause: err,
    });
  });
  assertPinProtected(pinFile);
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
  if (raw && typeof raw === 'object' && (raw as { revision?: unknown }).revision === undefined) {
    throw new KluisError('E_CONFIG_NO_REVISION', `config ${file} has no revision: it was signed before configs carried one, so this station cannot tell it from an older copy`, {
      hint: `have the admin sign it once more: kluis config sign --config ${file} --admin-key KEY (that gives it a revision)`,
    });
  }
  return { raw, adminKey, pinFile, signer: signature.key };
}

/** A desk config (`kind: "desk"`, src/config/desk.ts): signed like a station's, but never one. */
export function isDeskConfig(raw: unknown): boolean {
  return !!raw && typeof raw === 'object' && (raw as { kind?: unknown }).kind === 'desk';
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  const base = layoutFor(file);
  const { raw, adminKey, pinFile, signer } = await readSignedConfig(base.configFile, base.root, base.adminPinFile);
  const layout: StationLayout = { ...base, adminPinFile: pinFile };
  if (isDeskConfig(raw)) {
    throw new KluisError('E_CONFIG_DESK', `config ${file} is an evidence desk config, not a station's`, {
      hint: 'a desk only finds, verifies and exports batches (catalog, verify, export, serve --desk); ingest and admin tasks need a station config',
    });
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new KluisError('E_CONFIG_INVALID', `config ${file} is invalid: ${formatZod(parsed.error)}`, {
      hint: 'fix the named field, then sign again',
    });
  }
  const stamp: ConfigStamp = { revision: parsed.data.revision, signedAt: parsed.data.signedAt, sha256: configSha256(raw), signer };
  const remembered = await checkRevision(file, layout, stamp);
  return { config: parsed.data, layout, adminKey, stamp, ...(remembered ? { remembered } : {}) };
}

function revisionOf(config: unknown): number {
  const r = config && typeof config === 'object' ? (config as { revision?: unknown }).revision : undefined;
  return typeof r === 'number' && Number.isInteger(r) && r > 0 ? r : 0;
}

/**
 * Validates `config` and writes it signed by `admin`, with `revision` one above the highest of
 * its own, the file's on disk and this station's memory, and `signedAt` now (both signed). On a
 * station (a state folder beside the config) whose pin is `admin`, the new revision is recorded
 * at once, so the file it replaces can no longer be put back.
 */
export async function writeSignedConfig(file: string, config: unknown, admin: SecretKey): Promise<Config> {
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new KluisError('E_CONFIG_INVALID', 'config is invalid: (top): expected an object');
  }
  const layout = layoutFor(file);
  const onDisk = await readConfigFile(layout.configFile).then(
    (f) => f.raw,
    () => undefined,
  );
  const remembered = (await exists(layout.stateDir)) ? await rememberedRevision(layout) : undefined;
  const revision = Math.max(revisionOf(config), revisionOf(onDisk), remembered?.revision ?? 0) + 1;
  const signed: Record<string, unknown> = { ...(config as Record<string, unknown>), revision, signedAt: new Date().toISOString() };
  const parsed = ConfigSchema.safeParse(signed);
  if (!parsed.success) {
    throw new KluisError('E_CONFIG_INVALID', `config is invalid: ${formatZod(parsed.error)}`);
  }
  const signer = formatPublicKey(admin.publicKey);
  await writeFileAtomic(file, `${JSON.stringify(signedDocument(signed, admin), null, 2)}\n`, 0o644);
  if (await exists(layout.stateDir)) {
    const pin = await readPublicKey(pinFileFor(layout.root, signed, layout.adminPinFile), 'admin').catch(() => undefined);
    if (pin && formatPublicKey(pin) === signer) {
      const stamp: ConfigStamp = { revision, signedAt: parsed.data.signedAt, sha256: configSha256(signed), signer };
      await rememberRevision(layout, stamp, { station: parsed.data.station });
    }
  }
  return parsed.data;
}

/** The file's document for `config` signed by `admin` (the caller validates `config` first). */
export function signedDocument(config: unknown, admin: SecretKey): { config: unknown; signature: { alg: 'ed25519'; key: string; value: string } } {
  const value = Buffer.from(sign(admin, signatureMessage(config))).toString('base64');
  return { config, signature: { alg: 'ed25519', key: formatPublicKey(admin.publicKey), value } };
}

export function formatZod(err: { issues: Array<{ path: Array<string | number>; message: string }> }): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`).join('; ');
}

export { parsePublicKey };
