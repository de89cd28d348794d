/**
 * Reading a custody record (src/seal/custody.ts) for people and for the checks that tie it to
 * its batch: `summarizeCustody` says who, which card, when, what happened to each file and where
 * it went; `crossCheckCustody` names every place where the record and the signed manifest
 * disagree (the audit head, the card, the operator and case, each card hash, each sealed object).
 * Both only read the lines; neither trusts a record that `openCustodyRecord` did not accept.
 */
import { canonicalJson } from '../util/canonical-json.js';
import type { CustodyLine, CustodyRecord, ManifestInner, ManifestOuter } from '../seal/index.js';

export interface CustodyFile {
  path: string;
  acquired?: { sha256: string; size?: number; time: string };
  withheld?: { sha256?: string; reason?: string; time: string };
  rejected?: { code?: string; reason?: string; time: string };
  sanitized?: { sha256?: string; format?: string; removed?: unknown[]; time: string };
  sealed?: { object: string; sha256?: string; time: string };
  original?: { object: string; sha256?: string; time: string };
}

export interface CustodyDelivery {
  object: string;
  target: string;
  delivered?: string;
  verified?: string;
  failed?: { code?: string; reason?: string; time: string };
}

export interface CustodySummary {
  batchId: string;
  station: { name: string; key: string };
  recordedAt: string;
  audit: { seq: number; head: string };
  lines: number;
  operator?: string;
  case?: string;
  card: { root?: string; label?: string; uuid?: string; fingerprint?: string; device?: string };
  times: { cardSeen?: string; safeToRemove?: string; firstRead?: string; lastRead?: string; lastSealed?: string; recorded: string };
  files: CustodyFile[];
  deliveries: CustodyDelivery[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function firstCardSeen(lines: CustodyLine[]): CustodyLine | undefined {
  return lines.find((l) => l.type === 'card-seen');
}

export function summarizeCustody(record: CustodyRecord): CustodySummary {
  const seen = firstCardSeen(record.lines);
  const files = new Map<string, CustodyFile>();
  const fileOf = (p: string): CustodyFile => {
    let f = files.get(p);
    if (!f) files.set(p, (f = { path: p }));
    return f;
  };
  const deliveries = new Map<string, CustodyDelivery>();
  const deliveryOf = (object: string, target: string): CustodyDelivery => {
    const k = `${object}\0${target}`;
    let d = deliveries.get(k);
    if (!d) deliveries.set(k, (d = { object, target }));
    return d;
  };
  const times: CustodySummary['times'] = { recorded: record.createdAt, ...(seen ? { cardSeen: seen.time } : {}) };
  for (const l of record.lines) {
    const file = str(l.file);
    switch (l.type) {
      case 'file-acquired':
        if (file) fileOf(file).acquired = { sha256: String(l.sha256), ...(num(l.size) !== undefined ? { size: num(l.size)! } : {}), time: l.time };
        times.firstRead ??= l.time;
        times.lastRead = l.time;
        break;
      case 'file-withheld':
        if (file) fileOf(file).withheld = { ...(str(l.sha256) ? { sha256: str(l.sha256)! } : {}), ...(str(l.reason) ? { reason: str(l.reason)! } : {}), time: l.time };
        times.firstRead ??= l.time;
        times.lastRead = l.time;
        break;
      case 'file-rejected':
      case 'file-sanitize-failed':
        if (file) fileOf(file).rejected = { ...(str(l.code) ? { code: str(l.code)! } : {}), ...(str(l.reason) ? { reason: str(l.reason)! } : {}), time: l.time };
        break;
      case 'file-sanitized':
        if (file) fileOf(file).sanitized = { ...(str(l.sha256) ? { sha256: str(l.sha256)! } : {}), ...(str(l.format) ? { format: str(l.format)! } : {}), ...(Array.isArray(l.removed) ? { removed: l.removed as unknown[] } : {}), time: l.time };
        break;
      case 'file-sealed':
        if (file && str(l.object)) {
          const entry = { object: str(l.object)!, ...(str(l.sha256) ? { sha256: str(l.sha256)! } : {}), time: l.time };
          if (l.kind === 'original') fileOf(file).original = entry;
          else fileOf(file).sealed = entry;
          times.lastSealed = l.time;
        }
        break;
      case 'card-safe-to-remove':
        times.safeToRemove ??= l.time;
        break;
      case 'delivered':
      case 'verified':
      case 'delivery-failed':
      case 'verify-failed':
      case 'refused': {
        const object = str(l.object);
        const target = str(l.target);
        if (!object || !target) break;
        const d = deliveryOf(object, target);
        if (l.type === 'delivered') d.delivered = l.time;
        else if (l.type === 'verified') d.verified = l.time;
        else d.failed = { ...(str(l.code) ? { code: str(l.code)! } : {}), ...(str(l.reason) ? { reason: str(l.reason)! } : {}), time: l.time };
        break;
      }
      default:
        break;
    }
  }
  return {
    batchId: record.batchId,
    station: record.station,
    recordedAt: record.createdAt,
    audit: record.audit,
    lines: record.lines.length,
    ...(seen && str(seen.operator) ? { operator: str(seen.operator)! } : {}),
    ...(seen && str(seen.case) ? { case: str(seen.case)! } : {}),
    card: {
      ...(seen && str(seen.card) ? { root: str(seen.card)! } : {}),
      ...(seen && str(seen.label) ? { label: str(seen.label)! } : {}),
      ...(seen && str(seen.uuid) ? { uuid: str(seen.uuid)! } : {}),
      ...(seen && str(seen.fingerprint) ? { fingerprint: str(seen.fingerprint)! } : {}),
      ...(seen && str(seen.device) ? { device: str(seen.device)! } : {}),
    },
    times,
    files: [...files.values()],
    deliveries: [...deliveries.values()],
  };
}

/** Where the record and the signed manifest disagree; empty when they tell the same story. */
export function crossCheckCustody(record: CustodyRecord, outer: ManifestOuter, inner: ManifestInner): string[] {
  const out: string[] = [];
  if (!outer.audit) out.push('the signed manifest carries no audit head, but a custody record is stored for the batch');
  else if (outer.audit.seq !== record.audit.seq || outer.audit.head !== record.audit.head) {
    out.push(`the record is tied to audit seq ${record.audit.seq}, the signed manifest to seq ${outer.audit.seq} (${outer.audit.head.slice(0, 12)}…)`);
  }
  const seen = firstCardSeen(record.lines);
  if (!seen) out.push('the record holds no card-seen line');
  else {
    if (str(seen.fingerprint) !== inner.card.fingerprint) out.push(`the record's card fingerprint ${String(seen.fingerprint)} is not the manifest's ${inner.card.fingerprint}`);
    if (str(seen.operator) !== inner.operator) out.push(`the record names operator ${JSON.stringify(seen.operator ?? null)}, the manifest ${JSON.stringify(inner.operator ?? null)}`);
    if (str(seen.case) !== inner.case) out.push(`the record names case ${JSON.stringify(seen.case ?? null)}, the manifest ${JSON.stringify(inner.case ?? null)}`);
  }
  // The last word per file (a file read again after a change has several lines).
  const read = new Map<string, CustodyLine>();
  const sanitized = new Map<string, CustodyLine>();
  const sealed = new Map<string, CustodyLine>();
  for (const l of record.lines) {
    const file = str(l.file);
    if ((l.type === 'file-acquired' || l.type === 'file-withheld') && file) read.set(file, l);
    if (l.type === 'file-sanitized' && file) sanitized.set(file, l);
    if (l.type === 'file-sealed' && str(l.object)) sealed.set(str(l.object)!, l);
  }
  const cipher = new Map(outer.objects.map((o) => [o.id, o.sha256]));
  for (const f of inner.files) {
    if (f.cardSha256) {
      const l = read.get(f.path);
      if (!l) out.push(`no line records reading ${f.path}`);
      else if (l.sha256 !== f.cardSha256) out.push(`${f.path}: read with SHA-256 ${String(l.sha256)} in the record, ${f.cardSha256} in the manifest`);
    }
    const s = sanitized.get(f.path);
    if (s && f.removed && canonicalJson(s.removed ?? null) !== canonicalJson(f.removed)) out.push(`${f.path}: what was removed differs between the record and the manifest`);
    const ids = [f.objectId, (f as { originalObjectId?: unknown }).originalObjectId].filter((x): x is string => typeof x === 'string');
    for (const id of ids) {
      const l = sealed.get(`${outer.batchId}/${id}`);
      if (!l) out.push(`no line records sealing ${f.path} as object ${id}`);
      else if (cipher.has(id) && l.sha256 !== cipher.get(id)) out.push(`${f.path}: object ${id} sealed with SHA-256 ${String(l.sha256)} in the record, ${cipher.get(id)} in the manifest`);
    }
  }
  return out;
}
