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
import * as http from 'node:http';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { KluisError, asKluisError } from '../../errors.js';
import type { SecretKey } from '../../seal/index.js';
import { AuditLog } from '../../audit/index.js';
import { catalog, parseDateBound, type CatalogBatch, type CatalogResult } from '../../evidence/catalog.js';
import { batchDetails } from '../../evidence/details.js';
import { exportBatch } from '../../evidence/export.js';
import { verifyBatch, type VerifyReport } from '../../evidence/verify.js';
import type { EvidenceSource } from '../../evidence/source.js';
import { actionAllowed, allowedHosts, checkBindAddress, clearStaleCookie, gate, newCsrf, newToken, securityHeaders } from '../security.js';
import { DESK_CSS, DESK_JS, deskHtml } from './page.js';
import { DESK_TEXTS } from './texts.js';

export interface DeskServerOptions {
  port?: number;
  bind?: string;
  allowRemoteBind?: boolean;
  log?: (line: string) => void;
  /** Who uses the desk (recorded with each export). */
  operator: string;
}

export interface DeskServer {
  /** The address with the token in its fragment (never sent to a server), to print for the user. */
  loginUrl: string;
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

interface VerifyRun {
  running: boolean;
  startedAt: string;
  finishedAt?: string;
  report?: VerifyReport;
  error?: { code: string; message: string; hint?: string };
}

const MAX_BODY = 8 * 1024;
const BATCH_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

function send(res: http.ServerResponse, status: number, body: string, type: string): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { ...securityHeaders(), 'Content-Type': type, 'Content-Length': buf.length });
  res.end(buf);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

function deny(res: http.ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': 0, 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'none'" });
  res.end();
}

async function readJsonBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new KluisError('E_DESK_REQUEST', 'request body too large');
    chunks.push(c);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new KluisError('E_DESK_REQUEST', 'the request body is not a JSON object');
}

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
  const bind = opts.bind ?? '127.0.0.1';
  const allowRemote = opts.allowRemoteBind === true;
  const { warning } = checkBindAddress(bind, allowRemote);
  const log = opts.log ?? ((l: string) => process.stderr.write(`kluis: ${l}\n`));
  if (warning) log(`WARNING: ${warning}`);
  const token = newToken();
  const csrf = newCsrf();
  let port = 0;
  let hosts = new Set<string>();

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

  const route = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'POST') {
      if (!actionAllowed(req, { token, csrf, hosts })) return deny(res, 403);
      const body = await readJsonBody(req);
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
          return sendJson(res, 200, { ok: true, out: r.out, files: r.files.length, skipped: r.skipped.length, report: r.report ?? null, custody: r.custody ?? null, mhl: r.mhl ?? null, target: r.target });
        } finally {
          await audit.close();
        }
      }
      return deny(res, 404);
    }
    if (method !== 'GET' && method !== 'HEAD') return deny(res, 405);
    // The page shell (security.ts PUBLIC_PATHS): served without the token, holds no data.
    if (p === '/') return send(res, 200, deskHtml(), 'text/html; charset=utf-8');
    if (p === '/app.js') return send(res, 200, DESK_JS, 'text/javascript; charset=utf-8');
    if (p === '/app.css') return send(res, 200, DESK_CSS, 'text/css; charset=utf-8');
    if (p === '/favicon.ico') return deny(res, 204);
    if (p === '/api/texts') return sendJson(res, 200, DESK_TEXTS);
    if (p === '/api/session') return sendJson(res, 200, { csrf });
    if (p === '/api/info') {
      return sendJson(res, 200, { kind: source.kind, stations: source.stations.map((s) => ({ name: s.name, key: s.key })), targets: source.targets.map((t) => ({ name: t.name, type: t.type })) });
    }
    if (p === '/api/catalog') {
      const { at, result } = await catalogNow(url.searchParams.get('fresh') === '1');
      return sendJson(res, 200, { scannedAt: at, batches: result.batches.filter((b) => matches(b, url.searchParams)), total: result.batches.length, problems: result.problems });
    }
    let m = /^\/api\/batch\/([^/]+)$/.exec(p);
    if (m) return sendJson(res, 200, await batchDetails(source, batchIdOf(decodeURIComponent(m[1]!)), identities));
    m = /^\/api\/verify\/([^/]+)$/.exec(p);
    if (m) {
      const run = verifies.get(batchIdOf(decodeURIComponent(m[1]!)));
      if (!run) throw new KluisError('E_DESK_NOT_FOUND', 'no verification of this batch was started here');
      return sendJson(res, 200, run);
    }
    return deny(res, 404);
  };

  const server = http.createServer((req, res) => {
    const clear = clearStaleCookie(req, port);
    if (clear) res.setHeader('Set-Cookie', clear);
    const verdict = gate(req, { token, hosts, allowRemoteClients: allowRemote });
    if (!verdict.ok) return deny(res, verdict.status);
    const url = new URL(req.url ?? '/', 'http://localhost');
    route(req, res, url).catch((err) => {
      const e = asKluisError(err, 'E_DESK_INTERNAL');
      const status = e.code === 'E_DESK_NOT_FOUND' || e.code === 'E_VERIFY_MISSING' ? 404 : e.code === 'E_DESK_REQUEST' || e.code === 'E_USAGE' || e.code === 'E_DESK_EXPORT_FOLDER' ? 400 : e.code === 'E_INTERNAL' || e.code === 'E_DESK_INTERNAL' ? 500 : 422;
      if (res.headersSent) res.end();
      else sendJson(res, status, { error: e.toJSON() });
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        err.code === 'EADDRINUSE'
          ? new KluisError('E_DASHBOARD_PORT', `port ${opts.port ?? 0} on ${bind} is in use`, { hint: 'choose another --port, or stop the other page' })
          : new KluisError('E_DASHBOARD_LISTEN', `cannot listen on ${bind}: ${err.message}`, { cause: err }),
      );
    };
    server.once('error', onError);
    server.listen(opts.port ?? 0, bind, () => {
      server.off('error', onError);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(port, bind);
  const shownHost = bind === '::1' ? '[::1]' : bind.includes(':') ? `[${bind}]` : bind;
  const url = `http://${shownHost}:${port}/`;
  return {
    url,
    loginUrl: `${url}#token=${token}`,
    port,
    token,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
