/**
 * The evidence desk page (`kluis serve --desk`): for evidence staff who do not use a terminal.
 * Search the batches the targets hold (by case, station, operator, date), look at one batch
 * (files, what was removed, its custody record), re-check it end to end, and export it into a
 * folder on this computer.
 *
 * Security is the station dashboard's, from the same module (src/dashboard/security.ts): loopback
 * bind and clients only, our Host header only, a per-start token sent only as a Bearer header (the
 * printed address carries it in its fragment; the page keeps it in sessionStorage), the page shell
 * (no data) the only thing served without it, a CSRF value from an authenticated request +
 * same-origin checks + JSON content type on every action, a strict CSP, no CORS, no-store. A
 * request that fails a check gets a bare status code.
 *
 * What it never does: write to a target (the desk's targets are read-only), decrypt anything into
 * a folder other than the one the user names for an export, or export into a folder that is not
 * empty. Verifications and exports are recorded in the desk's own log.
 */
import type * as http from 'node:http';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../../errors.js';
import type { SecretKey } from '../../seal/index.js';
import { AuditLog } from '../../audit/index.js';
import { catalog, parseDateBound, type CatalogBatch, type CatalogResult } from '../../evidence/catalog.js';
import { batchDetails } from '../../evidence/details.js';
import { exportBatch } from '../../evidence/export.js';
import { verifyBatch, type VerifyReport } from '../../evidence/verify.js';
import type { EvidenceSource } from '../../evidence/source.js';
import { deny, readJsonBody, sendJson, startPageServer, type PageServer } from '../page-server.js';
import type { DeskBatch, DeskCatalog, DeskExport, DeskInfo, DeskVerifyRun } from '../wire.js';
import { DESK_CSS, deskHtml } from './page.js';
import { DESK_TEXTS } from './texts.js';

export interface DeskServerOptions {
  port?: number;
  bind?: string;
  allowRemoteBind?: boolean;
  log?: (line: string) => void;
  /** Who uses the desk (recorded with each export). */
  operator: string;
}

/** The address with the token in its fragment (never sent to a server) is `loginUrl`, to print for the user. */
export type DeskServer = PageServer;

interface VerifyRun {
  running: boolean;
  startedAt: string;
  finishedAt?: string;
  report?: VerifyReport;
  error?: { code: string; message: string; hint?: string };
}

const BATCH_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

function batchIdOf(v: unknown): string {
  if (typeof v !== 'string' || !BATCH_RE.test(v)) throw new KluisError('E_DESK_REQUEST', 'batchId is missing or not a batch id');
  return v;
}

/** An export folder: absolute, and missing or empty (the desk never mixes an export into other files). */
async function exportFolder(v: unknown): Promise<string> {
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096 || v.includes('\0')) throw new KluisError('E_DESK_REQUEST', 'out is missing');
  if (!path.isAbsolute(v)) throw new KluisError('E_DESK_EXPORT_FOLDER', `export folder ${v} is not an absolute path`, { hint: 'give the whole path, e.g. /home/you/exports/case-123' });
  const out = path.resolve(v);
  const st = await fsp.lstat(out).catch(() => null);
  if (st) {
    if (!st.isDirectory()) throw new KluisError('E_DESK_EXPORT_FOLDER', `${out} exists and is not a folder`, { hint: 'choose a new folder name' });
    if ((await fsp.readdir(out)).length > 0) throw new KluisError('E_DESK_EXPORT_FOLDER', `${out} is not empty`, { hint: 'choose a new or empty folder: an export is never mixed into other files' });
  }
  return out;
}

function matches(b: CatalogBatch, q: URLSearchParams): boolean {
  const caseRef = q.get('case')?.trim();
  const station = q.get('station')?.trim();
  const operator = q.get('operator')?.trim();
  if (caseRef && b.case !== caseRef) return false;
  if (station && b.station !== station && b.stationKey !== station) return false;
  if (operator && b.operator !== operator) return false;
  const from = q.get('from')?.trim();
  const to = q.get('to')?.trim();
  if (from && Date.parse(b.startedAt) < parseDateBound(from, 'from').getTime()) return false;
  if (to && Date.parse(b.startedAt) >= parseDateBound(to, 'to').getTime()) return false;
  return true;
}

