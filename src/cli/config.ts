/**
 * `kluis config sign --config FILE --admin-key KEY` and `kluis config check --config FILE [--json]`.
 * Thin: sign validates (schema + the static egress rules: no vendor or metadata host, no
 * credentials in a URL, https for cloud, no fs target as cloud, an admin IP table pinned by the
 * SHA-256 it has now) and signs with the admin key, one revision up; check explains who signed,
 * which revision, whether this station accepts the file (pin, signature, revision), and each
 * target's static policy verdict. Neither connects anywhere (that is `targets test`). No URL is
 * printed with its user name or password.
 */
import type { Command } from 'commander';
import { action, info, printJson, warn } from './output.js';
import { EXIT, KluisError, type ErrorCode } from '../errors.js';
import {
  UnsignedConfigSchema, formatZod, layoutFor, loadConfig, pinFileFor, pinProblem, readConfigFile, rememberedRevision, writeSignedConfig,
  type Config, type TargetConfig, type UnsignedConfig,
} from '../config/index.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatPublicKey, readPublicKey, readSecretKeyFile } from '../seal/index.js';
import {
  countryTableOf, metadataHostOf, vendorDomainOf, normaliseHost, parseRanges, redactUrl, sha256Hex, SHIPPED_DB_PACKAGE, SHIPPED_DB_PIN,
} from '../targets/index.js';

export interface StaticVerdict {
  allowed: boolean;
  code?: ErrorCode;
  reason: string;
}

/**
 * Policy checks that need no network: vendor and metadata deny lists, no credentials in a URL,
 * https for cloud, no fs target as cloud, URL shape.
 */
export function staticVerdict(t: TargetConfig): StaticVerdict {
  if (t.type === 'fs') {
    if (t.class === 'cloud') {
      return {
        allowed: false,
        code: 'E_POLICY_FS_CLOUD',
        reason: 'an fs target writes to a local folder; kluis cannot see which country a folder sends its bytes to, so it cannot be a cloud target',
      };
    }
    return { allowed: true, reason: 'local folder (no network)' };
  }
  let url: URL;
  try {
    url = new URL(t.url);
  } catch {
    return { allowed: false, code: 'E_CONFIG_INVALID', reason: `url '${redactUrl(t.url)}' is not a URL` };
  }
  if (url.username || url.password) {
    return {
      allowed: false,
      code: 'E_CONFIG_CREDENTIALS',
      reason: `the URL for ${normaliseHost(url.hostname)} carries a user name or password; credentials never go into the signed config`,
    };
  }
  const vendor = vendorDomainOf(url.hostname);
  if (vendor) return { allowed: false, code: 'E_EGRESS_VENDOR', reason: `${normaliseHost(url.hostname)} is on the vendor deny list (${vendor})` };
  const metadata = metadataHostOf(url.hostname);
  if (metadata) return { allowed: false, code: 'E_EGRESS_METADATA', reason: `${metadata}; it hands out credentials and never receives anything` };
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { allowed: false, code: 'E_EGRESS_PLAINTEXT', reason: `unsupported scheme ${url.protocol}` };
  if (t.class === 'cloud' && url.protocol !== 'https:') return { allowed: false, code: 'E_EGRESS_PLAINTEXT', reason: 'cloud targets must use https' };
  if (t.type === 's3' && !t.bucket) return { allowed: false, code: 'E_CONFIG_INVALID', reason: 'S3 targets need a bucket' };
  return {
    allowed: true,
    reason:
      t.class === 'cloud'
        ? 'https; every resolved address must be in an allowed country (checked at connect time)'
        : 'every resolved address must be loopback, private or admin-listed (checked at connect time)',
  };
}

/** The hint for a target refused by `staticVerdict`, by code. */
export function verdictHint(code: string | undefined): string {
  switch (code) {
    case 'E_EGRESS_VENDOR':
      return 'kluis never sends anything to a drone or camera maker; remove this target';
    case 'E_EGRESS_METADATA':
      return 'kluis never connects to a cloud metadata service; give the storage server\'s own address';
    case 'E_CONFIG_CREDENTIALS':
      return 'remove user:password@ from the URL; give credentials with --credentials-file (a 0600 file) or credentials.env in the target config';
    case 'E_POLICY_FS_CLOUD':
      return 'for cloud storage use an s3 or webdav target (https, NL addresses only); a local disk or NAS mount is --class onprem';
    default:
      return 'fix the target, then sign again';
  }
}

