// The dashboard's gate, check by check: loopback-only clients and binds, Host header against
// DNS rebinding, the token (a Bearer header only: never a cookie, never the address), one-use
// tickets for navigations, the page shell without data, and the CSRF check on actions.
import { describe, it, expect } from 'vitest';
import {
  Tickets,
  actionAllowed,
  allowedHosts,
  checkBindAddress,
  clearStaleCookie,
  gate,
  isLoopbackAddress,
  newCsrf,
  newToken,
} from '../../src/dashboard/security.js';
import { KluisError } from '../../src/errors.js';
import { TEXTS, t } from '../../src/dashboard/i18n.js';

const token = newToken();
const port = 40123;
const hosts = allowedHosts(port);
const opts = { token, hosts, allowRemoteClients: false };

function req(o: { remote?: string; host?: string; url?: string; cookie?: string; auth?: string; method?: string; headers?: Record<string, string> }) {
  return {
    method: o.method ?? 'GET',
    url: o.url ?? '/',
    socket: { remoteAddress: o.remote ?? '127.0.0.1' },
    headers: {
      ...(o.host !== undefined ? { host: o.host } : { host: `127.0.0.1:${port}` }),
      ...(o.cookie ? { cookie: o.cookie } : {}),
      ...(o.auth ? { authorization: o.auth } : {}),
      ...(o.headers ?? {}),
    },
  };
}

describe('loopback checks', () => {
  it('knows loopback addresses, including IPv4-mapped IPv6', () => {
    for (const a of ['127.0.0.1', '127.5.6.7', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['192.168.1.5', '10.0.0.1', '::ffff:192.168.1.5', 'fe80::1', '0.0.0.0', '', undefined, 'localhost.evil.example']) {
      expect(isLoopbackAddress(a), String(a)).toBe(false);
    }
  });

  it('refuses a non-loopback bind unless allowed, and then warns loudly', () => {
    expect(checkBindAddress('127.0.0.1', false)).toEqual({});
    expect(checkBindAddress('::1', false)).toEqual({});
    for (const a of ['0.0.0.0', '192.168.1.5', '::']) {
      expect(() => checkBindAddress(a, false)).toThrow(KluisError);
      try {
        checkBindAddress(a, false);
      } catch (e) {
        expect((e as KluisError).code).toBe('E_DASHBOARD_BIND');
        expect((e as KluisError).hint).toMatch(/allow-remote-bind/);
      }
    }
    expect(checkBindAddress('0.0.0.0', true).warning).toMatch(/NOT ONLY ON THIS COMPUTER/);
  });

  it('a client from a non-loopback address gets 403, even with the right token', () => {
    const v = gate(req({ remote: '192.168.1.77', auth: `Bearer ${token}` }), opts);
    expect(v).toEqual({ ok: false, status: 403 });
    const mapped = gate(req({ remote: '::ffff:10.1.2.3', auth: `Bearer ${token}` }), opts);
    expect(mapped).toEqual({ ok: false, status: 403 });
    expect(gate(req({ remote: '::ffff:127.0.0.1', auth: `Bearer ${token}` }), opts)).toEqual({ ok: true, via: 'token' });
  });
});

describe('Host header (DNS rebinding)', () => {
  it('accepts only 127.0.0.1, localhost and [::1] on our port', () => {
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      expect(gate(req({ host: h, auth: `Bearer ${token}` }), opts).ok, h).toBe(true);
    }
    for (const h of ['evil.example', `evil.example:${port}`, '127.0.0.1', `127.0.0.1:${port + 1}`, `localhost.evil.example:${port}`, '']) {
      expect(gate(req({ host: h, auth: `Bearer ${token}` }), opts), h).toEqual({ ok: false, status: 403 });
    }
  });
});

