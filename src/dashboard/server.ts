/**
 * The local dashboard server (plain node:http). Every request first passes the gate in
 * security.ts (loopback client, our Host, the per-start token as a Bearer header, or a one-use
 * ticket for a navigation); a request for data that fails gets a bare 401/403 and nothing else.
 * The page shell (no data) is served without the token and asks for it when it has none or an
 * old one. No cookie is ever set (one left by an older version is deleted). Pages carry a strict
 * CSP, X-Frame-Options DENY and no-store; there are no CORS headers, so no other origin may read
 * a response.
 *
 * Live updates: the server tails the journal's event table (every ~300 ms) and pushes a fresh
 * snapshot to each open server-sent-events stream when something happened (and every few
 * seconds anyway, for changes that carry no event).
 *
 * Actions (POST, token + CSRF): retry a delivery, re-check a batch on its targets. Nothing
 * here deletes evidence or sends data anywhere but to the configured targets.
 */
import * as http from 'node:http';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { KluisError, asKluisError } from '../errors.js';
import type { Station } from '../pipeline/station.js';
import { spoolPaths } from '../pipeline/spool.js';
import { lockStation } from '../pipeline/lock.js';
import { reportData } from '../pipeline/finalize.js';
import { buildReport } from '../evidence/report.js';
import { stationStatus } from '../pipeline/status.js';
import { TEXTS } from './i18n.js';
import { pageHtml, PAGE_CSS, PAGE_JS } from './page.js';
import {
  CSP_PAGE,
  CSP_REPORT,
  Tickets,
  actionAllowed,
  allowedHosts,
  checkBindAddress,
  clearStaleCookie,
  gate,
  newCsrf,
  newToken,
  securityHeaders,
} from './security.js';
import { EventTracker, seedTracker, snapshot, type VerifyView } from './state.js';
import { journalSink, recheckBatch, requeueDelivery } from './actions.js';
import { drainOutbox } from '../pipeline/deliver.js';

export interface DashboardOptions {
  port?: number;
  bind?: string;
  /** Lets the dashboard listen on a non-loopback address and serve non-loopback clients. */
  allowRemoteBind?: boolean;
  /** How often the event table is polled (ms). */
  pollMs?: number;
  /**
   * Whether the station's working lock is held by this process already (serve --watch): then
   * a retry works the outbox directly; otherwise it takes the lock, or, when another kluis
   * process holds it, leaves the delivery due for that process.
   */
  lockHeldInProcess?: boolean;
  /** Lines for the operator's terminal (warnings). */
  log?: (line: string) => void;
}

