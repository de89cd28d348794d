/**
 * `kluis targets add|list|remove|test`. add/remove change the config and re-sign it with the admin
 * key, one revision up (the station refuses an unsigned, altered or older config, so an edit
 * without the key, or putting an earlier file back, is useless); both start from a config this
 * station accepts. add refuses what policy refuses outright (config.ts `staticVerdict`): a vendor
 * or cloud-metadata host, user:password@ in the URL, an fs target of class cloud, plain http for
 * cloud. list and test never print a URL's user name or password. `test` probes each target WITHOUT storing
 * anything: policy verdict per resolved address, then one read-only request (S3 HeadBucket,
 * WebDAV PROPFIND Depth 0 on the base collection; fs: the folder is writable).
 */
import type { Command } from 'commander';
import { action, info, printJson } from './output.js';
import { EXIT, KluisError } from '../errors.js';
import { TargetConfigSchema, loadConfig, readConfigFile } from '../config/index.js';
import { openTarget, redactUrl, type Refusal } from '../targets/index.js';
import { signConfig, staticVerdict, verdictHint } from './config.js';

interface AddOpts {
  config: string;
  type: string;
  url: string;
  bucket?: string;
  region?: string;
  class?: string;
  required?: boolean;
  originalsAllowed?: boolean;
  tlsPin?: string;
  caFile?: string;
  credentialsFile?: string;
  retentionDays?: string;
  adminKey: string;
  json?: boolean;
}

/** The file's own (verified) config object with its targets replaced; other fields keep their shape. */
async function withTargets(file: string, change: (targets: unknown[]) => unknown[]): Promise<Record<string, unknown>> {
  const { raw } = await readConfigFile(file);
  const obj = raw as Record<string, unknown>;
  return { ...obj, targets: change(Array.isArray(obj.targets) ? obj.targets : []) };
}

