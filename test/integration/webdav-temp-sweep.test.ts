/**
 * The WebDAV target sweeps the temp uploads its dead writers left behind, against the real Apache
 * mod_dav of scripts/services/up.sh (see test/setup/services.ts; this file has no fs-only part,
 * so it fails without the services).
 *
 * The leftovers are made with plain authenticated HTTP (not through kluis): a temp of this host
 * whose pid is certainly dead (a child process that has exited), temps of live pids (this test
 * process, a sleeping child), another host's temp, a collection and names that only look like
 * temps. A kluis put into that collection must remove exactly the first.
 *
 * Failure injection is a plain-http loopback proxy in front of Apache that can answer chosen
 * requests itself (PROPFIND Depth 1, DELETE, PUT) with an error, so "the sweep failed" and "the
 * put failed" are made deterministically while everything else reaches the real server.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { openTarget, type TargetContext } from '../../src/targets/index.js';
import type { Target } from '../../src/targets/types.js';
import { EgressSchema, TargetConfigSchema } from '../../src/config/schema.js';
import { TEMP_HOST, TEMP_PREFIX } from '../../src/targets/common.js';
import { pidAlive } from '../../src/util/pid.js';
import { KluisError } from '../../src/errors.js';
import { loadServices } from '../setup/services.js';

const services = loadServices();
if (!services) throw new Error('webdav-temp-sweep needs the test services (WebDAV); it has no fs-only part');
const dav = services.webdav;
const base = new URL(dav.url.endsWith('/') ? dav.url : `${dav.url}/`);
const ca = readFileSync(dav.caFile);
const authHeader = `Basic ${Buffer.from(`${dav.username}:${dav.password}`).toString('base64')}`;
const upstream = new https.Agent({ ca, keepAlive: true });

let dir = '';
let deadPid = 0;
let sleeper: ChildProcess | undefined;
const hex = (): string => randomBytes(8).toString('hex');

// --- plain HTTP to Apache, independent of kluis ---------------------------------------------

function raw(method: string, rel: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const url = new URL(rel, base);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method, agent: upstream, headers: { Authorization: authHeader, ...headers, ...(body !== undefined ? { 'Content-Length': Buffer.byteLength(body) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function mkcol(rel: string): Promise<void> {
  const r = await raw('MKCOL', rel.endsWith('/') ? rel : `${rel}/`);
  expect(r.status, `MKCOL ${rel}`).toBe(201);
}

async function putRaw(rel: string, text: string): Promise<void> {
  const r = await raw('PUT', rel, text, { 'Content-Type': 'application/octet-stream' });
  expect([200, 201, 204], `PUT ${rel}`).toContain(r.status);
}

/** Whether a name exists on the server (PROPFIND Depth 0: 207 yes, 404 no). */
async function exists(rel: string): Promise<boolean> {
  const r = await raw('PROPFIND', rel, '', { Depth: '0' });
  if (r.status !== 207 && r.status !== 404) throw new Error(`PROPFIND ${rel}: HTTP ${r.status}`);
  return r.status === 207;
}

// --- kluis --------------------------------------------------------------------------------------

function ctx(): TargetContext {
  return { configDir: dir, egress: EgressSchema.parse({}), env: {} };
}

function openDav(url = base.href): Target {
  const tls = url.startsWith('https:') ? { caFile: dav.caFile, tlsPin: dav.pin } : {};
  return openTarget(
    TargetConfigSchema.parse({ name: 'dav', type: 'webdav', url, class: 'onprem', ...tls, credentials: { file: 'webdav.credentials' } }),
    ctx(),
  );
}

async function kluisPut(t: Target, key: string, text: string): Promise<void> {
  const buf = Buffer.from(text);
  await t.put(key, () => Readable.from([buf]), { size: buf.length, sha256: createHash('sha256').update(buf).digest('hex') });
}

