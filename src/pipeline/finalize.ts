/**
 * Closing a batch: once every file of the card has reached a final state, the batch gets its
 * sealed report, its sealed custody record (pipeline/custody.ts) and its signed manifest, all
 * queued for every target like the footage. And the
 * one place that decides what a batch's and a file's status is: "secured" only when every
 * required target has verified the object by reading it back.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { createManifest, formatPublicKey, sealBytes, type ManifestInner } from '../seal/index.js';
import { buildReport, type ReportData } from '../evidence/report.js';
import { crashPoint } from './crash.js';
import { newId, ensureSpool } from './spool.js';
import type { DeliveryRow, FileRow } from './journal.js';
import type { Station } from './station.js';
import type { EventSink } from './events.js';
import { VERSION } from '../version.js';
import { writeFileAtomic } from '../util/fsx.js';
import { CUSTODY_ID, sealCustody } from './custody.js';

/**
 * 'held': the file could not be sanitized; its sealed original is kept (on the targets that allow
 * originals, `original`, or on the station, `heldAt`), so nothing is lost, but the batch is partial.
 */
export type FileStatus = 'secured' | 'held' | 'withheld' | 'rejected' | 'failed' | 'queued';

export interface FileOutcome {
  path: string;
  class: 'footage' | 'sidecar' | 'other';
  status: FileStatus;
  sha256?: string;
  size: number;
  format?: string;
  object?: string;
  /** The sealed unsanitized original, on targets that allow originals. */
  original?: string;
  /** Where the sealed original is held on this station (status 'held', no originals target). */
  heldAt?: string;
  sanitizedSha256?: string;
  removed?: Array<{ where: string; what: string; bytes: number }>;
  targets?: Record<string, string>;
  error?: { code: string; message: string; hint?: string };
}

export interface TargetOutcome {
  name: string;
  type: string;
  required: boolean;
  status: 'verified' | 'queued' | 'refused' | 'failed' | 'idle';
  objects: number;
  verified: number;
  error?: { code: string; message: string };
}

export interface BatchOutcome {
  batchId: string;
  status: 'secured' | 'partial' | 'failed';
  card: { root: string; fingerprint: string; label?: string; uuid?: string };
  safeToRemove: boolean;
  alreadySecured?: boolean;
  manifest: boolean;
  files: FileOutcome[];
  targets: TargetOutcome[];
  refusals: Array<{ target: string; host?: string; address?: string; code: string; reason: string }>;
}

export const MANIFEST_KEY = 'manifest.json';

export function requiredTargets(station: Station): string[] {
  const req = [...station.targetConfigs.values()].filter((t) => t.required).map((t) => t.name);
  return req.length > 0 ? req : [...station.targetConfigs.keys()];
}

function objectStatus(rows: DeliveryRow[], required: string[]): { status: FileStatus; error?: { code: string; message: string } } {
  const req = rows.filter((d) => required.includes(d.target));
  if (req.length < required.length) return { status: 'queued' };
  if (req.every((d) => d.state === 'verified')) return { status: 'secured' };
  const bad = req.find((d) => d.state === 'refused' || d.state === 'failed');
  if (bad) return { status: 'failed', error: { code: bad.last_error_code ?? 'E_TARGET_IO', message: `${bad.target}: ${bad.last_error ?? bad.state}` } };
  const open = req.find((d) => d.last_error_code);
  return { status: 'queued', ...(open ? { error: { code: open.last_error_code!, message: `${open.target}: ${open.last_error ?? 'not yet delivered'}` } } : {}) };
}

