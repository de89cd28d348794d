/**
 * The dashboard's gate. Pure functions (and one small ticket store), so each check is
 * unit-tested on its own:
 *  - bind: loopback only, unless the admin passes --allow-remote-bind (then loudly);
 *  - client: the remote address must be loopback (same exception);
 *  - Host header: 127.0.0.1 / localhost / [::1] with our port, so a DNS-rebinding page on
 *    another name cannot talk to us;
 *  - token: a random per-start secret, sent only as `Authorization: Bearer` (the page keeps it
 *    in its own sessionStorage, which is per origin, so per port). No cookie carries it:
 *    browsers send cookies to every port of a host, so a cookie would reach any other local
 *    service the operator's browser visits. The page shell itself (HTML, script, style, texts)
 *    holds no station data and is served without the token, so a stale or missing token always
 *    meets a page that says how to log in, never a bare 401;
 *  - tickets: a navigation (report, status JSON) cannot carry a header, so the page asks for a
 *    ticket (an action, below) valid once, for one path, for a minute;
 *  - actions (POST): token, plus a CSRF value (random per start, not derived from anything a
 *    browser sends by itself; the page gets it from an authenticated request), plus Origin /
 *    Sec-Fetch-Site when the browser sends them, plus a JSON content type.
 *
 * Never: accepts a request for data that fails any check "just for reading"; a failed check
 * gets a bare status code and no body.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { KluisError } from '../errors.js';

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A CSRF value: random per start, independent of the token (nothing a browser sends by itself). */
export function newCsrf(): string {
  return randomBytes(32).toString('base64url');
}

export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  let a = addr.trim();
  if (a.startsWith('::ffff:')) a = a.slice(7); // IPv4-mapped IPv6
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  if (isIP(a) === 4) return a.split('.')[0] === '127';
  return false;
}

/**
 * Checks a bind address. Loopback passes; anything else throws E_DASHBOARD_BIND unless
 * `allowRemote`, in which case it returns a warning to print.
 */
export function checkBindAddress(addr: string, allowRemote: boolean): { warning?: string } {
  if (isLoopbackAddress(addr)) return {};
  if (addr === 'localhost') return {};
  if (!allowRemote) {
    throw new KluisError('E_DASHBOARD_BIND', `refusing to serve the dashboard on ${addr}: only loopback (127.0.0.1, ::1) is allowed`, {
      hint: 'leave --bind out (127.0.0.1); only an admin who has firewalled the station may add --allow-remote-bind',
    });
  }
  return {
    warning:
      `THE DASHBOARD LISTENS ON ${addr}, NOT ONLY ON THIS COMPUTER. Anyone on that network who gets the token sees every card, ` +
      'file name and target of this station. Use this only behind a firewall you control.',
  };
}

/** Host names a browser may use to reach us; with a remote bind, that address too. */
export function allowedHosts(port: number, bind?: string): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]'];
  if (bind && !isLoopbackAddress(bind) && bind !== 'localhost') names.push(isIP(bind) === 6 ? `[${bind}]` : bind);
  return new Set(names.map((n) => `${n}:${port}`));
}

export function hostAllowed(host: string | undefined, allowed: Set<string>): boolean {
  if (!host) return false;
  return allowed.has(host.toLowerCase());
}

