/**
 * `kluis config sign --config FILE --admin-key KEY` and `kluis config check --config FILE [--json]`.
 * Thin: sign validates (schema + the static egress rules: no vendor host, https for cloud) and
 * signs with the admin key; check explains who signed, whether this station accepts the file,
 * and each target's static policy verdict. Neither connects anywhere (that is `targets test`).
 */
import type { Command } from 'commander';
import { action, info, printJson, warn } from './output.js';
import { EXIT, KluisError } from '../errors.js';
import { ConfigSchema, type Config, type TargetConfig } from '../config/schema.js';
import { formatZod, layoutFor, loadConfig, readConfigFile, writeSignedConfig } from '../config/load.js';
import { formatPublicKey, readPublicKey, readSecretKeyFile } from '../seal/keys.js';
import { vendorDomainOf, normaliseHost, parseRanges, SHIPPED_DB_PACKAGE } from '../targets/egress.js';

export interface StaticVerdict {
  allowed: boolean;
  code?: string;
  reason: string;
}

/** Policy checks that need no network: vendor deny list, https for cloud, URL shape. */
export function staticVerdict(t: TargetConfig): StaticVerdict {
  if (t.type === 'fs') return { allowed: true, reason: 'local folder (no network)' };
  let url: URL;
  try {
    url = new URL(t.url);
  } catch {
    return { allowed: false, code: 'E_CONFIG_INVALID', reason: `url '${t.url}' is not a URL` };
  }
  const vendor = vendorDomainOf(url.hostname);
  if (vendor) return { allowed: false, code: 'E_EGRESS_VENDOR', reason: `${normaliseHost(url.hostname)} is on the vendor deny list (${vendor})` };
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

/** Validates a config for signing: schema, ranges, and no target that policy refuses outright. */
export function validateForSigning(raw: unknown): Config {
  const parsed = ConfigSchema.safeParse(raw);
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
      throw new KluisError(v.code ?? 'E_CONFIG_INVALID', `target ${t.name}: ${v.reason}`, {
        hint: v.code === 'E_EGRESS_VENDOR' ? 'kluis never sends anything to a drone or camera maker; remove this target' : 'fix the target, then sign again',
      });
    }
  }
  return cfg;
}

/** Signs `raw` with the admin key file, after validation; warns if the station pins another key. */
export async function signConfig(file: string, raw: unknown, adminKeyFile: string): Promise<{ config: Config; signer: string }> {
  validateForSigning(raw);
  const admin = await readSecretKeyFile(adminKeyFile, 'admin');
  const signer = formatPublicKey(admin.publicKey);
  const pin = await readPublicKey(layoutFor(file).adminPinFile, 'admin').catch(() => undefined);
  if (pin && formatPublicKey(pin) !== signer) {
    throw new KluisError('E_CONFIG_WRONG_SIGNER', `this station pins admin key ${formatPublicKey(pin)}, not ${signer}`, {
      hint: 'sign with the admin key this station was set up with (keys/admin.pub shows which)',
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
        if (opts.json) printJson({ config: opts.config, signer, targets: cfg.targets.map((t) => t.name) });
        else info(`signed ${opts.config} with ${signer} (${cfg.targets.length} target(s))`);
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
        const pin = await readPublicKey(layout.adminPinFile, 'admin').then(formatPublicKey, () => undefined);
        let accepted: { ok: true } | { ok: false; code: string; message: string; hint?: string };
        try {
          await loadConfig(layout.configFile);
          accepted = { ok: true };
        } catch (err) {
          const e = err instanceof KluisError ? err : new KluisError('E_CONFIG_INVALID', String(err));
          accepted = { ok: false, code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
        }
        const parsed = ConfigSchema.safeParse(raw);
        const targets = parsed.success
          ? parsed.data.targets.map((t) => ({ name: t.name, type: t.type, url: t.url, class: t.class, required: t.required, ...staticVerdict(t) }))
          : [];
        const doc = {
          config: layout.configFile,
          signed: !!signature,
          signer: signature?.key ?? null,
          signedAt: signature?.signedAt ?? null,
          pinnedAdmin: pin ?? null,
          accepted: accepted.ok,
          ...(accepted.ok ? {} : { error: { code: accepted.code, message: accepted.message } }),
          schemaErrors: parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`),
          egress: parsed.success
            ? { countries: parsed.data.egress.countries, onpremRanges: parsed.data.egress.onpremRanges, ipCountryDb: parsed.data.egress.ipCountryDb ?? `(shipped) ${SHIPPED_DB_PACKAGE}` }
            : null,
          targets,
        };
        if (opts.json) printJson(doc);
        else {
          const lines = [
            `config:     ${doc.config}`,
            `signed:     ${doc.signed ? `yes, by ${doc.signer}${doc.signedAt ? ` at ${doc.signedAt}` : ''}` : 'NO'}`,
            `pinned:     ${doc.pinnedAdmin ?? '(no admin key pinned on this station)'}`,
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