function fileOutcome(f: FileRow, deliveries: DeliveryRow[], required: string[], batchId: string): FileOutcome {
  const base: FileOutcome = {
    path: f.path,
    class: f.class,
    status: 'failed',
    size: f.size,
    ...(f.card_sha256 ? { sha256: f.card_sha256 } : {}),
    ...(f.format ? { format: f.format } : {}),
  };
  const err = f.error_code ? { code: f.error_code, message: f.error_message ?? '', ...(f.error_hint ? { hint: f.error_hint } : {}) } : undefined;
  switch (f.state) {
    case 'rejected':
      return { ...base, status: 'rejected', ...(err ? { error: err } : {}) };
    case 'withheld':
      return { ...base, status: 'withheld', ...(err ? { error: err } : {}) };
    case 'failed':
      return { ...base, status: 'failed', ...(err ? { error: err } : {}) };
    case 'seen':
      return { ...base, status: 'failed', error: { code: 'E_CARD_REMOVED', message: 'not read yet: the card was removed', hint: 'insert the card again; kluis continues where it stopped' } };
    case 'acquired':
    case 'sanitized':
      return { ...base, status: 'queued' };
    case 'held': {
      const orig = originalKey(f, deliveries, batchId);
      const rows = orig ? deliveries.filter((d) => d.object_key === orig) : [];
      return {
        ...base,
        status: 'held',
        ...(orig ? { original: orig, targets: Object.fromEntries(rows.map((d) => [d.target, d.state])) } : {}),
        ...(f.held_path ? { heldAt: f.held_path } : {}),
        ...(err ? { error: err } : {}),
      };
    }
    case 'sealed': {
      const key = `${batchId}/${f.object_id}`;
      const rows = deliveries.filter((d) => d.object_key === key);
      const st = objectStatus(rows, required);
      const san = f.sanitize_json ? (JSON.parse(f.sanitize_json) as { sha256: string; removed: FileOutcome['removed'] }) : undefined;
      const orig = originalKey(f, deliveries, batchId);
      return {
        ...base,
        status: st.status,
        object: key,
        ...(orig ? { original: orig } : {}),
        ...(san ? { sanitizedSha256: san.sha256, removed: san.removed } : {}),
        targets: Object.fromEntries(rows.map((d) => [d.target, d.state])),
        ...(st.error ? { error: st.error } : {}),
      };
    }
    default:
      return base;
  }
}

/**
 * The object key of a file's sealed original when it was queued for targets (those that allow
 * originals). Every stored file has a sealed original in the spool since issue 15; one that went
 * to no target is the station's own (the card's safety net, or held), not a stored object.
 */
function originalKey(f: FileRow, deliveries: DeliveryRow[], batchId: string): string | undefined {
  if (!f.orig_object_id) return undefined;
  const key = `${batchId}/${f.orig_object_id}`;
  return deliveries.some((d) => d.object_key === key) ? key : undefined;
}

