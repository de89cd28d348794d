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
 * Promises: every outcome is per file per target, one of verified / mismatch / missing /
 * unchecked, with the reason named. Nothing is read from a local cache: each object is fetched
 * from its target for this run; plaintext exists only as a stream (and, for an essence recheck,
 * as a 0600 temp file in a 0700 folder of the system temp dir, removed afterwards, on SIGINT or
 * SIGTERM too; what an earlier run left when it was killed is swept at the next start, see
 * util/plain-temp.ts). It never writes to a target.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp, createWriteStream } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KluisError } from '../errors.js';
import type { LoadedConfig, TargetConfig } from '../config/index.js';
import {
  openCustodyRecord, openManifestInner, openStream, parsePublicKey, verifyManifest,
  type ManifestFile, type ManifestInner, type ManifestOuter, type PublicKey, type SecretKey,
} from '../seal/index.js';
import type { Target } from '../targets/index.js';
import { crossCheckCustody, summarizeCustody, type CustodySummary } from './custody.js';
import { locateBatch, openSourceTarget, stationSource, targetsOf, type EvidenceSource, type SourceStation } from './source.js';
import { verifyAuditLog, type AuditVerifyResult } from '../pipeline/audit.js';
import { canonicalJson } from '../util/canonical-json.js';
import { makePartDir, sweepOrphans } from '../util/plain-temp.js';
import { cardFsPath } from '../card/index.js';
// The sanitize stage's public surface: the same functions that wrote each essence `after` value.
import { decodeFully, essenceLabel, recomputeEssence, type FullDecode, type RecordedEssence } from '../sanitize/index.js';

export type Outcome = 'verified' | 'mismatch' | 'missing' | 'unchecked';

export interface Check {
  /** e.g. "ciphertext-sha256", "plaintext-sha256", "essence:jpeg-scan-sha256", "card-sha256". */
  check: string;
  result: Outcome;
  message?: string;
}

export interface FileTargetResult {
  target: string;
  result: Outcome;
  checks: Check[];
}

export interface FileResult {
  path: string;
  objectId?: string;
  status: string;
  result: Outcome;
  targets: FileTargetResult[];
  card?: Check;
}

export interface ManifestResult {
  target: string;
  result: Outcome;
  message?: string;
}

export interface VerifyProblem {
  result: Exclude<Outcome, 'verified'>;
  /** A stable code where the problem has one (e.g. E_CUSTODY_ALTERED), with what to do. */
  code?: string;
  hint?: string;
  target?: string;
  path?: string;
  objectId?: string;
  message: string;
}

export interface VerifyReport {
  batchId: string;
  result: Outcome;
  ok: boolean;
  checkedAt: string;
  manifests: ManifestResult[];
  files: FileResult[];
  /** Objects in the manifest not tied to a card file (e.g. the sealed report). */
  objects: FileResult[];
  audit?: { file: string; result: Outcome; entries: number; batchEntries: number; checkpoints: number; problems: AuditVerifyResult['problems'] };
  /** The batch's custody record (its audit lines, signed, stored with it on every target). */
  custody: CustodyCheck;
  /** The station that signed the batch, as the config trusts it. */
  station?: { name: string; key: string };
  essence: 'rechecked' | 'not rechecked';
  problems: VerifyProblem[];
  /** Things that did not change the outcome but a reader should know (e.g. a listing failed). */
  notes: string[];
}

export interface CustodyCheck {
  result: Outcome;
  /** The record's object id in the batch (from the inner manifest). */
  object?: string;
  targets: Array<{ target: string; result: Outcome; code?: string; message?: string; hint?: string }>;
  /** Who, which card, when, per file and per delivery: from the first record that checked out. */
  record?: CustodySummary;
  message?: string;
}

/** Recomputes one essence hash of a plaintext file (the manifest's entry says how); null when its method is not supported. */
export type EssenceFn = (file: string, format: string | undefined, essence: RecordedEssence) => Promise<string | null>;

