/**
 * End-to-end re-check of one batch, from the storage targets themselves.
 *
 * For every configured target: fetch `<batchId>/manifest.json`, check its shape and its station
 * signature against the config's stationKey, open the inner part with the given identity, then
 * fetch every sealed object (streamed), check size and SHA-256 of the ciphertext against the
 * signed manifest, decrypt it and check SHA-256 of the plaintext against the inner part's
 * sanitizedSha256; recompute the essence hash when an essence function is available (else say
 * "not rechecked"); with a card folder, re-hash each card file against cardSha256. With `deep`,
 * every decrypted footage file is also decoded in full (check `decode`), and with a card folder a
 * still image's decoded pixels are compared with the card file's (check `decode:card-pixels`).
 * The station's audit log, when present next to the config, is checked as well.
 *
 * The jobs live in verify/: the manifests (manifest.ts), every file and object (files.ts, one
 * object on one target in object.ts, the card folder in card.ts, the full decode in deep.ts), the
 * custody record (custody.ts), the station's audit log (audit.ts), and the report's shape and
 * how outcomes combine (result.ts). This module ties them together and is the public surface.
 *
 * Promises: every outcome is per file per target, one of verified / mismatch / missing /
 * unchecked, with the reason named. Nothing is read from a local cache: each object is fetched
 * from its target for this run; plaintext exists only as a stream (and, for an essence recheck,
 * as a 0600 temp file in a 0700 folder of the system temp dir, removed afterwards, on SIGINT or
 * SIGTERM too; what an earlier run left when it was killed is swept at the next start, see
 * util/plain-temp.ts). It never writes to a target.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import { KluisError } from '../errors.js';
import type { LoadedConfig, TargetConfig } from '../config/index.js';
import { parsePublicKey, type PublicKey, type SecretKey } from '../seal/index.js';
import type { Target } from '../targets/index.js';
import { locateBatch, openSourceTarget, stationSource, targetsOf, type EvidenceSource, type SourceStation } from './source.js';
import { sweepOrphans } from '../util/plain-temp.js';
// The sanitize stage's public surface: the same functions that wrote each essence `after` value.
import { decodeFully, recomputeEssence } from '../sanitize/index.js';
import { checkAudit } from './verify/audit.js';
import { checkCustody } from './verify/custody.js';
import { checkFiles } from './verify/files.js';
import { openInner, readManifests } from './verify/manifest.js';
import { worst, type DecodeFn, type EssenceFn, type FileResult, type VerifyProblem, type VerifyReport } from './verify/result.js';

export type {
  Outcome, Check, FileTargetResult, FileResult, ManifestResult, VerifyProblem, VerifyReport, CustodyCheck, EssenceFn, DecodeFn,
} from './verify/result.js';

export interface VerifyArgs {
  /** A station's config; or give `source` (a station's or an evidence desk's). */
  config?: LoadedConfig;
  source?: EvidenceSource;
  batchId: string;
  identities: SecretKey[];
  /** The card folder, to re-hash the original files against the acquisition hashes. */
  card?: string;
  /** Essence recompute; default: the sanitize stage's `recomputeEssence`; null: essence is not rechecked. */
  essence?: EssenceFn | null;
  /** Also decode every decrypted footage file in full (`kluis verify --deep`). Default false. */
  deep?: boolean;
  /** The full decode used when `deep`; default: the sanitize stage's `decodeFully`. */
  decode?: DecodeFn;
  /** Targets to open instead of the config's (tests, station configs only); keyed by name. */
  targets?: Target[];
  /** Environment for target credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Check the station audit log too (default: when the config is a station's and the file exists). */
  audit?: boolean;
}