/** Computes where a batch stands; records nothing (recordBatchStatus records a changed status). */
export function batchOutcome(
  station: Station,
  batchId: string,
  opts: { /** The report cannot wait for its own delivery: judge the footage only. */ footageOnly?: boolean } = {},
): BatchOutcome {
  const { journal } = station;
  const b = journal.batch(batchId)!;
  const files = journal.files(batchId);
  const deliveries = journal.deliveries(batchId);
  const required = requiredTargets(station);
  const outcomes = files.map((f) => fileOutcome(f, deliveries, required, batchId));
  const footage = outcomes.filter((f) => f.class === 'footage');
  const manifestKey = `${batchId}/${MANIFEST_KEY}`;
  // The custody record counts once it is queued (batches closed before custody records have none).
  const custodyKey = `${batchId}/${CUSTODY_ID}`;
  const batchObjects = [manifestKey, ...(b.report_object ? [`${batchId}/${b.report_object}`] : []), ...(deliveries.some((d) => d.object_key === custodyKey) ? [custodyKey] : [])];
  const batchObjectsSecured = opts.footageOnly || (b.manifest_written === 1 && batchObjects.every((k) => objectStatus(deliveries.filter((d) => d.object_key === k), required).status === 'secured'));
  // Sealed originals must be verified on every required target that was allowed to receive them.
  const originalKeys = new Set(files.map((f) => originalKey(f, deliveries, batchId)).filter((k): k is string => k !== undefined));
  const originalsSecured = deliveries
    .filter((d) => originalKeys.has(d.object_key) && required.includes(d.target))
    .every((d) => d.state === 'verified');
  const allFootageSecured = footage.every((f) => f.status === 'secured') && originalsSecured;
  const anyQueued = outcomes.some((f) => f.status === 'queued') || files.some((f) => f.state === 'seen') || !batchObjectsSecured;
  let status: BatchOutcome['status'];
  // Secured means the whole card is accounted for: any file that was rejected or failed (bad
  // input, unreadable, not provably clean) keeps the batch partial, whatever its class.
  // A held file (not sanitized, its sealed original kept) is not lost, but not secured either.
  const problems = outcomes.some((f) => f.status === 'rejected' || f.status === 'failed' || f.status === 'held');
  if (allFootageSecured && batchObjectsSecured && !problems && !files.some((f) => f.state === 'seen')) status = 'secured';
  else if (footage.length > 0 && !footage.some((f) => f.status === 'secured' || f.status === 'held') && !anyQueued) status = 'failed';
  else status = 'partial';

  const targets: TargetOutcome[] = [...station.targetConfigs.values()].map((tc) => {
    const rows = deliveries.filter((d) => d.target === tc.name);
    const verified = rows.filter((d) => d.state === 'verified').length;
    const bad = rows.find((d) => d.state === 'refused') ?? rows.find((d) => d.state === 'failed') ?? rows.find((d) => d.last_error_code && d.state !== 'verified');
    const tStatus: TargetOutcome['status'] =
      rows.length === 0 ? 'idle' : verified === rows.length ? 'verified' : rows.some((d) => d.state === 'refused') ? 'refused' : rows.some((d) => d.state === 'failed') ? 'failed' : 'queued';
    return {
      name: tc.name,
      type: tc.type,
      required: required.includes(tc.name),
      status: tStatus,
      objects: rows.length,
      verified,
      ...(bad && bad.last_error_code ? { error: { code: bad.last_error_code, message: bad.last_error ?? '' } } : {}),
    };
  });

  return {
    batchId,
    status,
    card: { root: b.card_root, fingerprint: b.card_fingerprint, ...(b.card_label ? { label: b.card_label } : {}), ...(b.card_uuid ? { uuid: b.card_uuid } : {}) },
    safeToRemove: b.safe_to_remove_at !== null,
    manifest: b.manifest_written === 1,
    files: outcomes,
    targets,
    refusals: station.refusals.map((r) => ({ target: r.target, code: r.code, reason: r.reason, ...(r.host ? { host: r.host } : {}), ...(r.address ? { address: r.address } : {}) })),
  };
}

/**
 * Where a batch stands, with a changed status recorded: the audit line first (awaited), then the
 * journal, then the event. A failed audit append reaches the caller and leaves the journal as it
 * was, so the next run records both; a kill in between repeats a true audit line at worst. (The
 * journal used to go first with the audit line not awaited: a failed append was an unhandled
 * rejection, and the batch-secured line was then missing for good.)
 */
export async function recordBatchStatus(station: Station, batchId: string, emit?: EventSink): Promise<BatchOutcome> {
  const outcome = batchOutcome(station, batchId);
  const b = station.journal.batch(batchId)!;
  const { status } = outcome;
  const journalStatus = status === 'secured' ? 'secured' : status === 'failed' ? 'failed' : b.safe_to_remove_at ? 'delivering' : 'acquiring';
  if (journalStatus !== b.status) {
    await station.audit.append(status === 'secured' ? 'batch-secured' : 'batch-partial', {
      batchId, status, files: outcome.files.length, secured: outcome.files.filter((f) => f.status === 'secured').length,
    });
    station.journal.setBatch(batchId, { status: journalStatus, ...(status === 'secured' ? { secured_at: new Date().toISOString() } : {}) });
    emit?.({ type: 'batch-status', batchId, status });
  }
  return outcome;
}