/** Decodes a file in full (see decodeFully); throws E_DECODE_FAILED / E_DECODE_UNSUPPORTED. */
export type DecodeFn = (file: string) => Promise<FullDecode>;

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

const MANIFEST_CAP = 64 * 1024 * 1024;
const RANK: Record<Outcome, number> = { verified: 0, unchecked: 1, missing: 2, mismatch: 3 };

function worst(list: Outcome[]): Outcome {
  return list.reduce<Outcome>((a, b) => (RANK[b] > RANK[a] ? b : a), 'verified');
}

/** Hashes everything written to it and forwards it to `side` while `side` is open. */
class TeeHasher extends Writable {
  private readonly h = createHash('sha256');
  bytes = 0;
  constructor(private readonly side: PassThrough | null) {
    super({ highWaterMark: 1 << 20 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.h.update(chunk);
    this.bytes += chunk.length;
    const s = this.side;
    if (!s || s.destroyed || s.writableEnded) return cb();
    if (s.write(chunk)) return cb();
    const go = (): void => {
      s.off('drain', go);
      s.off('close', go);
      cb();
    };
    s.on('drain', go);
    s.on('close', go);
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (this.side && !this.side.destroyed) this.side.end();
    cb();
  }
  digest(): string {
    return this.h.digest('hex');
  }
}

async function readCapped(stream: Readable, cap: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    n += b.length;
    if (n > cap) {
      stream.destroy();
      throw new KluisError('E_VERIFY_MISMATCH', `manifest is larger than ${cap} bytes`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}

function errText(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return `${e?.message ?? String(err)}${e?.code ? ` [${e.code}]` : ''}`;
}

function isMissing(err: unknown): boolean {
  return (err as { code?: string })?.code === 'E_TARGET_MISSING';
}

/** Names what differs between a damaged outer manifest and a good one. */
function describeManifestDiff(bad: unknown, good: ManifestOuter): string {
  const outer = (bad as { outer?: Record<string, unknown> })?.outer;
  if (!outer || typeof outer !== 'object') return 'not a manifest document';
  const diffs: string[] = [];
  for (const k of ['format', 'batchId', 'createdAt', 'station', 'inner', 'audit'] as const) {
    if (canonicalJson(outer[k] ?? null) !== canonicalJson(good[k] ?? null)) diffs.push(k);
  }
  const objs = Array.isArray(outer.objects) ? (outer.objects as Array<Record<string, unknown>>) : [];
  const byId = new Map(good.objects.map((o) => [o.id, o]));
  objs.forEach((o, i) => {
    const g = byId.get(String(o.id));
    if (!g) diffs.push(`objects[${i}] (id ${String(o.id)}) is not in the good copy`);
    else
      for (const f of ['size', 'sha256'] as const) {
        if (o[f] !== g[f]) diffs.push(`objects[${i}].${f} of object ${g.id}`);
      }
  });
  if (objs.length !== good.objects.length) diffs.push(`${objs.length} objects instead of ${good.objects.length}`);
  return diffs.length ? `differs from the good copy in: ${diffs.join(', ')}` : 'signature block differs from the good copy';
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
  // The card file's pixels, decoded once per file whatever the number of targets.
  const cardPixels = new Map<string, Promise<FullDecode>>();
  const ctx = args.env ? { env: args.env } : {};
  // Whose batch it is decides which key must have signed it and which targets should hold it.
  const located = await locateBatch(source, batchId, ctx);
  const station: SourceStation | undefined = located.station;
  if (located.problem) problems.push({ result: located.problem.result, code: located.problem.code, hint: located.problem.hint, message: located.problem.message });
  const stationPub: PublicKey | undefined = station ? parsePublicKey(station.key, 'station') : undefined;
  const targetConfigs: TargetConfig[] = station ? (source.kind === 'station' ? source.targets : targetsOf(source, station)) : [];
  const targets = args.targets ?? targetConfigs.map((t) => openSourceTarget(source, t, ctx));
  const manifestKey = `${batchId}/manifest.json`;

  // 1. The signed manifest from each target.
  const manifests: ManifestResult[] = [];
  const raw = new Map<string, { doc: unknown; outer?: ManifestOuter }>();
  let good: ManifestOuter | undefined;
  for (const t of targets) {
    try {
      const text = await readCapped(await t.get(manifestKey), MANIFEST_CAP);
      let doc: unknown;
      try {
        doc = JSON.parse(text.toString('utf8'));
      } catch {
        raw.set(t.name, { doc: null });
        manifests.push({ target: t.name, result: 'mismatch', message: 'manifest.json is not valid JSON' });
        continue;
      }
      try {
        const outer = verifyManifest(doc, stationPub);
        if (outer.batchId !== batchId) throw new KluisError('E_MANIFEST_SHAPE', `manifest is for batch ${outer.batchId}`);
        raw.set(t.name, { doc, outer });
        manifests.push({ target: t.name, result: 'verified' });
        good ??= outer;
      } catch (err) {
        raw.set(t.name, { doc });
        manifests.push({ target: t.name, result: 'mismatch', message: errText(err) });
      }
    } catch (err) {
      manifests.push(isMissing(err) ? { target: t.name, result: 'missing', message: `${manifestKey} is not on the target` } : { target: t.name, result: 'unchecked', message: errText(err) });
    }
  }
  // Name what changed in a damaged copy, and require all good copies to agree.
  for (const m of manifests) {
    const r = raw.get(m.target);
    if (!good || !r) continue;
    if (m.result === 'mismatch' && r.doc) m.message = `${m.message}; ${describeManifestDiff(r.doc, good)}`;
    if (m.result === 'verified' && r.outer && canonicalJson(r.outer) !== canonicalJson(good)) {
      m.result = 'mismatch';
      m.message = `signed by the station but differs from the copy on another target: ${describeManifestDiff(r.doc, good)}`;
    }
  }
  for (const m of manifests) {
    if (m.result !== 'verified') problems.push({ result: m.result, target: m.target, path: manifestKey, message: `manifest on ${m.target}: ${m.message}` });
  }

  // 2. The inner part: names and plaintext hashes.
  let inner: ManifestInner | undefined;
  if (good) {
    try {
      inner = openManifestInner(good, identities);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const result: Outcome = code === 'E_SEAL_NO_RECIPIENT' || code.startsWith('E_KEY') ? 'unchecked' : 'mismatch';
      problems.push({ result, path: manifestKey, message: `cannot open the inner manifest: ${errText(err)}` });
    }
  } else {
    problems.push({ result: manifests.some((m) => m.result === 'mismatch') ? 'mismatch' : manifests.every((m) => m.result === 'missing') ? 'missing' : 'unchecked', message: `no target holds a valid signed manifest for batch ${batchId}` });
  }

  // 3. Every object on every target whose manifest we could read (or the good one).
  const files: FileResult[] = [];
  const objects: FileResult[] = [];
  if (good) {
    const byObject = new Map<string, ManifestFile>();
    for (const f of inner?.files ?? []) if (f.objectId) byObject.set(f.objectId, f);
    // Sealed originals (unsanitized card bytes) live only on targets whose config allows them, and
    // decrypt to the card's own hash: checked as a file whose "sanitized" hash is the card hash.
    const byOriginal = new Map<string, ManifestFile>();
    for (const f of inner?.files ?? []) {
      const id = (f as { originalObjectId?: unknown }).originalObjectId;
      if (typeof id === 'string') byOriginal.set(id, f);
    }
    const originalsAllowed = new Set(targetConfigs.filter((t) => t.originalsAllowed).map((t) => t.name));
    const listed = inner ? inner.files : [];
    const seen = new Set<string>();
    const entries: Array<{ file?: ManifestFile; objectId?: string; original?: boolean }> = [
      ...listed.map((f) => ({ file: f, ...(f.objectId ? { objectId: f.objectId } : {}) })),
      ...listed
        .filter((f) => byOriginal.get(String((f as { originalObjectId?: unknown }).originalObjectId)) === f)
        .map((f) => {
          const { essence: _essence, sanitizedSize: _size, ...rest } = f;
          return {
            file: { ...rest, path: `${f.path} (original)`, ...(f.cardSha256 ? { sanitizedSha256: f.cardSha256 } : {}), sanitizedSize: f.size } as ManifestFile,
            objectId: String((f as { originalObjectId?: unknown }).originalObjectId),
            original: true,
          };
        }),
      ...good.objects.filter((o) => !byObject.has(o.id) && !byOriginal.has(o.id)).map((o) => ({ objectId: o.id })),
    ];
    const reportObject = (inner?.extra as { reportObject?: unknown } | undefined)?.reportObject;
    const custodyObject = (inner?.extra as { custodyObject?: unknown } | undefined)?.custodyObject;
    for (const e of entries) {
      const res: FileResult = {
        path: e.file?.path ?? (e.objectId === reportObject ? `(sealed report ${e.objectId})` : e.objectId === custodyObject ? `(custody record ${e.objectId})` : `(object ${e.objectId})`),
        ...(e.objectId ? { objectId: e.objectId } : {}),
        status: e.file?.status ?? 'stored',
        result: 'verified',
        targets: [],
      };
      if (e.objectId) {
        seen.add(e.objectId);
        const obj = good.objects.find((o) => o.id === e.objectId);
        for (const t of targets) {
          if (e.original && !originalsAllowed.has(t.name)) continue;
          const deep: DeepArgs | null =
            decodeFn && e.file && !e.original && e.file.format
              ? { decode: decodeFn, card: args.card ? () => cardDecode(args.card!, e.file!, decodeFn, cardPixels) : null }
              : null;
          const tr = await checkObject(t, batchId, e.objectId, obj, e.file, identities, inner !== undefined, essenceFn, deep);
          res.targets.push(tr);
        }
      }
      if (args.card && e.file && !e.original) {
        res.card = await checkCard(args.card, e.file);
      }
      res.result = worst([...res.targets.map((t) => t.result), ...(res.card ? [res.card.result] : [])]);
      for (const tr of res.targets) {
        for (const c of tr.checks) {
          if (c.result !== 'verified' && !soft(c)) {
            problems.push({ result: c.result, target: tr.target, path: res.path, ...(res.objectId ? { objectId: res.objectId } : {}), message: `${res.path} on ${tr.target}: ${c.check}: ${c.message ?? c.result}` });
          }
        }
      }
      if (res.card && res.card.result !== 'verified') problems.push({ result: res.card.result, path: res.path, message: `${res.path} on the card: ${res.card.message}` });
      (e.file && !e.original ? files : objects).push(res);
    }
    // Objects on a target that no manifest lists: not evidence of tampering by themselves, but named.
    for (const t of targets) {
      try {
        for await (const o of t.list(`${batchId}/`)) {
          const id = o.key.slice(batchId.length + 1);
          if (id !== 'manifest.json' && !seen.has(id)) {
            problems.push({ result: 'mismatch', target: t.name, objectId: id, message: `object ${o.key} on ${t.name} is not in the signed manifest` });
          }
        }
      } catch (err) {
        // The per-object checks above stand on their own; only the search for extra objects failed.
        notes.push(`could not list ${batchId}/ on ${t.name} to look for objects the manifest does not name: ${errText(err)}`);
      }
    }
  }

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
  if (wantAudit && auditFile && stationPub) {
    try {
      const a = await verifyAuditLog(auditFile, stationPub);
      let batchEntries = 0;
      const { readAuditLog } = await import('../pipeline/audit.js');
      for await (const { entry } of readAuditLog(auditFile)) if (entry?.batchId === batchId) batchEntries++;
      audit = { file: auditFile, result: a.ok ? 'verified' : 'mismatch', entries: a.entries, batchEntries, checkpoints: a.checkpoints, problems: a.problems };
      for (const p of a.problems) problems.push({ result: 'mismatch', path: `audit log line ${p.line}`, message: `audit log line ${p.line}: ${p.code}: ${p.message}` });
    } catch (err) {
      audit = { file: auditFile, result: isMissing(err) || (err as { code?: string }).code === 'E_AUDIT_MISSING' ? 'missing' : 'unchecked', entries: 0, batchEntries: 0, checkpoints: 0, problems: [] };
      problems.push({ result: audit.result as Exclude<Outcome, 'verified'>, message: `audit log: ${errText(err)}` });
    }
  }

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

/**
 * A check that could not be made but does not make the object "unchecked": an essence hash that
 * could not be recomputed, a full decode of a kind ffmpeg cannot decode. It is shown on its check.
 */
function soft(c: Check): boolean {
  return c.result === 'unchecked' && (c.check.startsWith('essence:') || c.check === 'decode' || c.check.startsWith('decode:'));
}

interface DeepArgs {
  decode: DecodeFn;
  /** The card file's full decode, when a card folder was given. */
  card: (() => Promise<FullDecode>) | null;
}

/** The card file of a manifest entry, decoded in full (once per file). */
function cardDecode(cardRoot: string, file: ManifestFile, decode: DecodeFn, memo: Map<string, Promise<FullDecode>>): Promise<FullDecode> {
  let p = memo.get(file.path);
  if (!p) {
    const rel = path.posix.normalize(file.path);
    const abs = rel.startsWith('../') || path.posix.isAbsolute(rel) ? null : cardFsPath(cardRoot, rel);
    p =
      abs === null
        ? Promise.reject(new KluisError('E_VERIFY_PATH', `manifest path ${file.path} leaves the card`))
        : typeof abs !== 'string'
          ? // A name that is not UTF-8 cannot be handed to the decoder (a command-line argument is text).
            Promise.reject(new KluisError('E_VERIFY_CARD_NAME', `${file.path}: the card file's name is not UTF-8, so it cannot be given to the decoder`))
          : decode(abs);
    p.catch(() => undefined);
    memo.set(file.path, p);
  }
  return p;
}

async function deepChecks(tmpFile: string, deep: DeepArgs): Promise<Check[]> {
  const checks: Check[] = [];
  let mine: FullDecode;
  try {
    mine = await deep.decode(tmpFile);
    checks.push({ check: 'decode', result: 'verified', message: mine.how });
  } catch (err) {
    const code = (err as { code?: string }).code;
    checks.push({ check: 'decode', result: code === 'E_DECODE_FAILED' ? 'mismatch' : 'unchecked', message: errText(err) });
    return checks;
  }
  if (!deep.card || mine.pixelsSha256 === undefined) return checks;
  try {
    const card = await deep.card();
    if (card.pixelsSha256 === undefined) checks.push({ check: 'decode:card-pixels', result: 'unchecked', message: 'the card file gave no picture to compare' });
    else if (card.pixelsSha256 === mine.pixelsSha256) checks.push({ check: 'decode:card-pixels', result: 'verified' });
    else checks.push({ check: 'decode:card-pixels', result: 'mismatch', message: `decoded pixels ${mine.pixelsSha256}, the card file's ${card.pixelsSha256}` });
  } catch (err) {
    checks.push({ check: 'decode:card-pixels', result: 'unchecked', message: `the card file could not be decoded: ${errText(err)}` });
  }
  return checks;
}

const CUSTODY_CAP = 256 * 1024 * 1024;

/**
 * The custody record on every target: the very object the signed manifest lists (SHA-256), a
 * seal that opens, the station's signature, lines that hash to themselves, and a story that
 * agrees with the manifest. Per target a result, with a code and a hint for each problem.
 */
async function checkCustody(a: {
  batchId: string;
  good: ManifestOuter | undefined;
  inner: ManifestInner | undefined;
  targets: Target[];
  identities: SecretKey[];
  stationPub?: PublicKey;
}): Promise<CustodyCheck & { code?: string; hint?: string }> {
  const { batchId, good, inner } = a;
  if (!good || !a.stationPub) return { result: 'unchecked', targets: [], message: 'no valid signed manifest, so no custody record to check' };
  if (!inner) return { result: 'unchecked', targets: [], message: 'the inner manifest did not open with this identity, so the custody record was not read' };
  const id = (inner.extra as { custodyObject?: unknown } | undefined)?.custodyObject;
  if (typeof id !== 'string') {
    if (good.audit) {
      return {
        result: 'missing', targets: [], code: 'E_CUSTODY_MISSING',
        message: 'the signed manifest carries an audit head but names no custody record',
        hint: 'the station that signed it should have stored one; check that station\'s audit log',
      };
    }
    return { result: 'unchecked', targets: [], message: "this batch was closed before stations stored custody records; its custody is in its station's audit log" };
  }
  const obj = good.objects.find((o) => o.id === id);
  if (!obj) {
    return { result: 'mismatch', object: id, targets: [], code: 'E_CUSTODY_MISMATCH', message: `the inner manifest names custody record ${id}, which the signed outer list does not hold`, hint: 'do not trust this manifest; compare with the copy on another target' };
  }
  const results: CustodyCheck['targets'] = [];
  let record: CustodySummary | undefined;
  for (const t of a.targets) {
    const key = `${batchId}/${id}`;
    let bytes: Buffer;
    try {
      bytes = await readCapped(await t.get(key), CUSTODY_CAP);
    } catch (err) {
      results.push(
        isMissing(err)
          ? { target: t.name, result: 'missing', code: 'E_CUSTODY_MISSING', message: `${key} is not on ${t.name}`, hint: 'the record was removed from this target; the copy on another target is the same record (the manifest names its hash)' }
          : { target: t.name, result: 'unchecked', message: errText(err) },
      );
      continue;
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== obj.sha256 || bytes.length !== obj.size) {
      results.push({
        target: t.name, result: 'mismatch', code: 'E_CUSTODY_ALTERED',
        message: `the stored record is not the one the signed manifest names (SHA-256 ${sha}, ${bytes.length} bytes; signed: ${obj.sha256}, ${obj.size} bytes)`,
        hint: 'the custody record was changed or replaced on this target after the station stored it: keep it for investigation and read the record from another target',
      });
      continue;
    }
    try {
      const signed = openCustodyRecord(bytes, a.identities, { batchId, station: a.stationPub });
      const disagree = crossCheckCustody(signed.record, good, inner);
      if (disagree.length > 0) {
        results.push({ target: t.name, result: 'mismatch', code: 'E_CUSTODY_MISMATCH', message: `the record and the signed manifest disagree: ${disagree.slice(0, 3).join('; ')}${disagree.length > 3 ? ` (and ${disagree.length - 3} more)` : ''}`, hint: 'both are signed by the station: keep them and the station log for investigation' });
        continue;
      }
      record ??= summarizeCustody(signed.record);
      results.push({ target: t.name, result: 'verified' });
    } catch (err) {
      const e = err as { code?: string; hint?: string };
      const code = e.code ?? 'E_CUSTODY_SHAPE';
      results.push({ target: t.name, result: code === 'E_SEAL_NO_RECIPIENT' || code.startsWith('E_KEY') ? 'unchecked' : 'mismatch', code, message: errText(err), ...(e.hint ? { hint: e.hint } : {}) });
    }
  }
  return { result: worst(results.map((r) => r.result)), object: id, targets: results, ...(record ? { record } : {}) };
}

async function checkObject(
  t: Target,
  batchId: string,
  objectId: string,
  obj: { id: string; size: number; sha256: string } | undefined,
  file: ManifestFile | undefined,
  identities: SecretKey[],
  canOpen: boolean,
  essenceFn: EssenceFn | null,
  deep: DeepArgs | null = null,
): Promise<FileTargetResult> {
  const key = `${batchId}/${objectId}`;
  const checks: Check[] = [];
  // An essence hash that could not be recomputed is shown on its check (and in `essence`), but
  // does not make an object whose ciphertext and plaintext hashes verified "unchecked".
  const done = (): FileTargetResult => ({
    target: t.name,
    result: worst(checks.filter((c) => !soft(c)).map((c) => c.result)),
    checks,
  });
  if (!obj) {
    checks.push({ check: 'manifest', result: 'mismatch', message: `object ${objectId} is named in the inner manifest but not in the signed outer list` });
    return done();
  }
  let body: Readable;
  try {
    body = await t.get(key);
  } catch (err) {
    checks.push(isMissing(err) ? { check: 'object', result: 'missing', message: `object ${key} is not on ${t.name}` } : { check: 'object', result: 'unchecked', message: errText(err) });
    return done();
  }
  // Every object is decrypted when the identity opened the inner manifest: its chunks are
  // authenticated, so a clean decryption is itself a check; the plaintext hash is compared where
  // the manifest holds one (footage), not for e.g. the sealed report.
  const wantPlain = canOpen;
  // One read of the object: every byte is hashed as ciphertext and, on the side, fed to the
  // opener. When the opener stops at a damaged chunk the read goes on, so the ciphertext hash is
  // still complete and the damage is named by both checks.
  const side = wantPlain ? new PassThrough({ highWaterMark: 1 << 20 }) : null;
  const cipher = new TeeHasher(side);
  let plainSha: string | undefined;
  let plainBytes = 0;
  let openErr: unknown;
  let tmpDir: Awaited<ReturnType<typeof makePartDir>> | undefined;
  let tmpFile: string | undefined;
  try {
    if (side && file && ((essenceFn && file.essence?.length) || deep)) {
      tmpDir = await makePartDir(os.tmpdir());
      tmpFile = path.join(tmpDir.dir, `plain${path.extname(file.path).toLowerCase().replace(/[^.a-z0-9]/g, '')}`);
    }
    const source = pipeline(body, cipher).catch((err: unknown) => {
      side?.destroy(err as Error);
      throw err;
    });
    const consume = side
      ? (async () => {
          const plainHash = createHash('sha256');
          const out = tmpFile ? createWriteStream(tmpFile, { mode: 0o600 }) : null;
          try {
            for await (const c of openStream(side, identities)) {
              const b = c as Buffer;
              plainHash.update(b);
              plainBytes += b.length;
              if (out && !out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
            }
            plainSha = plainHash.digest('hex');
          } catch (err) {
            openErr = err;
            side.destroy();
          } finally {
            if (out) await new Promise<void>((res) => out.end(() => res()));
          }
        })()
      : Promise.resolve();
    await Promise.all([source, consume]);
  } catch (err) {
    checks.push({ check: 'object', result: 'unchecked', message: `reading ${key} failed: ${errText(err)}` });
    await cleanup(tmpDir);
    return done();
  }
  // Ciphertext against the signed manifest.
  {
    const sha = cipher.digest();
    if (cipher.bytes !== obj.size) checks.push({ check: 'ciphertext-size', result: 'mismatch', message: `${cipher.bytes} bytes, manifest says ${obj.size}` });
    else checks.push({ check: 'ciphertext-size', result: 'verified' });
    checks.push(sha === obj.sha256 ? { check: 'ciphertext-sha256', result: 'verified' } : { check: 'ciphertext-sha256', result: 'mismatch', message: `SHA-256 ${sha}, signed manifest says ${obj.sha256}` });
  }
  if (!wantPlain) {
    checks.push({ check: 'plaintext-sha256', result: 'unchecked', message: 'inner manifest could not be opened, so the object was not decrypted' });
  } else if (openErr !== undefined) {
    const code = (openErr as { code?: string }).code ?? '';
    checks.push({ check: 'decrypt', result: code === 'E_SEAL_NO_RECIPIENT' ? 'unchecked' : 'mismatch', message: errText(openErr) });
  } else if (file?.sanitizedSha256 === undefined) {
    checks.push({ check: 'decrypt', result: 'verified', message: 'every chunk authenticated; the manifest holds no plaintext hash for this object' });
  } else {
    checks.push(plainSha === file!.sanitizedSha256 ? { check: 'plaintext-sha256', result: 'verified' } : { check: 'plaintext-sha256', result: 'mismatch', message: `decrypted SHA-256 ${plainSha}, manifest says ${file!.sanitizedSha256}` });
    if (file!.sanitizedSize !== undefined && plainBytes !== file!.sanitizedSize) {
      checks.push({ check: 'plaintext-size', result: 'mismatch', message: `${plainBytes} bytes, manifest says ${file!.sanitizedSize}` });
    }
  }
  // Essence: recomputed only with a real essence function; otherwise said so.
  for (const e of file?.essence ?? []) {
    const name = `essence:${essenceLabel(e)}`;
    if (!essenceFn || !tmpFile || openErr !== undefined || plainSha !== file?.sanitizedSha256) {
      checks.push({ check: name, result: 'unchecked', message: essenceFn ? 'not rechecked (the file did not decrypt to the manifest hash)' : 'not rechecked: no essence function is available to this build' });
      continue;
    }
    try {
      const got = await essenceFn(tmpFile, file?.format, e);
      if (got === null) checks.push({ check: name, result: 'unchecked', message: `method ${essenceLabel(e)} is not supported for a recheck` });
      else checks.push(got === e.after ? { check: name, result: 'verified' } : { check: name, result: 'mismatch', message: `recomputed ${got}, manifest says ${e.after}` });
    } catch (err) {
      checks.push({ check: name, result: 'unchecked', message: errText(err) });
    }
  }
  // Deep: a full decode of the decrypted file, only when it decrypted to the manifest hash.
  if (deep) {
    if (!tmpFile || openErr !== undefined || plainSha !== file?.sanitizedSha256) {
      checks.push({ check: 'decode', result: 'unchecked', message: 'not decoded (the file did not decrypt to the manifest hash)' });
    } else {
      checks.push(...(await deepChecks(tmpFile, deep)));
    }
  }
  await cleanup(tmpDir);
  return done();
}

async function cleanup(dir: { remove(): Promise<void> } | undefined): Promise<void> {
  await dir?.remove();
}

async function checkCard(cardRoot: string, file: ManifestFile): Promise<Check> {
  if (!file.cardSha256) return { check: 'card-sha256', result: 'unchecked', message: 'the manifest holds no card hash for this file' };
  const rel = path.posix.normalize(file.path);
  if (rel.startsWith('../') || path.posix.isAbsolute(rel)) return { check: 'card-sha256', result: 'mismatch', message: `manifest path ${file.path} leaves the card` };
  const abs = cardFsPath(cardRoot, rel);
  const st = await fsp.lstat(abs).catch(() => null);
  if (!st) return { check: 'card-sha256', result: 'missing', message: `${file.path} is not on the card` };
  if (!st.isFile()) return { check: 'card-sha256', result: 'mismatch', message: `${file.path} on the card is not a regular file` };
  const h = createHash('sha256');
  try {
    for await (const c of createReadStream(abs, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  } catch (err) {
    return { check: 'card-sha256', result: 'unchecked', message: `cannot read ${file.path} from the card: ${errText(err)}` };
  }
  const sha = h.digest('hex');
  return sha === file.cardSha256
    ? { check: 'card-sha256', result: 'verified' }
    : { check: 'card-sha256', result: 'mismatch', message: `card file SHA-256 ${sha}, acquired as ${file.cardSha256}` };
}
