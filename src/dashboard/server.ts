/**
 * The local dashboard server (plain node:http, through page-server.ts, which it shares with the
 * evidence desk). Every request first passes the gate in security.ts (loopback client, our Host,
 * the per-start token as a Bearer header, or a one-use ticket for a navigation); a request for
 * data that fails gets a bare 401/403 and nothing else. The page shell (no data; its script is
 * client/station.ts, bundled) is served without the token and asks for it when it has none or an
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
import type * as http from 'node:http';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError, asKluisError } from '../errors.js';
import type { Station } from '../pipeline/station.js';
import { spoolPaths } from '../pipeline/spool.js';
import { lockStation } from '../pipeline/lock.js';
import { reportData } from '../pipeline/finalize.js';
import { buildReport } from '../evidence/report.js';
import { stationStatus } from '../pipeline/status.js';
import { TEXTS } from './i18n.js';
import { pageHtml, PAGE_CSS } from './page.js';
import { deny, readJsonBody, send, sendError, sendJson, startPageServer, type PageServer } from './page-server.js';
import { CSP_REPORT, Tickets, securityHeaders } from './security.js';
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

/** The address with the token (in the fragment, which a browser never sends) is `loginUrl`, to print for the operator. */
export type DashboardServer = PageServer;

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 512) throw new KluisError('E_DASHBOARD_REQUEST', `field ${field} is missing or invalid`);
  return v;
}

export async function startDashboard(station: Station, opts: DashboardOptions = {}): Promise<DashboardServer> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`kluis: ${l}\n`));
  const tickets = new Tickets();
  const tracker = new EventTracker();
  seedTracker(station, tracker);
  const verifies = new Map<string, VerifyView>();
  const streams = new Set<http.ServerResponse>();
  const emit = journalSink(station);
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

  const post = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    if (p === '/api/ticket') {
      // A ticket lets the page open the report or the status JSON in a new tab (a navigation
      // cannot carry the token header): one use, this path only, for a minute.
      const body = await readJsonBody(req, 'E_DASHBOARD_REQUEST');
      const target = str(body.path, 'path');
      if (!/^\/batch\/[A-Za-z0-9_-]{1,64}\/report(\.json)?$|^\/api\/batch\/[A-Za-z0-9_-]{1,64}$/.test(target)) {
        throw new KluisError('E_DASHBOARD_REQUEST', 'no ticket for that path');
      }
      return sendJson(res, 200, { url: `${target}?ticket=${tickets.issue(target)}` });
    }
    if (p === '/api/retry') {
      const body = await readJsonBody(req, 'E_DASHBOARD_REQUEST');
      const ref = { batchId: str(body.batchId, 'batchId'), object: str(body.object, 'object'), target: str(body.target, 'target') };
      requeueDelivery(station, ref);
      dirty = true;
      const how = await workOutbox(ref.batchId);
      const d = station.journal.deliveries(ref.batchId).find((x) => x.object_key === ref.object && x.target === ref.target);
      dirty = true;
      return sendJson(res, 200, { ok: true, state: d?.state ?? 'pending', worked: how });
    }
    if (p === '/api/verify') {
      const body = await readJsonBody(req, 'E_DASHBOARD_REQUEST');
      const batchId = str(body.batchId, 'batchId');
      if (!station.journal.batch(batchId)) throw new KluisError('E_DASHBOARD_NOT_FOUND', `no batch ${batchId} on this station`);
      const v = runVerify(batchId);
      return sendJson(res, 202, { ok: true, running: v.running, startedAt: v.startedAt });
    }
    return deny(res, 404);
  };

  const get = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
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

  const server = await startPageServer({
    port: opts.port,
    bind: opts.bind,
    allowRemoteBind: opts.allowRemoteBind,
    log,
    name: 'dashboard',
    shell: { html: pageHtml(), script: 'station', css: PAGE_CSS, texts: TEXTS },
    session: { station: station.config.station },
    tickets,
    get,
    post,
    internalCode: 'E_DASHBOARD_INTERNAL',
    statusOf: (e) =>
      e.code === 'E_DASHBOARD_NOT_FOUND' ? 404 : e.code === 'E_DASHBOARD_REQUEST' ? 400 : e.code === 'E_DASHBOARD_REFUSED' || e.code === 'E_DASHBOARD_NOTHING_TO_DO' ? 409 : 500,
  });
  // The journal is polled only once we listen: a start that fails (port in use) leaves no timer
  // behind to read a station the caller is about to close.
  const poller = setInterval(poll, opts.pollMs ?? 300);
  return {
    ...server,
    async close() {
      clearInterval(poller);
      for (const s of streams) s.end();
      streams.clear();
      await server.close();
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