function inner(station: Station, batchId: string): ManifestInner {
  const b = station.journal.batch(batchId)!;
  const files = station.journal.files(batchId);
  const deliveries = station.journal.deliveries(batchId);
  return {
    batchId,
    station: { name: station.config.station, key: station.config.stationKey },
    createdAt: b.created_at,
    ...(b.operator ? { operator: b.operator } : {}),
    ...(b.case_ref ? { case: b.case_ref } : {}),
    card: {
      fingerprint: b.card_fingerprint,
      root: b.card_root,
      ...(b.card_label ? { label: b.card_label } : {}),
      ...(b.card_uuid ? { uuid: b.card_uuid } : {}),
    },
    tool: { name: 'kluis', version: VERSION },
    files: files.map((f) => {
      const san = f.sanitize_json ? (JSON.parse(f.sanitize_json) as Record<string, unknown>) : undefined;
      return {
        path: f.path,
        class: f.class,
        status: f.state,
        ...(f.object_id ? { objectId: f.object_id } : {}),
        ...(originalKey(f, deliveries, batchId) ? { originalObjectId: f.orig_object_id! } : {}),
        ...(f.card_sha256 ? { cardSha256: f.card_sha256 } : {}),
        ...(f.card_xxh128 ? { cardXxh128: f.card_xxh128 } : {}),
        size: f.size,
        mtime: new Date(f.mtime_ms).toISOString(),
        ...(f.format ? { format: f.format } : {}),
        ...(san
          ? {
              sanitizedSha256: san.sha256 as string,
              sanitizedSize: san.size as number,
              essence: san.essence as Array<{ method: string; before: string; after: string }>,
              removed: san.removed as Array<{ where: string; what: string; bytes: number }>,
              kept: san.kept as string[],
              checks: san.checks,
            }
          : {}),
        ...(f.error_code ? { error: { code: f.error_code, message: f.error_message ?? '' } } : {}),
      };
    }),
  };
}

/** Report data for the batch as it stands now (delivery and verification states included). */
export function reportData(station: Station, batchId: string, thumbs: Map<string, Buffer>): ReportData {
  const outcome = batchOutcome(station, batchId, { footageOnly: true });
  const inn = inner(station, batchId);
  const b = station.journal.batch(batchId)!;
  const deliveries = station.journal.deliveries(batchId);
  return {
    batchId,
    station: `${station.config.station} (${station.config.stationKey})`,
    ...(b.operator ? { operator: b.operator } : {}),
    ...(b.case_ref ? { case: b.case_ref } : {}),
    card: inn.card,
    times: { start: b.created_at, end: new Date().toISOString() },
    status: outcome.status,
    tool: { name: 'kluis', version: VERSION },
    files: inn.files.map((f) => {
      const o = outcome.files.find((x) => x.path === f.path);
      const rows = o?.object ? deliveries.filter((d) => d.object_key === o.object) : [];
      const thumb = thumbs.get(f.path);
      return {
        path: f.path,
        class: f.class,
        status: o?.status ?? f.status,
        size: f.size,
        ...(f.format ? { format: f.format } : {}),
        ...(f.cardSha256 ? { cardSha256: f.cardSha256 } : {}),
        ...(f.sanitizedSha256 ? { sanitizedSha256: f.sanitizedSha256 } : {}),
        ...(f.essence ? { essence: f.essence } : {}),
        ...(f.removed ? { removed: f.removed } : {}),
        ...(f.kept ? { kept: f.kept } : {}),
        ...(rows.length ? { stored: rows.map((d) => ({ target: d.target, objectId: d.object_key, ciphertextSha256: d.sha256 })) } : {}),
        ...(rows.length
          ? { verification: rows.map((d) => ({ target: d.target, result: d.state === 'verified' ? ('verified' as const) : ('unchecked' as const), detail: d.state, time: d.updated_at })) }
          : {}),
        ...(f.error ? { error: { code: f.error.code, message: f.error.message } } : {}),
        ...(thumb ? { thumbnail: thumb } : f.class === 'footage' ? { thumbnailNote: 'no preview' } : {}),
      };
    }),
    targets: [...station.targetConfigs.values()].map((t) => ({ name: t.name, type: t.type, class: t.class, required: t.required })),
  };
}

/**
 * Writes the sealed report and the signed manifest once no file of the batch is still being
 * read or processed. Idempotent: a batch whose manifest is queued is left alone.
 */
