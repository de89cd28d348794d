/**
 * What the station dashboard (server.ts) and the evidence desk (desk/server.ts) serve alike, on
 * plain node:http:
 *  - the gate of security.ts before anything else (a failed check gets a bare status code); a
 *    stale token cookie of older versions is deleted wherever it shows up;
 *  - the page shell, served without the token (security.ts PUBLIC_PATHS): the HTML, the page's
 *    script (bundled at build time from client/, read once at start), the style and the texts;
 *  - GET /api/session (the CSRF value, for an authenticated request only);
 *  - on every action (POST) the extra checks of `actionAllowed` (token, CSRF, origin, JSON);
 *  - replies with the security headers, JSON errors, and listening on the (loopback) address.
 * What each page answers besides is its own (`get`, `post`), as is how its errors map to a
 * status. No CORS headers, so no other origin may read a response.
 */
import * as http from 'node:http';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { KluisError, asKluisError, type ErrorCode } from '../errors.js';
import { CSP_PAGE, Tickets, actionAllowed, allowedHosts, checkBindAddress, clearStaleCookie, gate, newCsrf, newToken, securityHeaders } from './security.js';
import type { ErrorReply, SessionReply } from './wire.js';

const MAX_BODY = 8 * 1024;

export function send(res: http.ServerResponse, status: number, body: string | Buffer, type: string, csp = CSP_PAGE): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...securityHeaders(csp), 'Content-Type': type, 'Content-Length': buf.length });
  res.end(buf);
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

export function sendError(res: http.ServerResponse, status: number, err: KluisError): void {
  sendJson(res, status, { error: err.toJSON() } satisfies ErrorReply);
}

/** A refusal: status only, no body, no data. */
export function deny(res: http.ServerResponse, status: number): void {
  // 204 is used for the favicon only: nothing to send, nothing to log in the browser.
  res.writeHead(status, { 'Content-Length': 0, 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'none'" });
  res.end();
}

/** An action's body: a JSON object of at most 8 KiB, else `code` (the page's request error). */
export async function readJsonBody(req: http.IncomingMessage, code: 'E_DASHBOARD_REQUEST' | 'E_DESK_REQUEST'): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new KluisError(code, 'request body too large');
    chunks.push(c);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new KluisError(code, 'the request body is not a JSON object');
}

/**
 * A page's script, as `npm run build` bundled it from client/<name>.ts into
 * dist/dashboard/client/<name>.js. Found from the repository root, which is two folders up from
 * this module both in src/ (tests) and in dist/ (the command).
 */
async function pageScript(name: 'station' | 'desk'): Promise<string> {
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'dashboard', 'client', `${name}.js`);
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new KluisError('E_DASHBOARD_SCRIPT', `the page script ${file} is missing`, { cause: err, hint: 'build kluis with `npm run build`: it bundles the page scripts' });
  }
}

/** The page shell: served without the token, it holds no data and no secret. */
export interface PageShell {
  html: string;
  /** Which page's script (client/<name>.ts): read once at start. */
  script: 'station' | 'desk';
  css: string;
  texts: unknown;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void>;

export interface PageServerOptions {
  port?: number;
  bind?: string;
  /** Lets the server listen on a non-loopback address and serve non-loopback clients. */
  allowRemoteBind?: boolean;
  /** Lines for the user's terminal (warnings). */
  log: (line: string) => void;
  /** How the port-in-use hint calls the other server ("dashboard", "page"). */
  name: string;
  shell: PageShell;
  /** More of GET /api/session than the CSRF value. */
  session?: Record<string, unknown>;
  /** One-use tickets a navigation may carry instead of the token (the station's report). */
  tickets?: Tickets;
  /** The page's own GET and HEAD requests, after the gate. */
  get: Handler;
  /** The page's actions, after the gate and `actionAllowed`. */
  post: Handler;
  /** The code for an unexpected failure, and the status a route's error is answered with. */
  internalCode: ErrorCode;
  statusOf: (e: KluisError) => number;
}

export interface PageServer {
  /** The address with the token in its fragment (never sent to a server), to print for the user. */
  loginUrl: string;
  /** The address without the token. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

export async function startPageServer(o: PageServerOptions): Promise<PageServer> {
  const bind = o.bind ?? '127.0.0.1';
  const allowRemote = o.allowRemoteBind === true;
  const { warning } = checkBindAddress(bind, allowRemote);
  if (warning) o.log(`WARNING: ${warning}`);
  const script = await pageScript(o.shell.script);
  const token = newToken();
  const csrf = newCsrf();
  let port = 0;
  let hosts = new Set<string>();

  const route = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'POST') {
      if (!actionAllowed(req, { token, csrf, hosts })) return deny(res, 403);
      return o.post(req, res, url);
    }
    if (method !== 'GET' && method !== 'HEAD') return deny(res, 405);
    if (p === '/') return send(res, 200, o.shell.html, 'text/html; charset=utf-8');
    if (p === '/app.js') return send(res, 200, script, 'text/javascript; charset=utf-8');
    if (p === '/app.css') return send(res, 200, o.shell.css, 'text/css; charset=utf-8');
    if (p === '/api/texts') return sendJson(res, 200, o.shell.texts);
    if (p === '/favicon.ico') return deny(res, 204);
    if (p === '/api/session') return sendJson(res, 200, { ...o.session, csrf } satisfies SessionReply);
    return o.get(req, res, url);
  };

  const server = http.createServer((req, res) => {
    // The token cookie of older versions reached every local port: delete it wherever it shows up.
    const clear = clearStaleCookie(req, port);
    if (clear) res.setHeader('Set-Cookie', clear);
    const verdict = gate(req, { token, hosts, allowRemoteClients: allowRemote, ...(o.tickets ? { tickets: o.tickets } : {}) });
    if (!verdict.ok) return deny(res, verdict.status);
    const url = new URL(req.url ?? '/', 'http://localhost');
    route(req, res, url).catch((err) => {
      const e = asKluisError(err, o.internalCode);
      if (res.headersSent) res.end();
      else sendError(res, o.statusOf(e), e);
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        err.code === 'EADDRINUSE'
          ? new KluisError('E_DASHBOARD_PORT', `port ${o.port ?? 0} on ${bind} is in use`, { hint: `choose another --port, or stop the other ${o.name}` })
          : new KluisError('E_DASHBOARD_LISTEN', `cannot listen on ${bind}: ${err.message}`, { cause: err }),
      );
    };
    server.once('error', onError);
    server.listen(o.port ?? 0, bind, () => {
      server.off('error', onError);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(port, bind);
  // A wildcard bind is reached on loopback too, and a browser may refuse 0.0.0.0 as an address.
  const shownHost = bind === '::1' ? '[::1]' : bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind.includes(':') ? `[${bind}]` : bind;
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
