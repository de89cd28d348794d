/**
 * The dashboard's gate. Pure functions, so each check is unit-tested on its own:
 *  - bind: loopback only, unless the admin passes --allow-remote-bind (then loudly);
 *  - client: the remote address must be loopback (same exception);
 *  - Host header: 127.0.0.1 / localhost / [::1] with our port, so a DNS-rebinding page on
 *    another name cannot talk to us;
 *  - token: a random per-start secret, from `?token=` once (then an HttpOnly SameSite=Strict
 *    cookie), or `Authorization: Bearer`; compared in constant time;
 *  - actions (POST): token, plus a CSRF value the page got from the server, plus Origin /
 *    Sec-Fetch-Site when the browser sends them, plus a JSON content type.
 *
 * Never: accepts a request that fails any check "just for reading"; a failed check gets a bare
 * status code and no body.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { KluisError } from '../errors.js';

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The CSRF value for a token: derived, so it needs no storage and changes with each start. */
export function csrfFor(token: string): string {
  return createHmac('sha256', token).update('kluis-dashboard-csrf').digest('base64url');
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

export function cookieName(port: number): string {
  // Cookies ignore ports: a per-port name keeps two stations on one host apart.
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

export function sessionCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}

/** The token a request carries: Bearer header, cookie, or (first visit) `?token=`. */
export function requestToken(req: Pick<IncomingMessage, 'headers' | 'url'>, port: number): { token?: string; fromQuery: boolean } {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return { token: auth.slice(7).trim(), fromQuery: false };
  const c = parseCookies(req.headers.cookie).get(cookieName(port));
  if (c) return { token: c, fromQuery: false };
  const q = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
  return q ? { token: q, fromQuery: true } : { fromQuery: false };
}

export type GateVerdict = { ok: true; fromQuery: boolean } | { ok: false; status: 401 | 403 };

export interface GateOptions {
  token: string;
  port: number;
  hosts: Set<string>;
  allowRemoteClients: boolean;
}

/** The checks every request passes before anything else runs. */
export function gate(req: Pick<IncomingMessage, 'headers' | 'url' | 'method'> & { socket: { remoteAddress?: string | undefined } }, o: GateOptions): GateVerdict {
  if (!o.allowRemoteClients && !isLoopbackAddress(req.socket.remoteAddress)) return { ok: false, status: 403 };
  if (!hostAllowed(req.headers.host, o.hosts)) return { ok: false, status: 403 };
  const { token, fromQuery } = requestToken(req, o.port);
  if (!sameSecret(token, o.token)) return { ok: false, status: 401 };
  return { ok: true, fromQuery };
}

/** Extra checks for state-changing requests (after `gate`). */
export function actionAllowed(req: Pick<IncomingMessage, 'headers' | 'method'>, o: { token: string; hosts: Set<string> }): boolean {
  if (req.method !== 'POST') return false;
  if (!sameSecret(headerValue(req.headers['x-kluis-csrf']), csrfFor(o.token))) return false;
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

export const CSP_PAGE = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
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