describe('token', () => {
  it('no token or a wrong one is 401 for data', () => {
    expect(gate(req({ url: '/api/state' }), opts)).toEqual({ ok: false, status: 401 });
    expect(gate(req({ url: '/api/state', auth: `Bearer ${token.slice(1)}x` }), opts)).toEqual({ ok: false, status: 401 });
  });

  it('is taken from the Bearer header only: never from a cookie or the address', () => {
    expect(gate(req({ url: '/api/state', auth: `Bearer ${token}` }), opts)).toEqual({ ok: true, via: 'token' });
    // A cookie would be sent by the browser to every port of 127.0.0.1; it is not a credential here.
    expect(gate(req({ url: '/api/state', cookie: `kluis_${port}=${token}` }), opts)).toEqual({ ok: false, status: 401 });
    expect(gate(req({ url: `/api/state?token=${token}` }), opts)).toEqual({ ok: false, status: 401 });
    expect(gate(req({ url: '/thumb/b1?path=x', cookie: `kluis_${port}=${token}` }), opts)).toEqual({ ok: false, status: 401 });
  });

  it('serves the page shell (no data) without a token, so a stale login always meets a way in', () => {
    for (const p of ['/', '/app.js', '/app.css', '/api/texts', `/?token=${token}`]) expect(gate(req({ url: p }), opts), p).toEqual({ ok: true, via: 'public' });
    for (const p of ['/api/state', '/api/events', '/api/session', '/api/batch/b1', '/batch/b1/report', '/thumb/b1']) expect(gate(req({ url: p }), opts), p).toEqual({ ok: false, status: 401 });
    expect(gate(req({ url: '/', method: 'POST' }), opts)).toEqual({ ok: false, status: 401 });
    // Host and client checks still come first.
    expect(gate(req({ url: '/', host: `evil.example:${port}` }), opts)).toEqual({ ok: false, status: 403 });
  });

  it('a ticket opens exactly its path, once', () => {
    const tickets = new Tickets();
    const o = { ...opts, tickets };
    const t = tickets.issue('/batch/b1/report');
    expect(gate(req({ url: `/batch/b2/report?ticket=${t}` }), o)).toEqual({ ok: false, status: 401 }); // wrong path: spent
    const t2 = tickets.issue('/batch/b1/report');
    expect(gate(req({ url: `/batch/b1/report?ticket=${t2}` }), o)).toEqual({ ok: true, via: 'ticket' });
    expect(gate(req({ url: `/batch/b1/report?ticket=${t2}` }), o)).toEqual({ ok: false, status: 401 }); // used
    expect(gate(req({ url: `/batch/b1/report?ticket=${t2}`, method: 'POST' }), o)).toEqual({ ok: false, status: 401 });
  });

  it('an expired ticket is refused', () => {
    const tickets = new Tickets(-1);
    const t = tickets.issue('/api/batch/b1');
    expect(gate(req({ url: `/api/batch/b1?ticket=${t}` }), { ...opts, tickets })).toEqual({ ok: false, status: 401 });
  });

  it('the token cookie of older versions is deleted when a request still carries it', () => {
    const c = clearStaleCookie(req({ cookie: `a=b; kluis_${port}=${token}` }), port)!;
    expect(c).toMatch(new RegExp(`^kluis_${port}=; Max-Age=0;`));
    expect(clearStaleCookie(req({ cookie: 'a=b' }), port)).toBeUndefined();
    expect(clearStaleCookie(req({}), port)).toBeUndefined();
  });

  it('every start gets a different token', () => {
    expect(newToken()).not.toBe(newToken());
    expect(newToken().length).toBeGreaterThanOrEqual(43);
  });
});

describe('actions (CSRF)', () => {
  const csrf = newCsrf();
  const good = { authorization: `Bearer ${token}`, 'x-kluis-csrf': csrf, 'content-type': 'application/json', origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' };
  const a = (headers: Record<string, string>, method = 'POST') => actionAllowed({ method, headers }, { token, csrf, hosts });

  it('accepts a same-origin JSON POST with the CSRF value', () => {
    expect(a(good)).toBe(true);
    const { origin: _o, 'sec-fetch-site': _s, ...noFetchMeta } = good;
    expect(a(noFetchMeta)).toBe(true);
  });

  it('refuses a missing or wrong CSRF value, a form post, another origin or a cross-site fetch', () => {
    expect(a({ ...good, 'x-kluis-csrf': '' })).toBe(false);
    expect(a({ ...good, 'x-kluis-csrf': newCsrf() })).toBe(false);
    const { authorization: _a, ...noToken } = good;
    expect(a({ ...noToken, cookie: `kluis_${port}=${token}` })).toBe(false); // a cookie is no credential
    expect(newCsrf()).not.toBe(newCsrf());
    expect(a({ ...good, 'content-type': 'application/x-www-form-urlencoded' })).toBe(false);
    expect(a({ ...good, origin: 'http://evil.example' })).toBe(false);
    expect(a({ ...good, origin: 'null' })).toBe(false);
    expect(a({ ...good, 'sec-fetch-site': 'cross-site' })).toBe(false);
    expect(a(good, 'GET')).toBe(false);
  });
});

describe('texts', () => {
  it('Dutch and English have the same keys, none empty, and placeholders are filled', () => {
    expect(Object.keys(TEXTS.en).sort()).toEqual(Object.keys(TEXTS.nl).sort());
    for (const lang of ['nl', 'en'] as const) for (const [k, v] of Object.entries(TEXTS[lang])) expect(v.trim(), `${lang}.${k}`).not.toBe('');
    expect(t('nl', 'state.missingDetail', { n: 3 })).toContain('Nog 3 bestand');
    expect(t('en', 'filesOf', { done: 1, total: 2 })).toBe('1 of 2 files');
  });
});
