/**
 * `kluis verify BATCH --config FILE --identity KEY [--card DIR] [--deep] [--json]`: re-checks a
 * batch end to end from every target (src/evidence/verify.ts) and records the outcome in the audit
 * log. `--deep` also decodes every stored picture and video in full (ingest proves them by their
 * coded bytes and one reduced-scale decode); with `--card`, each picture's decoded pixels are
 * compared with the card file's.
 * Exit: 0 all verified, EXIT.mismatch, EXIT.missing or EXIT.couldNotCheck (worst wins).
 */
import type { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { action, printJson, printLines, warn } from './output.js';
import { EXIT } from '../errors.js';
import { readSecretKeyFile, type SecretKey } from '../seal/index.js';
import { verifyBatch, type Outcome, type VerifyReport } from '../evidence/verify.js';
import { loadSource, type EvidenceSource } from '../evidence/source.js';
import { AuditLog } from '../audit/index.js';

const EXIT_FOR: Record<Outcome, number> = {
  verified: EXIT.ok,
  mismatch: EXIT.mismatch,
  missing: EXIT.missing,
  unchecked: EXIT.couldNotCheck,
};

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('re-check a batch end to end: every object on every target, decrypted and hashed')
    .argument('<batch>', 'the batch id')
    .requiredOption('--config <file>', 'the station or evidence desk config (kluis.json)')
    .requiredOption('--identity <key>', 'evidence identity (secret key file); repeat for more', collect)
    .option('--card <dir>', 'the card folder, to re-hash the original files')
    .option('--deep', "also decode every stored picture and video in full (slow); with --card, compare each picture's decoded pixels with the card file's")
    .option('--json', 'print one JSON document')
    .action(
      action(async (batch: string, opts: { config: string; identity: string[]; card?: string; deep?: boolean; json?: boolean }) => {
        const source = await loadSource(opts.config);
        const identities: SecretKey[] = [];
        for (const f of opts.identity) identities.push(await readSecretKeyFile(f, 'recipient'));
        const report = await verifyBatch({ source, batchId: batch, identities, ...(opts.card ? { card: path.resolve(opts.card) } : {}), ...(opts.deep ? { deep: true } : {}) });
        await record(source, report);
        if (opts.json) printJson(report);
        else printHuman(report);
        return EXIT_FOR[report.result];
      }),
    );
}

async function record(source: EvidenceSource, r: VerifyReport): Promise<void> {
  const { file: auditFile, name, stationKeyFile } = source.record;
  if (!(await fsp.stat(path.dirname(auditFile)).then(() => true, () => false))) return;
  const key = stationKeyFile ? await readSecretKeyFile(stationKeyFile, 'station').catch(() => undefined) : undefined;
  try {
    const log = await AuditLog.open(auditFile, { station: name, ...(key ? { stationKey: key } : {}) });
    await log.append(r.ok ? 'verified' : 'verify-failed', {
      batchId: r.batchId,
      result: r.result,
      files: r.files.length,
      problems: r.problems.length,
      targets: r.manifests.map((m) => ({ target: m.target, manifest: m.result })),
      custody: r.custody.result,
      ...(source.kind === 'desk' && r.station ? { batchStation: r.station.name } : {}),
    });
    await log.close();
  } catch (err) {
    warn(`could not record the verification in the audit log: ${(err as Error).message}`);
  }
}

function printHuman(r: VerifyReport): void {
  const out = (s: string): void => printLines([s]);
  out(`batch ${r.batchId}: ${r.result.toUpperCase()}`);
  for (const m of r.manifests) out(`  manifest on ${m.target}: ${m.result}${m.message ? ` (${m.message})` : ''}`);
  for (const f of [...r.files, ...r.objects]) {
    const targets = f.targets.map((t) => `${t.target}=${t.result}`).join(' ');
    out(`  ${f.result.padEnd(9)} ${f.path}${targets ? `  [${targets}]` : ` (${f.status}, not stored)`}${f.card ? `  card=${f.card.result}` : ''}`);
  }
  if (r.station) out(`  station: ${r.station.name} (${r.station.key})`);
  printCustody(r, out);
  if (r.audit) out(`  audit log: ${r.audit.result} (${r.audit.entries} entries, ${r.audit.batchEntries} for this batch, ${r.audit.checkpoints} signed checkpoints)`);
  if (r.essence === 'not rechecked') out('  essence hashes: not rechecked (no essence function in this build); ciphertext and plaintext hashes were');
  else {
    // Per file per target the checks are in --json; here the count of each outcome.
    const n: Record<string, number> = {};
    for (const f of [...r.files, ...r.objects]) for (const t of f.targets) for (const c of t.checks) if (c.check.startsWith('essence:')) n[c.result] = (n[c.result] ?? 0) + 1;
    const parts = (['verified', 'mismatch', 'unchecked'] as const).filter((k) => n[k]).map((k) => `${n[k]} ${k === 'unchecked' ? 'not rechecked' : k}`);
    if (parts.length) out(`  essence hashes recomputed from the decrypted files: ${parts.join(', ')}`);
  }
  // --deep: the full decodes (and, with --card, the pixel comparisons), counted the same way.
  for (const [prefix, label] of [['decode', 'decoded in full'], ['decode:card-pixels', 'decoded pixels equal to the card file']] as const) {
    const n: Record<string, number> = {};
    for (const f of [...r.files, ...r.objects]) for (const t of f.targets) for (const c of t.checks) if (c.check === prefix) n[c.result] = (n[c.result] ?? 0) + 1;
    const parts = (['verified', 'mismatch', 'unchecked'] as const).filter((k) => n[k]).map((k) => `${n[k]} ${k === 'unchecked' ? 'not checked' : k}`);
    if (parts.length) out(`  ${label}: ${parts.join(', ')}`);
  }
  for (const p of r.problems) {
    out(`  ${p.result}: ${p.message}${p.code ? ` [${p.code}]` : ''}`);
    if (p.hint) out(`    hint: ${p.hint}`);
  }
  for (const n of r.notes) out(`  note: ${n}`);
}

/** The custody record in a few lines: who, which card, when; per target its result. */
function printCustody(r: VerifyReport, out: (s: string) => void): void {
  const c = r.custody;
  const where = c.targets.map((t) => `${t.target}=${t.result}`).join(' ');
  out(`  custody record: ${c.result}${where ? `  [${where}]` : ''}${c.message ? ` (${c.message})` : ''}`);
  const rec = c.record;
  if (!rec) return;
  const card = [rec.card.label && `label ${rec.card.label}`, rec.card.uuid && `uuid ${rec.card.uuid}`, rec.card.fingerprint && `fingerprint ${rec.card.fingerprint.slice(0, 16)}…`].filter(Boolean).join(', ');
  out(`    operator ${rec.operator ?? '(none)'}, case ${rec.case ?? '(none)'}, card ${card || '(unknown)'}${rec.card.root ? ` at ${rec.card.root}` : ''}`);
  out(`    card seen ${rec.times.cardSeen ?? '?'}, safe to remove ${rec.times.safeToRemove ?? '?'}, last sealed ${rec.times.lastSealed ?? '?'}, recorded ${rec.recordedAt}`);
  out(`    ${rec.lines} audit lines up to seq ${rec.audit.seq}; ${rec.files.length} files, ${rec.deliveries.filter((d) => d.verified).length} verified deliveries`);
}
