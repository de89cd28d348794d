// The dashboard's gate, check by check: loopback-only clients and binds, Host header against
// DNS rebinding, the token (query once, then cookie or Bearer), and the CSRF check on actions.
import { describe, it, expect } from 'vitest';
import {
  actionAllowed,
  allowedHosts,
  checkBindAddress,
  csrfFor,
  gate,
  isLoopbackAddress,
  newToken,
  sessionCookie,
} from '../../src/dashboard/security.js';
import { KluisError } from '../../src/errors.js';
import { TEXTS, t } from '../../src/dashboard/i18n.js';

const token = newToken();
const port = 40123;
const hosts = allowedHosts(port);
const opts = { token, port, hosts, allowRemoteClients: false };

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
    expect(gate(req({ remote: '::ffff:127.0.0.1', auth: `Bearer ${token}` }), opts)).toEqual({ ok: true, fromQuery: false });
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
  it('no token or a wrong one is 401', () => {
    expect(gate(req({}), opts)).toEqual({ ok: false, status: 401 });
    expect(gate(req({ url: '/?token=nope' }), opts)).toEqual({ ok: false, status: 401 });
    expect(gate(req({ auth: `Bearer ${token.slice(1)}x` }), opts)).toEqual({ ok: false, status: 401 });
    expect(gate(req({ cookie: `kluis_${port + 1}=${token}` }), opts)).toEqual({ ok: false, status: 401 });
  });

  it('accepts the token from the query (once), the cookie or a Bearer header', () => {
    expect(gate(req({ url: `/?token=${token}` }), opts)).toEqual({ ok: true, fromQuery: true });
    expect(gate(req({ cookie: `a=b; kluis_${port}=${token}` }), opts)).toEqual({ ok: true, fromQuery: false });
    expect(gate(req({ auth: `Bearer ${token}` }), opts)).toEqual({ ok: true, fromQuery: false });
  });

  it('the session cookie is HttpOnly and SameSite=Strict', () => {
    const c = sessionCookie(port, token);
    expect(c).toContain('HttpOnly');
    expect(c).toContain('SameSite=Strict');
    expect(c.startsWith(`kluis_${port}=${token};`)).toBe(true);
  });

  it('every start gets a different token', () => {
    expect(newToken()).not.toBe(newToken());
    expect(newToken().length).toBeGreaterThanOrEqual(43);
  });
});

describe('actions (CSRF)', () => {
  const good = { 'x-kluis-csrf': csrfFor(token), 'content-type': 'application/json', origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' };
  const a = (headers: Record<string, string>, method = 'POST') => actionAllowed({ method, headers }, { token, hosts });

  it('accepts a same-origin JSON POST with the CSRF value', () => {
    expect(a(good)).toBe(true);
    const { origin: _o, 'sec-fetch-site': _s, ...noFetchMeta } = good;
    expect(a(noFetchMeta)).toBe(true);
  });

  it('refuses a missing or wrong CSRF value, a form post, another origin or a cross-site fetch', () => {
    expect(a({ ...good, 'x-kluis-csrf': '' })).toBe(false);
    expect(a({ ...good, 'x-kluis-csrf': csrfFor(newToken()) })).toBe(false);
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