/**
 * Validates a config for signing: schema, ranges, no target that policy refuses outright, and
 * an admin IP-to-country table whose file (relative to `configDir`) has the pinned SHA-256 and is
 * a country MaxMind DB.
 */
export async function validateForSigning(raw: unknown, configDir: string): Promise<UnsignedConfig> {
  const parsed = UnsignedConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new KluisError('E_CONFIG_INVALID', `config is invalid: ${formatZod(parsed.error)}`, { hint: 'fix the named field, then sign again' });
  }
  const cfg = parsed.data;
  parseRanges(cfg.egress.onpremRanges);
  const names = new Set<string>();
  for (const t of cfg.targets) {
    if (names.has(t.name)) throw new KluisError('E_CONFIG_INVALID', `two targets are named ${t.name}`);
    names.add(t.name);
    const v = staticVerdict(t);
    if (!v.allowed) {
      throw new KluisError(v.code ?? 'E_CONFIG_INVALID', `target ${t.name}: ${v.reason}`, { hint: verdictHint(v.code) });
    }
  }
  if (cfg.egress.ipCountryDb) {
    const file = path.resolve(configDir, cfg.egress.ipCountryDb);
    const bytes = await fsp.readFile(file).catch((err: unknown) => {
      throw new KluisError('E_CONFIG_IPDB', `cannot read the IP-to-country table ${file} to check its pin`, {
        hint: 'egress.ipCountryDb is relative to the config folder; sign where the table is',
        cause: err,
      });
    });
    const actual = sha256Hex(bytes);
    if (actual !== cfg.egress.ipCountryDbSha256) {
      throw new KluisError('E_EGRESS_IPDB_HASH', `the IP-to-country table ${file} has SHA-256 ${actual}, not the pinned ${cfg.egress.ipCountryDbSha256}`, {
        hint: `if this file is the table you reviewed, set egress.ipCountryDbSha256 to ${actual} and sign again`,
      });
    }
    countryTableOf(bytes, file); // a country MaxMind DB, or E_CONFIG_IPDB before the station meets it
  }
  return cfg;
}

/** Signs `raw` with the admin key file, after validation; warns if the station pins another key. */
export async function signConfig(file: string, raw: unknown, adminKeyFile: string): Promise<{ config: Config; signer: string }> {
  const layout = layoutFor(file);
  await validateForSigning(raw, layout.root);
  const admin = await readSecretKeyFile(adminKeyFile, 'admin');
  const signer = formatPublicKey(admin.publicKey);
  const pinFile = pinFileFor(layout.root, raw, layout.adminPinFile);
  const pin = await readPublicKey(pinFile, 'admin').catch(() => undefined);
  if (pin && formatPublicKey(pin) !== signer) {
    throw new KluisError('E_CONFIG_WRONG_SIGNER', `this station pins admin key ${formatPublicKey(pin)}, not ${signer}`, {
      hint: `sign with the admin key this station was set up with (${pinFile} shows which)`,
    });
  }
  const config = await writeSignedConfig(file, raw, admin);
  return { config, signer };
}