export async function finalizeBatch(station: Station, batchId: string, _emit: EventSink): Promise<void> {
  const { journal } = station;
  const b = journal.batch(batchId);
  if (!b || b.manifest_written === 1) return;
  const files = journal.files(batchId);
  if (files.some((f) => f.state === 'seen' || f.state === 'acquired' || f.state === 'sanitized')) return;
  crashPoint('before-manifest');
  const sp = await ensureSpool(station.layout.spoolDir, batchId);

  const thumbs = new Map<string, Buffer>();
  for (const f of files) {
    if (!f.thumb_path) continue;
    const buf = await fsp.readFile(f.thumb_path).catch(() => null);
    if (buf) thumbs.set(f.path, buf);
  }
  const report = buildReport(reportData(station, batchId, thumbs));
  const reportId = newId(16);
  const reportPath = path.join(sp.sealed, reportId);
  const sealedReport = sealBytes(new TextEncoder().encode(JSON.stringify({ html: report.html, json: report.json })), station.recipients);
  await writeFileAtomic(reportPath, sealedReport, 0o600);

  const deliveries = journal.deliveries(batchId);
  const objects = files
    .filter((f) => (f.state === 'sealed' && f.object_id) || f.state === 'held')
    .flatMap((f) => [
      ...(f.state === 'sealed' ? [{ id: f.object_id!, size: f.sealed_size!, sha256: f.sealed_sha256! }] : []),
      ...(originalKey(f, deliveries, batchId) ? [{ id: f.orig_object_id!, size: f.orig_sealed_size!, sha256: f.orig_sealed_sha256! }] : []),
    ]);
  objects.push({ id: reportId, size: sealedReport.length, sha256: sha256(sealedReport) });
  // The custody record: the batch's audit lines up to the log's head, signed and sealed; the
  // manifest lists it like any object and carries the same head in its outer part.
  const custody = await sealCustody(station, batchId, sp.sealed);
  objects.push({ id: custody.id, size: custody.size, sha256: custody.sha256 });
  const manifest = createManifest(
    {
      batchId,
      createdAt: new Date().toISOString(),
      objects,
      inner: { ...inner(station, batchId), extra: { reportObject: reportId, custodyObject: custody.id } },
      audit: custody.audit,
    },
    station.recipients,
    station.stationKey,
  );
  const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const manifestPath = path.join(sp.sealed, MANIFEST_KEY);
  await writeFileAtomic(manifestPath, manifestBytes, 0o600);
  const targets = [...station.targets.keys()];
  journal.db.transaction(() => {
    journal.enqueue(batchId, `${batchId}/${reportId}`, targets, { size: sealedReport.length, sha256: sha256(sealedReport), localPath: reportPath });
    journal.enqueue(batchId, `${batchId}/${custody.id}`, targets, { size: custody.size, sha256: custody.sha256, localPath: custody.file });
    journal.enqueue(batchId, `${batchId}/${MANIFEST_KEY}`, targets, { size: manifestBytes.length, sha256: sha256(manifestBytes), localPath: manifestPath });
    journal.setBatch(batchId, { manifest_written: 1, report_object: reportId });
  })();
  crashPoint('after-manifest');
  // Thumbnails are derived plaintext: gone once the report that carries them is sealed.
  await fsp.rm(sp.thumbs, { recursive: true, force: true });
  for (const f of files) if (f.thumb_path) journal.setFile(batchId, f.path, { thumb_path: null });
  await station.audit.append('file-sealed', {
    batchId, object: `${batchId}/${custody.id}`, kind: 'custody', sha256: custody.sha256, size: custody.size, lines: custody.lines, auditHead: custody.audit,
    recipients: station.recipients.map((r) => formatPublicKey(r)),
  });
  await station.audit.append('file-sealed', {
    batchId, object: `${batchId}/${MANIFEST_KEY}`, kind: 'manifest', sha256: sha256(manifestBytes), size: manifestBytes.length, auditHead: custody.audit,
    recipients: station.recipients.map((r) => formatPublicKey(r)),
  });
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