export async function startDeskServer(source: EvidenceSource, identities: SecretKey[], opts: DeskServerOptions): Promise<DeskServer> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`kluis: ${l}\n`));

  // The full catalog is read once and kept; searching filters it. "Read again" scans anew.
  let scan: { at: string; result: CatalogResult } | undefined;
  let scanning: Promise<{ at: string; result: CatalogResult }> | undefined;
  const catalogNow = (fresh: boolean): Promise<{ at: string; result: CatalogResult }> => {
    if (scan && !fresh) return Promise.resolve(scan);
    scanning ??= catalog(source, identities)
      .then((result) => (scan = { at: new Date().toISOString(), result }))
      .finally(() => (scanning = undefined));
    return scanning;
  };

  const verifies = new Map<string, VerifyRun>();
  const record = async (type: 'verified' | 'verify-failed' | 'export', data: Record<string, unknown>): Promise<void> => {
    const audit = await AuditLog.open(source.record.file, { station: source.record.name });
    try {
      await audit.append(type, { ...data, by: 'desk page' });
    } finally {
      await audit.close();
    }
  };

  const runVerify = (batchId: string): VerifyRun => {
    const existing = verifies.get(batchId);
    if (existing?.running) return existing;
    const run: VerifyRun = { running: true, startedAt: new Date().toISOString() };
    verifies.set(batchId, run);
    void verifyBatch({ source, batchId, identities })
      .then(async (report) => {
        run.report = report;
        await record(report.ok ? 'verified' : 'verify-failed', { batchId, result: report.result, files: report.files.length, problems: report.problems.length, custody: report.custody.result }).catch((err: unknown) => {
          log(`warning: could not record the verification of ${batchId} in the desk log: ${asKluisError(err).message}`);
        });
      })
      .catch((err: unknown) => {
        run.error = asKluisError(err, 'E_VERIFY_UNCHECKED').toJSON();
      })
      .finally(() => {
        run.running = false;
        run.finishedAt = new Date().toISOString();
      });
    return run;
  };

  const post = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    const body = await readJsonBody(req, 'E_DESK_REQUEST');
    if (p === '/api/verify') {
      const run = runVerify(batchIdOf(body.batchId));
      return sendJson(res, 202, { running: run.running, startedAt: run.startedAt });
    }
    if (p === '/api/export') {
      const batchId = batchIdOf(body.batchId);
      const out = await exportFolder(body.out);
      // Recorded before any plaintext is written, like `kluis export`: no record, no export.
      const audit = await AuditLog.open(source.record.file, { station: source.record.name });
      try {
        const r = await exportBatch(source, batchId, identities, out, { operator: opts.operator });
        await audit.append('export', { batchId, operator: opts.operator, target: r.target, out: r.out, files: r.files.length, by: 'desk page', ...(r.station ? { batchStation: r.station.name } : {}) });
        const reply = { ok: true, out: r.out, files: r.files.length, skipped: r.skipped.length, report: r.report ?? null, custody: r.custody ?? null, mhl: r.mhl ?? null, target: r.target };
        return sendJson(res, 200, reply satisfies DeskExport);
      } finally {
        await audit.close();
      }
    }
    return deny(res, 404);
  };

  const get = async (_req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    if (p === '/api/info') {
      const info = { kind: source.kind, stations: source.stations.map((s) => ({ name: s.name, key: s.key })), targets: source.targets.map((t) => ({ name: t.name, type: t.type })) };
      return sendJson(res, 200, info satisfies DeskInfo);
    }
    if (p === '/api/catalog') {
      const { at, result } = await catalogNow(url.searchParams.get('fresh') === '1');
      const found = { scannedAt: at, batches: result.batches.filter((b) => matches(b, url.searchParams)), total: result.batches.length, problems: result.problems };
      return sendJson(res, 200, found satisfies DeskCatalog);
    }
    let m = /^\/api\/batch\/([^/]+)$/.exec(p);
    if (m) return sendJson(res, 200, (await batchDetails(source, batchIdOf(decodeURIComponent(m[1]!)), identities)) satisfies DeskBatch);
    m = /^\/api\/verify\/([^/]+)$/.exec(p);
    if (m) {
      const run = verifies.get(batchIdOf(decodeURIComponent(m[1]!)));
      if (!run) throw new KluisError('E_DESK_NOT_FOUND', 'no verification of this batch was started here');
      return sendJson(res, 200, run satisfies DeskVerifyRun);
    }
    return deny(res, 404);
  };

  return startPageServer({
    port: opts.port,
    bind: opts.bind,
    allowRemoteBind: opts.allowRemoteBind,
    log,
    name: 'page',
    shell: { html: deskHtml(), script: 'desk', css: DESK_CSS, texts: DESK_TEXTS },
    get,
    post,
    internalCode: 'E_DESK_INTERNAL',
    statusOf: (e) =>
      e.code === 'E_DESK_NOT_FOUND' || e.code === 'E_VERIFY_MISSING'
        ? 404
        : e.code === 'E_DESK_REQUEST' || e.code === 'E_USAGE' || e.code === 'E_DESK_EXPORT_FOLDER'
          ? 400
          : e.code === 'E_INTERNAL' || e.code === 'E_DESK_INTERNAL'
            ? 500
            : 422,
  });
}