export function register(program: Command): void {
  const config = program.command('config').description('sign and check the station config (admin tasks)');

  config
    .command('sign')
    .description('validate the config and sign it with the admin key')
    .requiredOption('--config <file>', 'config file (kluis.json)')
    .requiredOption('--admin-key <file>', 'admin secret key file (mode 0600)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: { config: string; adminKey: string; json?: boolean }) => {
        const { raw } = await readConfigFile(opts.config);
        const { config: cfg, signer } = await signConfig(opts.config, raw, opts.adminKey);
        if (opts.json) printJson({ config: opts.config, signer, revision: cfg.revision, signedAt: cfg.signedAt, targets: cfg.targets.map((t) => t.name) });
        else info(`signed ${opts.config} with ${signer}: revision ${cfg.revision} (${cfg.targets.length} target(s))`);
      }),
    );

  config
    .command('check')
    .description('explain the config: who signed it, whether this station accepts it, target policy verdicts')
    .requiredOption('--config <file>', 'config file (kluis.json)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: { config: string; json?: boolean }) => {
        const layout = layoutFor(opts.config);
        const { raw, signature } = await readConfigFile(layout.configFile);
        const pinFile = pinFileFor(layout.root, raw, layout.adminPinFile);
        const pin = await readPublicKey(pinFile, 'admin').then(formatPublicKey, () => undefined);
        const pinIssue = pin ? pinProblem(pinFile) : undefined;
        const remembered = await rememberedRevision(layout).catch(() => undefined);
        let accepted: { ok: true } | { ok: false; code: string; message: string; hint?: string };
        try {
          await loadConfig(layout.configFile);
          accepted = { ok: true };
        } catch (err) {
          const e = err instanceof KluisError ? err : new KluisError('E_CONFIG_INVALID', String(err));
          accepted = { ok: false, code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
        }
        const parsed = UnsignedConfigSchema.safeParse(raw);
        const targets = parsed.success
          ? parsed.data.targets.map((t) => ({ name: t.name, type: t.type, url: redactUrl(t.url), class: t.class, required: t.required, ...staticVerdict(t) }))
          : [];
        const rawObj = (raw && typeof raw === 'object' ? raw : {}) as { revision?: unknown; signedAt?: unknown };
        const doc = {
          config: layout.configFile,
          signed: !!signature,
          signer: signature?.key ?? null,
          revision: typeof rawObj.revision === 'number' ? rawObj.revision : null,
          signedAt: typeof rawObj.signedAt === 'string' ? rawObj.signedAt : null,
          stationRevision: remembered?.revision ?? null,
          pinnedAdmin: pin ?? null,
          pinFile,
          pinProtected: pin ? !pinIssue : null,
          accepted: accepted.ok,
          ...(accepted.ok ? {} : { error: { code: accepted.code, message: accepted.message } }),
          schemaErrors: parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`),
          egress: parsed.success
            ? {
                countries: parsed.data.egress.countries,
                onpremRanges: parsed.data.egress.onpremRanges,
                ipCountryDb: parsed.data.egress.ipCountryDb
                  ? `${parsed.data.egress.ipCountryDb} (SHA-256 ${parsed.data.egress.ipCountryDbSha256 ?? 'NOT PINNED'})`
                  : `(shipped) ${SHIPPED_DB_PACKAGE}@${SHIPPED_DB_PIN.version}, pinned`,
              }
            : null,
          targets,
        };
        if (opts.json) printJson(doc);
        else {
          const lines = [
            `config:     ${doc.config}`,
            `signed:     ${doc.signed ? `yes, by ${doc.signer}${doc.signedAt ? ` at ${doc.signedAt}` : ''}` : 'NO'}`,
            `revision:   ${doc.revision ?? 'NONE (signed before revisions; sign it again)'}${doc.stationRevision !== null ? ` (this station accepted up to ${doc.stationRevision})` : ''}`,
            `pinned:     ${doc.pinnedAdmin ? `${doc.pinnedAdmin} in ${pinFile}${pinIssue ? ` — NOT PROTECTED: ${pinIssue.path} ${pinIssue.reason}` : ''}` : `(no admin key pinned at ${pinFile})`}`,
            `accepted:   ${accepted.ok ? 'yes' : `NO — ${accepted.message} [${accepted.code}]`}`,
            ...doc.schemaErrors.map((e) => `invalid:    ${e}`),
            ...(doc.egress ? [`egress:     cloud countries ${doc.egress.countries.join(', ')}; onprem extra ranges ${doc.egress.onpremRanges.join(', ') || '(none)'}; IP table ${doc.egress.ipCountryDb}`] : []),
            'targets:',
            ...targets.map((t) => `  ${t.allowed ? 'ok     ' : 'REFUSED'} ${t.name} (${t.type}, ${t.class}${t.required ? ', required' : ''}) ${t.url} — ${t.reason}`),
            '',
          ];
          process.stdout.write(lines.join('\n'));
          if (!accepted.ok && accepted.hint) warn(accepted.hint);
        }
        if (!accepted.ok) return EXIT.config;
        return targets.every((t) => t.allowed) ? EXIT.ok : EXIT.policy;
      }),
    );
}
