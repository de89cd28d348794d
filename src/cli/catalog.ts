/**
 * `kluis catalog --config FILE --identity KEY [--case C] [--station S] [--operator O]
 * [--from DATE] [--to DATE] [--json]`: the batches the targets hold (src/evidence/catalog.ts),
 * from a station's or an evidence desk's config. `--json` prints `{batches: [...], problems,
 * scanned}`. Exit 0; EXIT.mismatch when a manifest on a target is damaged (a signature or shape
 * that does not check out); EXIT.couldNotCheck when a target could not be listed.
 */
import type { Command } from 'commander';
import { action, printJson, printLines, warn } from './output.js';
import { EXIT } from '../errors.js';
import { readSecretKeyFile } from '../seal/index.js';
import { findStation, loadSource } from '../evidence/source.js';
import { catalog, parseDateBound, type CatalogFilter } from '../evidence/catalog.js';

interface CatalogOpts {
  config: string;
  identity: string[];
  case?: string;
  station?: string[];
  operator?: string;
  from?: string;
  to?: string;
  json?: boolean;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  program
    .command('catalog')
    .description('list the batches found on the targets (signed manifests), across the stations the config trusts')
    .requiredOption('--config <file>', 'an evidence desk or station config (kluis.json)')
    .requiredOption('--identity <key>', 'evidence secret key file, to read case, operator and files; repeatable', collect)
    .option('--case <ref>', 'only batches of this case')
    .option('--station <name>', 'only batches of this station (name or kluisstation1… key); repeatable', collect)
    .option('--operator <name>', 'only batches of this operator')
    .option('--from <date>', 'only batches started on or after this date (YYYY-MM-DD, UTC) or time')
    .option('--to <date>', 'only batches started on or before this date (the whole day) or before this time')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: CatalogOpts) => {
        const source = await loadSource(opts.config);
        const identities = await Promise.all(opts.identity.map((k) => readSecretKeyFile(k, 'recipient')));
        const filter: CatalogFilter = {
          ...(opts.case !== undefined ? { case: opts.case } : {}),
          ...(opts.operator !== undefined ? { operator: opts.operator } : {}),
          ...(opts.station ? { stations: opts.station.flatMap((s) => findStation(source, s).map((x) => x.key)) } : {}),
          ...(opts.from ? { from: parseDateBound(opts.from, 'from') } : {}),
          ...(opts.to ? { before: parseDateBound(opts.to, 'to') } : {}),
        };
        const res = await catalog(source, identities, filter);
        if (opts.json) printJson(res);
        else {
          printLines(
            res.batches.map((b) => [b.startedAt.slice(0, 19).replace('T', ' '), b.batchId, b.station, b.case ?? '-', b.operator ?? '-', `${b.files} files`, b.status, b.targets.join(',')].join('  ')),
          );
          for (const p of res.problems) warn(`${p.message} [${p.code}]`);
          process.stderr.write(
            `kluis: ${res.batches.length} batch(es) found; ${res.scanned.batches} batch(es) on ${res.scanned.targets} target(s), ${res.scanned.objects} objects in ${res.scanned.pages} page(s), ${res.scanned.opened} inner manifest(s) opened\n`,
          );
        }
        if (res.problems.some((p) => p.kind === 'damaged')) return EXIT.mismatch;
        if (res.problems.some((p) => p.kind === 'listing')) return EXIT.couldNotCheck;
        return EXIT.ok;
      }),
    );
}