export function register(program: Command): void {
  const targets = program.command('targets').description('storage targets (admin tasks)');

  targets
    .command('add')
    .description('add a target to the config and re-sign it')
    .argument('<name>', 'target name (a-z, 0-9, _ and -)')
    .requiredOption('--config <file>', 'config file (kluis.json)')
    .requiredOption('--type <type>', 'fs | s3 | webdav')
    .requiredOption('--url <url>', 'fs: folder; s3/webdav: endpoint URL')
    .option('--bucket <bucket>', 'S3 bucket')
    .option('--region <region>', 'S3 region')
    .option('--class <class>', 'onprem | cloud', 'onprem')
    .option('--required', 'this target must hold every file before a batch counts as secured')
    .option('--originals-allowed', 'also send the sealed unsanitized originals here (off by default; see docs/targets.md)')
    .option('--tls-pin <pin>', 'base64 SHA-256 of the server public key (SPKI)')
    .option('--ca-file <file>', 'PEM CA to trust for this target (relative to the config folder)')
    .option('--credentials-file <file>', '0600 credentials file (relative to the config folder)')
    .option('--retention-days <n>', 'S3 object lock retention in days')
    .requiredOption('--admin-key <file>', 'admin secret key file (mode 0600)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (name: string, opts: AddOpts) => {
        const { config } = await loadConfig(opts.config);
        if (config.targets.some((t) => t.name === name)) {
          throw new KluisError('E_CONFIG_INVALID', `a target named ${name} already exists`, { hint: 'remove it first, or choose another name' });
        }
        const parsed = TargetConfigSchema.safeParse({
          name,
          type: opts.type,
          url: opts.url,
          ...(opts.bucket ? { bucket: opts.bucket } : {}),
          ...(opts.region ? { region: opts.region } : {}),
          class: opts.class,
          required: !!opts.required,
          originalsAllowed: !!opts.originalsAllowed,
          ...(opts.tlsPin ? { tlsPin: opts.tlsPin } : {}),
          ...(opts.caFile ? { caFile: opts.caFile } : {}),
          ...(opts.credentialsFile ? { credentials: { file: opts.credentialsFile } } : {}),
          ...(opts.retentionDays ? { retentionDays: Number(opts.retentionDays) } : {}),
        });
        if (!parsed.success) {
          throw new KluisError('E_USAGE', `invalid target: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        }
        const v = staticVerdict(parsed.data);
        if (!v.allowed) {
          throw new KluisError(v.code ?? 'E_CONFIG_INVALID', `target ${name} refused: ${v.reason}`, { hint: verdictHint(v.code) });
        }
        // Keep the stored entry as given (no filled-in defaults), so the signed file stays readable.
        const entry: Record<string, unknown> = { name, type: opts.type, url: opts.url, class: parsed.data.class, required: parsed.data.required };
        if (parsed.data.originalsAllowed) entry.originalsAllowed = true;
        for (const k of ['bucket', 'region', 'tlsPin', 'caFile', 'credentials', 'retentionDays'] as const) {
          if (parsed.data[k] !== undefined && !(k === 'retentionDays' && parsed.data[k] === 0)) entry[k] = parsed.data[k];
        }
        const next = await withTargets(opts.config, (ts) => [...ts, entry]);
        const { signer } = await signConfig(opts.config, next, opts.adminKey);
        if (opts.json) printJson({ added: entry, signer });
        else info(`added target ${name} (${opts.type}, ${parsed.data.class}${parsed.data.required ? ', required' : ''}${parsed.data.originalsAllowed ? ', originals allowed' : ''}); config re-signed by ${signer}`);
      }),
    );

  targets
    .command('list')
    .description('list the targets of a config this station accepts')
    .requiredOption('--config <file>', 'config file (kluis.json)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: { config: string; json?: boolean }) => {
        const { config } = await loadConfig(opts.config);
        const rows = config.targets.map((t) => ({
          name: t.name,
          type: t.type,
          url: redactUrl(t.url),
          ...(t.bucket ? { bucket: t.bucket } : {}),
          class: t.class,
          required: t.required,
          originalsAllowed: t.originalsAllowed,
          tlsPin: !!t.tlsPin,
          credentials: t.credentials?.file ? 'file' : t.credentials?.env ? 'env' : 'standard env',
        }));
        if (opts.json) printJson({ targets: rows });
        else {
          process.stdout.write(
            rows.map((r) => `${r.name}\t${r.type}\t${r.class}${r.required ? '\trequired' : '\toptional'}\t${r.url}${r.bucket ? ` (bucket ${r.bucket})` : ''}`).join('\n') + '\n',
          );
        }
      }),
    );

  targets
    .command('remove')
    .description('remove a target from the config and re-sign it')
    .argument('<name>', 'target name')
    .requiredOption('--config <file>', 'config file (kluis.json)')
    .requiredOption('--admin-key <file>', 'admin secret key file (mode 0600)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (name: string, opts: { config: string; adminKey: string; json?: boolean }) => {
        const { config } = await loadConfig(opts.config);
        if (!config.targets.some((t) => t.name === name)) {
          throw new KluisError('E_CONFIG_INVALID', `no target named ${name}`, { hint: `targets: ${config.targets.map((t) => t.name).join(', ')}` });
        }
        const next = await withTargets(opts.config, (ts) => ts.filter((t) => (t as { name?: unknown }).name !== name));
        const { signer } = await signConfig(opts.config, next, opts.adminKey);
        if (opts.json) printJson({ removed: name, signer });
        else info(`removed target ${name}; config re-signed by ${signer}`);
      }),
    );

  targets
    .command('test')
    .description('probe each target: policy verdict per resolved address, connectivity, credentials (stores nothing)')
    .requiredOption('--config <file>', 'config file (kluis.json)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: { config: string; json?: boolean }) => {
        const { config, layout } = await loadConfig(opts.config);
        const results = [];
        for (const t of config.targets) {
          const refusals: Refusal[] = [];
          const target = openTarget(t, { configDir: layout.root, egress: config.egress, onRefusal: (r) => refusals.push(r) });
          try {
            const p = await target.probe();
            results.push({
              name: t.name,
              type: t.type,
              class: t.class,
              url: redactUrl(t.url),
              method: t.type === 's3' ? 'HeadBucket' : t.type === 'webdav' ? 'PROPFIND Depth 0' : 'folder access check',
              ok: p.ok,
              addresses: p.addresses,
              ...(p.error ? { error: p.error } : {}),
              refusals,
            });
          } finally {
            await target.close();
          }
        }
        if (opts.json) printJson({ targets: results });
        else {
          const lines: string[] = [];
          for (const r of results) {
            lines.push(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name} (${r.type}, ${r.class}) ${r.url} [${r.method}]`);
            for (const a of r.addresses) lines.push(`         ${a.allowed ? 'allowed' : 'REFUSED'} ${a.address}${a.country ? ` (${a.country})` : ''}: ${a.reason}`);
            if (r.error) lines.push(`         error: ${r.error.message} [${r.error.code}]`);
          }
          process.stdout.write(`${lines.join('\n')}\n`);
        }
        if (results.every((r) => r.ok)) return EXIT.ok;
        return results.some((r) => r.error?.code.startsWith('E_EGRESS') || r.addresses.some((a) => !a.allowed)) ? EXIT.policy : EXIT.couldNotCheck;
      }),
    );
}
