/**
 * The egress guard at connect time, offline: HTTPS servers (self-signed, pinned) on 127.0.0.2 and
 * 127.0.0.3, a test IP-to-country table placing the first in NL and the second in DE, and an
 * injected resolver (nl.test → .2, abroad.test → .3, both.test → both). Each server counts the
 * connections and request bytes it got, so "zero bytes sent" is measured, not assumed.
 * Only loopback addresses are ever connected to.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { EgressGuard, type Refusal, type Resolver } from '../../src/targets/egress.js';
import { countryTableOf } from '../../src/targets/country.js';
import { countryMmdb } from '../helpers/mmdb.js';
import { createGuardedAgents, send, readBody } from '../../src/targets/http.js';
import { openTarget } from '../../src/targets/index.js';
import { EgressSchema, TargetConfigSchema } from '../../src/config/schema.js';
import { KluisError } from '../../src/errors.js';

interface Srv {
  ip: string;
  port: number;
  connections: number;
  requests: number;
  bodyBytes: number;
  server: https.Server;
  redirect: boolean;
}

let dir = '';
let cert = '';
let key = '';
let pin = '';
const servers: Record<'nl' | 'de', Srv> = {} as Record<'nl' | 'de', Srv>;

const table = countryTableOf(
  countryMmdb([
    ['127.0.0.2/32', 'NL'],
    ['127.0.0.3/32', 'DE'],
  ]),
  'test table',
);

let resolverCalls = 0;
const resolver: Resolver = async (h) => {
  resolverCalls++;
  const map: Record<string, string[]> = {
    'nl.test': ['127.0.0.2'],
    'abroad.test': ['127.0.0.3'],
    'both.test': ['127.0.0.2', '127.0.0.3'],
  };
  return (map[h] ?? []).map((address) => ({ address, family: 4 as const }));
};

async function startServer(ip: string): Promise<Srv> {
  const s: Srv = { ip, port: 0, connections: 0, requests: 0, bodyBytes: 0, server: undefined as unknown as https.Server, redirect: false };
  s.server = https.createServer({ cert, key }, (req, res) => {
    s.requests++;
    req.on('data', (c: Buffer) => (s.bodyBytes += c.length));
    req.on('end', () => {
      if (s.redirect) {
        res.writeHead(302, { Location: 'https://elsewhere.example/' });
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`hello from ${ip}`);
    });
  });
  s.server.on('connection', () => s.connections++);
  await new Promise<void>((resolve) => s.server.listen(0, ip, resolve));
  s.port = (s.server.address() as net.AddressInfo).port;
  return s;
}

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-egress-'));
  // One self-signed certificate for all names and loopback addresses used here (openssl, a real tool).
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=kluis egress test',
    '-addext', 'subjectAltName=DNS:nl.test,DNS:abroad.test,DNS:both.test,IP:127.0.0.2,IP:127.0.0.3',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  cert = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  key = readFileSync(path.join(dir, 'key.pem'), 'utf8');
  const spki = execFileSync('sh', ['-c', `openssl x509 -in '${path.join(dir, 'cert.pem')}' -pubkey -noout | openssl pkey -pubin -outform der`]);
  pin = createHash('sha256').update(spki).digest('base64');
  servers.nl = await startServer('127.0.0.2');
  servers.de = await startServer('127.0.0.3');
});

afterAll(async () => {
  for (const s of Object.values(servers)) await new Promise((r) => s.server.close(r));
  await fsp.rm(dir, { recursive: true, force: true });
});

function reset(): void {
  for (const s of Object.values(servers)) {
    s.connections = 0;
    s.requests = 0;
    s.bodyBytes = 0;
    s.redirect = false;
  }
  resolverCalls = 0;
}

function mkGuard(refusals: Refusal[], cls: 'cloud' | 'onprem' = 'cloud'): EgressGuard {
  return new EgressGuard({
    target: 'dutch-cloud',
    targetClass: cls,
    egress: EgressSchema.parse({}),
    configDir: dir,
    countryTable: table,
    resolver,
    onRefusal: (r) => refusals.push(r),
  });
}

function payload(n: number): Buffer {
  return Buffer.alloc(n, 0x5a);
}

async function rejected(p: Promise<unknown>): Promise<KluisError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(KluisError);
  return e as KluisError;
}

describe('egress guard at connect time (HTTPS on 127.0.0.2 = NL, 127.0.0.3 = DE)', () => {
  it('connects to the NL server, with the pin, and the body arrives', async () => {
    reset();
    const refusals: Refusal[] = [];
    const g = mkGuard(refusals);
    const agents = createGuardedAgents({ guard: g, ca: cert, tlsPin: pin });
    try {
      const res = await send(agents, g, { method: 'PUT', url: new URL(`https://nl.test:${servers.nl.port}/x`), headers: { 'Content-Length': 1000 }, body: Readable.from([payload(1000)]) });
      expect(res.statusCode).toBe(200);
      expect((await readBody(res)).toString()).toBe('hello from 127.0.0.2');
      expect(servers.nl.bodyBytes).toBe(1000);
      expect(servers.de.connections).toBe(0);
      expect(refusals).toEqual([]);
    } finally {
      agents.destroy();
    }
  });

  it('refuses the server placed in DE: zero connections, zero bytes, refusal reported with the address', async () => {
    reset();
    const refusals: Refusal[] = [];
    const g = mkGuard(refusals);
    const agents = createGuardedAgents({ guard: g, ca: cert });
    try {
      const e = await rejected(send(agents, g, { method: 'PUT', url: new URL(`https://abroad.test:${servers.de.port}/x`), headers: { 'Content-Length': 1000 }, body: Readable.from([payload(1000)]) }));
      expect(e.code).toBe('E_EGRESS_COUNTRY');
      expect(servers.de.connections).toBe(0);
      expect(servers.de.bodyBytes).toBe(0);
      expect(refusals).toEqual([expect.objectContaining({ target: 'dutch-cloud', host: 'abroad.test', address: '127.0.0.3', code: 'E_EGRESS_COUNTRY' })]);
    } finally {
      agents.destroy();
    }
  });

  it('refuses a name resolving to both NL and DE: no connection to either', async () => {
    reset();
    const refusals: Refusal[] = [];
    const g = mkGuard(refusals);
    const agents = createGuardedAgents({ guard: g, ca: cert });
    try {
      const e = await rejected(send(agents, g, { method: 'GET', url: new URL(`https://both.test:${servers.nl.port}/`) }));
      expect(e.code).toBe('E_EGRESS_COUNTRY');
      expect(servers.nl.connections + servers.de.connections).toBe(0);
      expect(refusals[0]?.address).toBe('127.0.0.3');
    } finally {
      agents.destroy();
    }
  });

  it('refuses an IP literal outside the allowed countries (no DNS involved)', async () => {
    reset();
    const refusals: Refusal[] = [];
    const g = mkGuard(refusals);
    const agents = createGuardedAgents({ guard: g, ca: cert });
    try {
      expect((await rejected(send(agents, g, { method: 'GET', url: new URL(`https://127.0.0.3:${servers.de.port}/`) }))).code).toBe('E_EGRESS_COUNTRY');
      expect(servers.de.connections).toBe(0);
      const ok = await send(agents, g, { method: 'GET', url: new URL(`https://127.0.0.2:${servers.nl.port}/`) });
      expect(ok.statusCode).toBe(200);
      ok.resume();
    } finally {
      agents.destroy();
    }
  });

  it('a wrong TLS pin fails the handshake before any request byte is sent', async () => {
    reset();
    const refusals: Refusal[] = [];
    const g = mkGuard(refusals);
    const agents = createGuardedAgents({ guard: g, ca: cert, tlsPin: Buffer.alloc(32, 1).toString('base64') });
    try {
      const e = await rejected(send(agents, g, { method: 'PUT', url: new URL(`https://nl.test:${servers.nl.port}/x`), headers: { 'Content-Length': 1000 }, body: Readable.from([payload(1000)]) }));
      expect(e.code).toBe('E_EGRESS_PIN');
      expect(servers.nl.requests).toBe(0);
      expect(servers.nl.bodyBytes).toBe(0);
      expect(refusals.map((r) => r.code)).toEqual(['E_EGRESS_PIN']);
    } finally {
      agents.destroy();
    }
  });

  it('without the CA the self-signed server is not trusted', async () => {
    reset();
    const g = mkGuard([]);
    const agents = createGuardedAgents({ guard: g });
    try {
      const e = await send(agents, g, { method: 'GET', url: new URL(`https://nl.test:${servers.nl.port}/`) }).then(
        () => undefined,
        (x: unknown) => x as NodeJS.ErrnoException,
      );
      expect(e?.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
      expect(servers.nl.requests).toBe(0);
    } finally {
      agents.destroy();
    }
  });

  it('refuses a redirect and does not follow it', async () => {
    reset();
    servers.nl.redirect = true;
    const refusals: Refusal[] = [];
    const g = mkGuard(refusals);
    const agents = createGuardedAgents({ guard: g, ca: cert });
    try {
      expect((await rejected(send(agents, g, { method: 'GET', url: new URL(`https://nl.test:${servers.nl.port}/`) }))).code).toBe('E_EGRESS_REDIRECT');
      expect(servers.nl.requests).toBe(1);
      expect(refusals.map((r) => r.code)).toEqual(['E_EGRESS_REDIRECT']);
    } finally {
      agents.destroy();
    }
  });

  it('ignores HTTPS_PROXY/HTTP_PROXY: the request goes direct', async () => {
    reset();
    const saved = { a: process.env.HTTPS_PROXY, b: process.env.HTTP_PROXY, c: process.env.https_proxy };
    process.env.HTTPS_PROXY = process.env.HTTP_PROXY = process.env.https_proxy = 'http://127.0.0.1:9';
    const g = mkGuard([]);
    const agents = createGuardedAgents({ guard: g, ca: cert, tlsPin: pin });
    try {
      const res = await send(agents, g, { method: 'GET', url: new URL(`https://nl.test:${servers.nl.port}/`) });
      expect(res.statusCode).toBe(200);
      res.resume();
      expect(servers.nl.requests).toBe(1);
    } finally {
      agents.destroy();
      for (const [k, v] of [['HTTPS_PROXY', saved.a], ['HTTP_PROXY', saved.b], ['https_proxy', saved.c]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('resolves once per connection and connects to the checked address (a rebinding resolver cannot redirect it)', async () => {
    reset();
    let calls = 0;
    const rebinding: Resolver = async () => {
      calls++;
      return [{ address: calls === 1 ? '127.0.0.2' : '127.0.0.3', family: 4 }];
    };
    const g = new EgressGuard({ target: 'c', targetClass: 'cloud', egress: EgressSchema.parse({}), configDir: dir, countryTable: table, resolver: rebinding });
    const agents = createGuardedAgents({ guard: g, ca: cert });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await send(agents, g, { method: 'GET', url: new URL(`https://nl.test:${servers.nl.port}/`) });
        expect((await readBody(res)).toString()).toBe('hello from 127.0.0.2');
      }
      expect(calls).toBe(servers.nl.connections);
      expect(servers.de.connections).toBe(0);
    } finally {
      agents.destroy();
    }
  });
});

describe('targets refuse through the guard with zero bytes sent', () => {
  const ctx = (refusals: Refusal[]) => ({ configDir: dir, egress: EgressSchema.parse({}), countryTable: table, resolver, onRefusal: (r: Refusal) => refusals.push(r), env: { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' } });
  const put = (t: ReturnType<typeof openTarget>) =>
    t.put('batch/obj', () => Readable.from([payload(4096)]), { size: 4096, sha256: createHash('sha256').update(payload(4096)).digest('hex') });

  it('WebDAV cloud target abroad: E_EGRESS_COUNTRY, server got nothing, refusal reported', async () => {
    reset();
    const refusals: Refusal[] = [];
    await fsp.writeFile(path.join(dir, 'ca.pem'), cert);
    const t = openTarget(TargetConfigSchema.parse({ name: 'dav-de', type: 'webdav', url: `https://abroad.test:${servers.de.port}/dav/`, class: 'cloud', caFile: 'ca.pem' }), ctx(refusals));
    try {
      expect((await rejected(put(t))).code).toBe('E_EGRESS_COUNTRY');
      expect(servers.de.connections).toBe(0);
      expect(refusals[0]).toMatchObject({ target: 'dav-de', address: '127.0.0.3' });
      const probe = await t.probe();
      expect(probe.ok).toBe(false);
      expect(probe.addresses).toEqual([expect.objectContaining({ address: '127.0.0.3', country: 'DE', allowed: false })]);
    } finally {
      await t.close();
    }
  });

  it('S3 cloud target abroad: E_EGRESS_COUNTRY through the SDK, server got nothing', async () => {
    reset();
    const refusals: Refusal[] = [];
    const t = openTarget(TargetConfigSchema.parse({ name: 's3-de', type: 's3', url: `https://abroad.test:${servers.de.port}`, bucket: 'b', class: 'cloud', caFile: 'ca.pem' }), ctx(refusals));
    try {
      expect((await rejected(put(t))).code).toBe('E_EGRESS_COUNTRY');
      expect(servers.de.connections).toBe(0);
      expect(refusals.length).toBeGreaterThan(0);
      expect(refusals.every((r) => r.code === 'E_EGRESS_COUNTRY' && r.target === 's3-de')).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('cloud targets over plain http and vendor endpoints are refused without resolving', async () => {
    reset();
    for (const [url, code] of [
      [`http://nl.test:${servers.nl.port}/`, 'E_EGRESS_PLAINTEXT'],
      [`https://upload.dji.com/`, 'E_EGRESS_VENDOR'],
      [`https://eu.skypixel.com/bucket`, 'E_EGRESS_VENDOR'],
    ] as const) {
      for (const type of ['webdav', 's3'] as const) {
        const refusals: Refusal[] = [];
        const t = openTarget(TargetConfigSchema.parse({ name: 'x', type, url, bucket: 'b', class: 'cloud' }), ctx(refusals));
        try {
          expect((await rejected(put(t))).code).toBe(code);
          expect(refusals.map((r) => r.code)).toEqual([code]);
        } finally {
          await t.close();
        }
      }
    }
    expect(resolverCalls).toBe(0);
    expect(servers.nl.connections).toBe(0);
  });
});