export function sameSecret(given: string | undefined | null, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The cookie versions before this one set (it held the token and was sent to every local port).
 * Never set now; a response to a request that still carries it deletes it.
 */
export function staleCookieName(port: number): string {
  return `kluis_${port}`;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** The Set-Cookie value that deletes the stale token cookie, when the request carries one. */
export function clearStaleCookie(req: Pick<IncomingMessage, 'headers'>, port: number): string | undefined {
  const name = staleCookieName(port);
  return parseCookies(req.headers.cookie).has(name) ? `${name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict` : undefined;
}

/** Paths served without the token: the page shell, its script, style and texts. No station data. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/', '/app.js', '/app.css', '/api/texts', '/favicon.ico']);

/** The token a request carries: only ever the Bearer header (never a cookie, never the address). */
export function requestToken(req: Pick<IncomingMessage, 'headers'>): string | undefined {
  const auth = headerValue(req.headers.authorization);
  return auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
}

/** One-use tickets for a navigation to one path (report, status JSON), valid for a minute. */
export class Tickets {
  private readonly open = new Map<string, { path: string; until: number }>();

  constructor(private readonly ttlMs = 60_000, private readonly max = 64) {}

  issue(path: string): string {
    const now = Date.now();
    for (const [k, v] of this.open) if (v.until <= now) this.open.delete(k);
    while (this.open.size >= this.max) this.open.delete(this.open.keys().next().value!);
    const t = randomBytes(24).toString('base64url');
    this.open.set(t, { path, until: now + this.ttlMs });
    return t;
  }

  /** True once for a live ticket issued for exactly `path`; the ticket is spent either way. */
  take(ticket: string, path: string): boolean {
    const v = this.open.get(ticket);
    if (!v) return false;
    this.open.delete(ticket);
    return v.path === path && v.until > Date.now();
  }
}

export type GateVerdict = { ok: true; via: 'public' | 'token' | 'ticket' } | { ok: false; status: 401 | 403 };

export interface GateOptions {
  token: string;
  hosts: Set<string>;
  allowRemoteClients: boolean;
  tickets?: Tickets;
}

/** The checks every request passes before anything else runs. */
export function gate(req: Pick<IncomingMessage, 'headers' | 'url' | 'method'> & { socket: { remoteAddress?: string | undefined } }, o: GateOptions): GateVerdict {
  if (!o.allowRemoteClients && !isLoopbackAddress(req.socket.remoteAddress)) return { ok: false, status: 403 };
  if (!hostAllowed(req.headers.host, o.hosts)) return { ok: false, status: 403 };
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://x');
  if (sameSecret(requestToken(req), o.token)) return { ok: true, via: 'token' };
  if (method === 'GET' || method === 'HEAD') {
    if (PUBLIC_PATHS.has(url.pathname)) return { ok: true, via: 'public' };
    const ticket = url.searchParams.get('ticket');
    if (ticket && o.tickets?.take(ticket, url.pathname)) return { ok: true, via: 'ticket' };
  }
  return { ok: false, status: 401 };
}

/** Extra checks for state-changing requests (after `gate`). */
export function actionAllowed(req: Pick<IncomingMessage, 'headers' | 'method'>, o: { token: string; csrf: string; hosts: Set<string> }): boolean {
  if (req.method !== 'POST') return false;
  if (!sameSecret(requestToken(req), o.token)) return false;
  if (!sameSecret(headerValue(req.headers['x-kluis-csrf']), o.csrf)) return false;
  const ct = headerValue(req.headers['content-type']) ?? '';
  if (!ct.toLowerCase().startsWith('application/json')) return false;
  const origin = headerValue(req.headers.origin);
  if (origin !== undefined) {
    let host: string;
    try {
      const u = new URL(origin);
      if (u.protocol !== 'http:') return false;
      host = u.host;
    } catch {
      return false;
    }
    if (!o.hosts.has(host.toLowerCase())) return false;
  }
  const site = headerValue(req.headers['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin') return false;
  return true;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

// img-src blob: for thumbnails, which the page fetches with the token header and shows as blobs.
export const CSP_PAGE = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** The batch report carries its own inline CSS and data: thumbnails, and no script. */
export const CSP_REPORT = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function securityHeaders(csp: string = CSP_PAGE): OutgoingHttpHeaders {
  return {
    'Content-Security-Policy': csp,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=()',
    // Nothing the dashboard shows (thumbnails included) may linger in a browser cache.
    'Cache-Control': 'no-store',
  };
}