export interface DashboardServer {
  /** The address with the token (in the fragment, which a browser never sends), to print for the operator. */
  loginUrl: string;
  /** The address without the token. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const MAX_BODY = 8 * 1024;

function send(res: http.ServerResponse, status: number, body: string | Buffer, type: string, csp = CSP_PAGE, extra: http.OutgoingHttpHeaders = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...securityHeaders(csp), 'Content-Type': type, 'Content-Length': buf.length, ...extra });
  res.end(buf);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

function sendError(res: http.ServerResponse, status: number, err: KluisError): void {
  sendJson(res, status, { error: err.toJSON() });
}

/** A refusal: status only, no body, no data. */
function deny(res: http.ServerResponse, status: number): void {
  // 204 is used for the favicon only: nothing to send, nothing to log in the browser.
  res.writeHead(status, { 'Content-Length': 0, 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'none'" });
  res.end();
}

async function readJsonBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new KluisError('E_DASHBOARD_REQUEST', 'request body too large');
    chunks.push(c);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new KluisError('E_DASHBOARD_REQUEST', 'the request body is not a JSON object');
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 512) throw new KluisError('E_DASHBOARD_REQUEST', `field ${field} is missing or invalid`);
  return v;
}

export async function startDashboard(station: Station, opts: DashboardOptions = {}): Promise<DashboardServer> {
  const bind = opts.bind ?? '127.0.0.1';
  const allowRemote = opts.allowRemoteBind === true;
  const { warning } = checkBindAddress(bind, allowRemote);
  const log = opts.log ?? ((l: string) => process.stderr.write(`kluis: ${l}\n`));
  if (warning) log(`WARNING: ${warning}`);

  const token = newToken();
  const csrf = newCsrf();
  const tickets = new Tickets();
  const tracker = new EventTracker();
  seedTracker(station, tracker);
  const verifies = new Map<string, VerifyView>();
  const streams = new Set<http.ServerResponse>();
  const emit = journalSink(station);
  let port = 0;
  let hosts = new Set<string>();
  let dirty = true;

  const labelFor = (batchId: string): ((key: string) => string) => {
    const files = station.journal.files(batchId);
    const b = station.journal.batch(batchId);
    const byObject = new Map(files.filter((f) => f.object_id).map((f) => [`${batchId}/${f.object_id}`, f.path]));
    return (key) => {
      const tail = key.slice(key.indexOf('/') + 1);
      if (tail === 'manifest.json') return 'manifest';
      if (b?.report_object && tail === b.report_object) return 'report';
      return byObject.get(key) ?? tail;
    };
  };

  const current = (): string => JSON.stringify(snapshot(station, tracker, { verify: verifies }));

  const push = (): void => {
    if (streams.size === 0) return;
    let data: string;
    try {
      data = current();
    } catch (err) {
      log(`warning: dashboard could not read the journal: ${asKluisError(err).message}`);
      return;
    }
    for (const s of streams) s.write(`event: state\ndata: ${data}\n\n`);
  };

  let ticks = 0;
  const poll = (): void => {
    try {
      for (;;) {
        const rows = station.journal.eventsAfter(tracker.lastId, 500);
        if (rows.length === 0) break;
        tracker.apply(rows);
        dirty = true;
        if (rows.length < 500) break;
      }
    } catch (err) {
      log(`warning: dashboard could not read events: ${asKluisError(err).message}`);
    }
    ticks++;
    const pollMs = opts.pollMs ?? 300;
    if (dirty || ticks % Math.max(1, Math.round(5000 / pollMs)) === 0) {
      dirty = false;
      push();
    }
    if (ticks % Math.max(1, Math.round(15000 / pollMs)) === 0) for (const s of streams) s.write(': keep-alive\n\n');
  };

  /** Works the outbox for a batch if this process may; says whether it did. */
  const workOutbox = async (batchId: string): Promise<'done' | 'left-for-running-process'> => {
    if (opts.lockHeldInProcess) {
      await drainOutbox(station, emit, { batchId, waitMs: 0 });
      return 'done';
    }
    let unlock: (() => Promise<void>) | undefined;
    try {
      unlock = await lockStation(station.layout.stateDir);
    } catch (err) {
      if (err instanceof KluisError && err.code === 'E_STATION_BUSY') return 'left-for-running-process';
      throw err;
    }
    try {
      await drainOutbox(station, emit, { batchId, waitMs: 0 });
      return 'done';
    } finally {
      await unlock();
    }
  };

  const runVerify = (batchId: string): VerifyView => {
    const existing = verifies.get(batchId);
    if (existing?.running) return existing;
    const view: VerifyView = { running: true, startedAt: new Date().toISOString(), items: [] };
    verifies.set(batchId, view);
    dirty = true;
    void recheckBatch(station, batchId, labelFor(batchId), (item) => {
      view.items.push(item);
      dirty = true;
    })
      .catch((err) => {
        const e = asKluisError(err, 'E_TARGET_IO');
        view.items.push({ object: '-', label: '-', target: '-', result: 'unchecked', detail: `${e.code}: ${e.message}` });
      })
      .finally(() => {
        view.running = false;
        view.finishedAt = new Date().toISOString();
        dirty = true;
      });
    return view;
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'POST') {
      if (!actionAllowed(req, { token, csrf, hosts })) return deny(res, 403);
      if (p === '/api/ticket') {
        // A ticket lets the page open the report or the status JSON in a new tab (a navigation
        // cannot carry the token header): one use, this path only, for a minute.
        const body = await readJsonBody(req);
        const target = str(body.path, 'path');
        if (!/^\/batch\/[A-Za-z0-9_-]{1,64}\/report(\.json)?$|^\/api\/batch\/[A-Za-z0-9_-]{1,64}$/.test(target)) {
          throw new KluisError('E_DASHBOARD_REQUEST', 'no ticket for that path');
        }
        return sendJson(res, 200, { url: `${target}?ticket=${tickets.issue(target)}` });
      }
      if (p === '/api/retry') {
        const body = await readJsonBody(req);
        const ref = { batchId: str(body.batchId, 'batchId'), object: str(body.object, 'object'), target: str(body.target, 'target') };
        requeueDelivery(station, ref);
        dirty = true;
        const how = await workOutbox(ref.batchId);
        const d = station.journal.deliveries(ref.batchId).find((x) => x.object_key === ref.object && x.target === ref.target);
        dirty = true;
        return sendJson(res, 200, { ok: true, state: d?.state ?? 'pending', worked: how });
      }
      if (p === '/api/verify') {
        const body = await readJsonBody(req);
        const batchId = str(body.batchId, 'batchId');
        if (!station.journal.batch(batchId)) throw new KluisError('E_DASHBOARD_NOT_FOUND', `no batch ${batchId} on this station`);
        const v = runVerify(batchId);
        return sendJson(res, 202, { ok: true, running: v.running, startedAt: v.startedAt });
      }
      return deny(res, 404);
    }
    if (method !== 'GET' && method !== 'HEAD') return deny(res, 405);

    if (p === '/') return send(res, 200, pageHtml(), 'text/html; charset=utf-8');
    if (p === '/api/session') return sendJson(res, 200, { station: station.config.station, csrf });
    if (p === '/app.js') return send(res, 200, PAGE_JS, 'text/javascript; charset=utf-8');
    if (p === '/app.css') return send(res, 200, PAGE_CSS, 'text/css; charset=utf-8');
    if (p === '/api/texts') return sendJson(res, 200, TEXTS);
    if (p === '/favicon.ico') return deny(res, 204);
    if (p === '/api/state') return send(res, 200, current(), 'application/json; charset=utf-8');
    if (p === '/api/events') {
      res.writeHead(200, { ...securityHeaders(), 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      res.write(`retry: 2000\n\nevent: state\ndata: ${current()}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    let m = /^\/api\/batch\/([A-Za-z0-9_-]{1,64})$/.exec(p);
    if (m) {
      const batchId = m[1]!;
      if (!station.journal.batch(batchId)) return sendError(res, 404, new KluisError('E_DASHBOARD_NOT_FOUND', `no batch ${batchId}`));
      return sendJson(res, 200, stationStatus(station, batchId));
    }
    m = /^\/batch\/([A-Za-z0-9_-]{1,64})\/report(\.json)?$/.exec(p);
    if (m) {
      const batchId = m[1]!;
      if (!station.journal.batch(batchId)) return sendError(res, 404, new KluisError('E_DASHBOARD_NOT_FOUND', `no batch ${batchId}`));
      const thumbs = new Map<string, Buffer>();
      for (const f of station.journal.files(batchId)) {
        const b = f.thumb_path ? await readThumb(station, batchId, f.thumb_path) : null;
        if (b) thumbs.set(f.path, b);
      }
      const report = buildReport(reportData(station, batchId, thumbs));
      if (m[2]) return send(res, 200, report.json, 'application/json; charset=utf-8');
      return send(res, 200, report.html, 'text/html; charset=utf-8', CSP_REPORT);
    }
    m = /^\/thumb\/([A-Za-z0-9_-]{1,64})$/.exec(p);
    if (m) {
      const batchId = m[1]!;
      const filePath = url.searchParams.get('path') ?? '';
      const f = station.journal.file(batchId, filePath);
      const buf = f?.thumb_path ? await readThumb(station, batchId, f.thumb_path) : null;
      if (!buf) return deny(res, 404);
      return send(res, 200, buf, 'image/jpeg');
    }
    return deny(res, 404);
  };

  const server = http.createServer((req, res) => {
    // The token cookie of older versions reached every local port: delete it wherever it shows up.
    const clear = clearStaleCookie(req, port);
    if (clear) res.setHeader('Set-Cookie', clear);
    const verdict = gate(req, { token, hosts, allowRemoteClients: allowRemote, tickets });
    if (!verdict.ok) return deny(res, verdict.status);
    const url = new URL(req.url ?? '/', 'http://localhost');
    route(req, res, url).catch((err) => {
      const e = asKluisError(err, 'E_DASHBOARD_INTERNAL');
      const status = e.code === 'E_DASHBOARD_NOT_FOUND' ? 404 : e.code === 'E_DASHBOARD_REQUEST' ? 400 : e.code === 'E_DASHBOARD_REFUSED' || e.code === 'E_DASHBOARD_NOTHING_TO_DO' ? 409 : 500;
      if (res.headersSent) res.end();
      else sendError(res, status, e);
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        err.code === 'EADDRINUSE'
          ? new KluisError('E_DASHBOARD_PORT', `port ${opts.port ?? 0} on ${bind} is in use`, { hint: 'choose another --port, or stop the other dashboard' })
          : new KluisError('E_DASHBOARD_LISTEN', `cannot listen on ${bind}: ${err.message}`, { cause: err }),
      );
    };
    server.once('error', onError);
    server.listen(opts.port ?? 0, bind, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // The journal is polled only once we listen: a start that fails (port in use) leaves no timer
  // behind to read a station the caller is about to close.
  const poller = setInterval(poll, opts.pollMs ?? 300);
  port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(port, bind);
  const shownHost = bind === '::1' ? '[::1]' : bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind.includes(':') ? `[${bind}]` : bind;
  const url = `http://${shownHost}:${port}/`;

  return {
    url,
    loginUrl: `${url}#token=${token}`,
    port,
    token,
    async close() {
      clearInterval(poller);
      for (const s of streams) s.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A thumbnail, only from this batch's thumbs folder in the spool (never a path from elsewhere). */
async function readThumb(station: Station, batchId: string, thumbPath: string): Promise<Buffer | null> {
  const dir = spoolPaths(station.layout.spoolDir, batchId).thumbs;
  const resolved = path.resolve(thumbPath);
  if (path.dirname(resolved) !== path.resolve(dir)) return null;
  try {
    return await fsp.readFile(resolved);
  } catch {
    return null;
  }
}