/** Re-checks a batch on every configured target. Never throws for a per-file problem. */
export async function verifyBatch(args: VerifyArgs): Promise<VerifyReport> {
  const { batchId, identities } = args;
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(batchId)) {
    throw new KluisError('E_USAGE', `'${batchId}' is not a batch id`, { hint: 'use the batch id printed by `kluis ingest` or `kluis status`' });
  }
  const source = args.source ?? (args.config ? stationSource(args.config) : undefined);
  if (!source) throw new KluisError('E_INTERNAL', 'verifyBatch needs a config or a source');
  await sweepOrphans(os.tmpdir());
  const problems: VerifyProblem[] = [];
  const notes: string[] = [];
  const essenceFn: EssenceFn | null = args.essence === undefined ? recomputeEssence : args.essence;
  const decodeFn: DecodeFn | null = args.deep ? (args.decode ?? decodeFully) : null;
  const ctx = args.env ? { env: args.env } : {};
  // Whose batch it is decides which key must have signed it and which targets should hold it.
  const located = await locateBatch(source, batchId, ctx);
  const station: SourceStation | undefined = located.station;
  if (located.problem) problems.push({ result: located.problem.result, code: located.problem.code, hint: located.problem.hint, message: located.problem.message });
  const stationPub: PublicKey | undefined = station ? parsePublicKey(station.key, 'station') : undefined;
  const targetConfigs: TargetConfig[] = station ? (source.kind === 'station' ? source.targets : targetsOf(source, station)) : [];
  const targets = args.targets ?? targetConfigs.map((t) => openSourceTarget(source, t, ctx));

  // 1. The signed manifest from each target; 2. its inner part: names and plaintext hashes.
  const { manifests, good } = await readManifests(targets, batchId, stationPub, problems);
  const inner = openInner(good, identities, batchId, manifests, problems);

  // 3. Every object on every target whose manifest we could read (or the good one).
  const { files, objects }: { files: FileResult[]; objects: FileResult[] } = good
    ? await checkFiles({ batchId, good, inner, targets, targetConfigs, identities, essenceFn, decodeFn, card: args.card, problems, notes })
    : { files: [], objects: [] };

  // 4. The custody record: the batch's audit lines, signed by the station, stored with it.
  const custody = await checkCustody({ batchId, good, inner, targets, identities, ...(stationPub ? { stationPub } : {}) });
  for (const t of custody.targets) {
    if (t.result === 'verified') continue;
    problems.push({ result: t.result, target: t.target, path: `${batchId}/${custody.object ?? 'custody'}`, ...(t.code ? { code: t.code } : {}), ...(t.hint ? { hint: t.hint } : {}), message: `custody record on ${t.target}: ${t.message ?? t.result}` });
  }
  if (custody.targets.length === 0 && custody.result !== 'verified' && custody.code) {
    problems.push({ result: custody.result, code: custody.code, ...(custody.hint ? { hint: custody.hint } : {}), message: `custody record: ${custody.message ?? custody.result}` });
  } else if (custody.targets.length === 0 && custody.message && good && inner) {
    notes.push(`custody record: ${custody.message}`);
  }

  // 5. The station audit log (chain of custody), when this is a station with one.
  let audit: VerifyReport['audit'];
  const auditFile = source.stationAuditFile;
  const wantAudit = auditFile !== undefined && stationPub !== undefined && (args.audit ?? (await fsp.stat(auditFile).then(() => true, () => false)));
  if (wantAudit && auditFile && stationPub) audit = await checkAudit(auditFile, stationPub, batchId, problems);

  if (!args.targets) await Promise.all(targets.map((t) => t.close().catch(() => undefined)));
  const result = worst(problems.map((p) => p.result));
  return {
    batchId,
    result,
    ok: result === 'verified',
    checkedAt: new Date().toISOString(),
    manifests,
    files,
    objects,
    ...(audit ? { audit } : {}),
    custody: { result: custody.result, ...(custody.object ? { object: custody.object } : {}), targets: custody.targets, ...(custody.record ? { record: custody.record } : {}), ...(custody.message ? { message: custody.message } : {}) },
    ...(station ? { station: { name: station.name, key: station.key } } : {}),
    essence: essenceFn ? 'rechecked' : 'not rechecked',
    problems,
    notes,
  };
}