async function readAll(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// --- a fault-injecting proxy (plain http on loopback → Apache over TLS) -----------------------

interface Proxy {
  url: string;
  /** Answer this request with `status` (after reading its body) instead of forwarding it. */
  fail: ((req: http.IncomingMessage) => number | undefined) | undefined;
  seen: Array<{ method: string; depth: string | undefined; path: string; status: number }>;
  close(): Promise<void>;
}

async function startProxy(): Promise<Proxy> {
  const p: Proxy = { url: '', fail: undefined, seen: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    const method = req.method ?? '';
    const depth = req.headers.depth as string | undefined;
    const injected = p.fail?.(req);
    if (injected !== undefined) {
      req.resume();
      req.on('end', () => {
        p.seen.push({ method, depth, path: req.url ?? '', status: injected });
        res.writeHead(injected, { 'Content-Length': 0 });
        res.end();
      });
      return;
    }
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: base.host };
    delete headers.connection;
    if (typeof headers.destination === 'string') headers.destination = headers.destination.replace(p.url.replace(/\/$/, ''), base.origin);
    const up = https.request({ host: base.hostname, port: base.port, method, path: req.url, headers, agent: upstream }, (ur) => {
      p.seen.push({ method, depth, path: req.url ?? '', status: ur.statusCode ?? 0 });
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return p;
}

/** The proxy URL of the same collection as `base`. */
function viaProxy(p: Proxy): string {
  return `${p.url}${base.pathname}`;
}

// --- set-up ---------------------------------------------------------------------------------------

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-dav-sweep-'));
  await fsp.writeFile(path.join(dir, 'webdav.credentials'), `username=${dav.username}\npassword=${dav.password}\n`, { mode: 0o600 });
  // A pid that is certainly dead: a child that has exited and been reaped ('exit').
  const child = spawn(process.execPath, ['-e', '']);
  if (child.pid === undefined) throw new Error('could not spawn a child');
  const pid = child.pid;
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  deadPid = pid;
  expect(pidAlive(deadPid)).toBe(false);
  // A live pid that is not this process: a sleeping child, ended in afterAll.
  sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  if (sleeper.pid === undefined) throw new Error('could not spawn a sleeping child');
  expect(pidAlive(sleeper.pid)).toBe(true);
});

afterAll(async () => {
  sleeper?.kill('SIGKILL');
  upstream.destroy();
  await fsp.rm(dir, { recursive: true, force: true });
});

function temp(host: string, pid: number): string {
  return `${TEMP_PREFIX}${host}-${pid}-${hex()}`;
}

// --- tests ------------------------------------------------------------------------------------------

describe('WebDAV: a put sweeps the temps of this host\'s dead writers', () => {
  it('removes a dead temp of this host and nothing else', async () => {
    const top = `sweep-${hex()}`;
    const coll = `${top}/b1`;
    await mkcol(top);
    await mkcol(coll);
    const sleeperPid = sleeper?.pid ?? 0;
    const dead = temp(TEMP_HOST, deadPid);
    const keep = {
      liveSelf: temp(TEMP_HOST, process.pid),
      liveChild: temp(TEMP_HOST, sleeperPid),
      otherHost: temp(`other${TEMP_HOST}`, deadPid),
      containsName: `evidence${temp(TEMP_HOST, deadPid)}`, // "kluis-tmp" inside, not as prefix
      noRandom: `${TEMP_PREFIX}${TEMP_HOST}-${deadPid}`, // not exactly a name kluis makes
      oldForm: `${TEMP_PREFIX}${hex()}`, // the pre-owner form: nobody can say whose it is
    };
    const deadCollection = temp(TEMP_HOST, deadPid); // a collection is never deleted
    const deadInParent = temp(TEMP_HOST, deadPid); // the sweep is the destination collection's only
    await putRaw(`${coll}/${dead}`, 'left by a writer that died');
    for (const n of Object.values(keep)) await putRaw(`${coll}/${n}`, `kept: ${n}`);
    await mkcol(`${coll}/${deadCollection}`);
    await putRaw(`${coll}/${deadCollection}/inner`, 'inside a collection named like a temp');
    await putRaw(`${top}/${deadInParent}`, 'in the parent collection');
    expect(await exists(`${coll}/${dead}`)).toBe(true);

    const t = openDav();
    try {
      await kluisPut(t, `${coll}/obj-1`, 'the evidence');
      expect(await readAll(await t.get(`${coll}/obj-1`))).toBe('the evidence');
      // Temps stay hidden from list either way.
      expect((await collectKeys(t, `${coll}/`)).sort()).toEqual([`${coll}/${keep.containsName}`, `${coll}/obj-1`].sort());
    } finally {
      await t.close();
    }

    expect(await exists(`${coll}/${dead}`)).toBe(false);
    for (const [what, n] of Object.entries(keep)) expect(await exists(`${coll}/${n}`), what).toBe(true);
    expect(await exists(`${coll}/${deadCollection}/inner`)).toBe(true);
    expect(await exists(`${top}/${deadInParent}`)).toBe(true);
    // Still alive: the sleeper's temp was kept because its writer lives, not by luck.
    expect(pidAlive(sleeperPid)).toBe(true);
  });

  it('a put into an empty or new collection succeeds (nothing to sweep)', async () => {
    const coll = `sweep-${hex()}/new/deeper`;
    const t = openDav();
    try {
      await kluisPut(t, `${coll}/obj-1`, 'first');
      await kluisPut(t, `${coll}/obj-2`, 'second');
      expect(await readAll(await t.get(`${coll}/obj-1`))).toBe('first');
      expect(await collectKeys(t, `${coll}/`)).toEqual([`${coll}/obj-1`, `${coll}/obj-2`]);
    } finally {
      await t.close();
    }
  });

  it('the root collection is swept too (a key without a folder)', async () => {
    const dead = temp(TEMP_HOST, deadPid);
    const other = temp(`other${TEMP_HOST}`, deadPid);
    await putRaw(dead, 'dead, at the root');
    await putRaw(other, 'another host, at the root');
    const t = openDav();
    const key = `root-obj-${hex()}`;
    try {
      await kluisPut(t, key, 'at the root');
    } finally {
      await t.close();
    }
    expect(await exists(dead)).toBe(false);
    expect(await exists(other)).toBe(true);
    expect(await exists(key)).toBe(true);
    // Tidy the shared root (the server lives on for other test files).
    for (const n of [other, key]) expect([200, 204]).toContain((await raw('DELETE', n)).status);
  });
});

describe('WebDAV: the sweep is best effort and hides no put error', () => {
  it('a failing listing does not fail the put and deletes nothing; the next put tries again', async () => {
    const coll = `sweep-${hex()}`;
    await mkcol(coll);
    const dead = temp(TEMP_HOST, deadPid);
    await putRaw(`${coll}/${dead}`, 'left by a writer that died');
    const p = await startProxy();
    const t = openDav(viaProxy(p));
    try {
      p.fail = (req) => (req.method === 'PROPFIND' && req.headers.depth === '1' ? 500 : undefined);
      await kluisPut(t, `${coll}/obj-1`, 'one');
      expect(p.seen.filter((s) => s.method === 'PROPFIND' && s.depth === '1' && s.status === 500)).toHaveLength(1);
      expect(p.seen.filter((s) => s.method === 'DELETE')).toEqual([]);
      expect(await exists(`${coll}/${dead}`)).toBe(true);
      expect(await exists(`${coll}/obj-1`)).toBe(true);

      // The listing failed, so the next put into the folder sweeps again, now with success.
      p.fail = undefined;
      await kluisPut(t, `${coll}/obj-2`, 'two');
      expect(await exists(`${coll}/${dead}`)).toBe(false);
      expect(p.seen.filter((s) => s.method === 'DELETE' && s.path.endsWith(dead))).toHaveLength(1);

      // Swept once per collection: a third put lists nothing.
      const listings = p.seen.filter((s) => s.method === 'PROPFIND' && s.depth === '1').length;
      await kluisPut(t, `${coll}/obj-3`, 'three');
      expect(p.seen.filter((s) => s.method === 'PROPFIND' && s.depth === '1').length).toBe(listings);
    } finally {
      await t.close();
      await p.close();
    }
  });

  it('a failing DELETE of a dead temp does not fail the put', async () => {
    const coll = `sweep-${hex()}`;
    await mkcol(coll);
    const dead = temp(TEMP_HOST, deadPid);
    await putRaw(`${coll}/${dead}`, 'left by a writer that died');
    const p = await startProxy();
    const t = openDav(viaProxy(p));
    try {
      p.fail = (req) => (req.method === 'DELETE' ? 403 : undefined);
      await kluisPut(t, `${coll}/obj-1`, 'one');
      expect(p.seen.filter((s) => s.method === 'DELETE' && s.status === 403 && s.path.endsWith(dead))).toHaveLength(1);
      expect(await exists(`${coll}/${dead}`)).toBe(true);
      expect(await exists(`${coll}/obj-1`)).toBe(true);
    } finally {
      await t.close();
      await p.close();
    }
  });

  it("the put's own error is reported, not the sweep's", async () => {
    const coll = `sweep-${hex()}`;
    await mkcol(coll);
    const p = await startProxy();
    const t = openDav(viaProxy(p));
    try {
      p.fail = (req) => (req.method === 'PROPFIND' && req.headers.depth === '1' ? 401 : req.method === 'PUT' ? 507 : undefined);
      const err = await kluisPut(t, `${coll}/obj-1`, 'one').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KluisError);
      expect((err as KluisError).code).toBe('E_TARGET_FULL');
      expect(p.seen.some((s) => s.method === 'PROPFIND' && s.depth === '1' && s.status === 401)).toBe(true);
      expect(await exists(`${coll}/obj-1`)).toBe(false);
    } finally {
      await t.close();
      await p.close();
    }
  });
});

async function collectKeys(t: Target, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of t.list(prefix)) out.push(o.key);
  return out;
}
