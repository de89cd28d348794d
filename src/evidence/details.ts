/**
 * One batch as evidence staff look at it (the desk page): from its signed manifest on a target,
 * opened with the identity, its card, people, times and files (with what was removed), and its
 * custody record, checked the way `kluis verify` checks it on that one target. Reads only; a
 * full re-check of every object on every target is `verifyBatch`.
 */
import { createHash } from 'node:crypto';
import { openCustodyRecord, openManifestInner, type CustodyLine, type SecretKey } from '../seal/index.js';
import { readCapped } from '../util/limits.js';
import { crossCheckCustody, summarizeCustody, type CustodySummary } from './custody.js';
import { findBatch } from './export.js';
import type { EvidenceSource } from './source.js';

export interface BatchDetails {
  batchId: string;
  station: { name: string; key: string };
  /** The target the manifest was read from. */
  target: string;
  closedAt: string;
  startedAt: string;
  audit?: { seq: number; head: string };
  operator?: string;
  case?: string;
  card: { label?: string; uuid?: string; fingerprint: string; root: string };
  files: Array<{
    path: string;
    class: string;
    status: string;
    size: number;
    format?: string;
    cardSha256?: string;
    sanitizedSha256?: string;
    removed?: Array<{ where: string; what: string; bytes: number }>;
    error?: { code: string; message: string };
  }>;
  custody: {
    result: 'verified' | 'mismatch' | 'missing' | 'unchecked';
    code?: string;
    message?: string;
    record?: CustodySummary;
    /** The record's lines, short: seq, time, type and what they name. */
    lines?: Array<{ seq: number; time: string; type: string; file?: string; object?: string; target?: string }>;
  };
}

const CUSTODY_CAP = 256 * 1024 * 1024;

export async function batchDetails(source: EvidenceSource, batchId: string, identities: SecretKey[]): Promise<BatchDetails> {
  const { target, outer, station, stationKey } = await findBatch(source, batchId);
  try {
    const inner = openManifestInner(outer, identities);
    const details: BatchDetails = {
      batchId,
      station,
      target: target.name,
      closedAt: outer.createdAt,
      startedAt: inner.createdAt,
      ...(outer.audit ? { audit: outer.audit } : {}),
      ...(inner.operator !== undefined ? { operator: inner.operator } : {}),
      ...(inner.case !== undefined ? { case: inner.case } : {}),
      card: inner.card,
      files: inner.files.map((f) => ({
        path: f.path,
        class: f.class,
        status: f.status,
        size: f.size,
        ...(f.format ? { format: f.format } : {}),
        ...(f.cardSha256 ? { cardSha256: f.cardSha256 } : {}),
        ...(f.sanitizedSha256 ? { sanitizedSha256: f.sanitizedSha256 } : {}),
        ...(f.removed ? { removed: f.removed.map((r) => ({ where: r.where, what: r.what, bytes: r.bytes })) } : {}),
        ...(f.error ? { error: { code: f.error.code, message: f.error.message } } : {}),
      })),
      custody: { result: 'unchecked' },
    };
    const id = (inner.extra as { custodyObject?: unknown } | undefined)?.custodyObject;
    const obj = typeof id === 'string' ? outer.objects.find((o) => o.id === id) : undefined;
    if (typeof id !== 'string') {
      details.custody = outer.audit
        ? { result: 'missing', code: 'E_CUSTODY_MISSING', message: 'the signed manifest carries an audit head but names no custody record' }
        : { result: 'unchecked', message: "this batch was closed before stations stored custody records; its custody is in its station's audit log" };
      return details;
    }
    if (!obj) {
      details.custody = { result: 'mismatch', code: 'E_CUSTODY_MISMATCH', message: `the signed outer list does not hold custody record ${id}` };
      return details;
    }
    try {
      const bytes = await readCapped(await target.get(`${batchId}/${id}`), CUSTODY_CAP, `${batchId}/${id}`, 'E_CUSTODY_ALTERED');
      if (createHash('sha256').update(bytes).digest('hex') !== obj.sha256) {
        details.custody = { result: 'mismatch', code: 'E_CUSTODY_ALTERED', message: `the custody record on ${target.name} is not the one the signed manifest names` };
        return details;
      }
      const signed = openCustodyRecord(bytes, identities, { batchId, station: stationKey });
      const disagree = crossCheckCustody(signed.record, outer, inner);
      if (disagree.length > 0) {
        details.custody = { result: 'mismatch', code: 'E_CUSTODY_MISMATCH', message: disagree.slice(0, 3).join('; ') };
        return details;
      }
      details.custody = { result: 'verified', record: summarizeCustody(signed.record), lines: signed.record.lines.map(short) };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      details.custody = { result: e.code === 'E_TARGET_MISSING' ? 'missing' : e.code === 'E_SEAL_NO_RECIPIENT' ? 'unchecked' : 'mismatch', code: e.code === 'E_TARGET_MISSING' ? 'E_CUSTODY_MISSING' : e.code ?? 'E_CUSTODY_SHAPE', message: e.message ?? String(err) };
    }
    return details;
  } finally {
    await target.close().catch(() => undefined);
  }
}

function short(l: CustodyLine): { seq: number; time: string; type: string; file?: string; object?: string; target?: string } {
  const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const file = s(l.file);
  const object = s(l.object);
  const target = s(l.target);
  return { seq: l.seq, time: l.time, type: l.type, ...(file ? { file } : {}), ...(object ? { object } : {}), ...(target ? { target } : {}) };
}
