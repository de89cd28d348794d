/**
 * WebDAV target (Apache mod_dav, Nextcloud, Stack, TransIP): the URL names a collection; keys are
 * paths below it ('/' makes sub-collections, created with MKCOL).
 *
 * Promises:
 * - a put goes to a hidden temp name in the destination collection (".kluis-tmp-<host>-<pid>-…"),
 *   is checked (PROPFIND size), and only then MOVEd to its key with `Overwrite: F`, so a partial
 *   upload is never visible under the key, and an existing key is never replaced (412 →
 *   E_TARGET_EXISTS);
 * - the first put into a collection (per target instance) lists it (PROPFIND Depth 1) and
 *   DELETEs the temps this host's dead writers left (kill -9, power loss): only plain resources
 *   whose whole name is a temp name of this host with a pid that is certainly gone (common.ts
 *   isDeadTemp). Another host's temps, live writers' temps, collections and every other name are
 *   never touched. The sweep is best effort: its failure never fails the put, and the put's own
 *   requests report the put's errors;
 * - every request goes through the guarded agents (egress guard at connect time); redirects are
 *   refused; basic auth is sent only over TLS, or over plain http to a loopback address;
 * - list/head use PROPFIND (Depth 0/1), its answer read by webdav-multistatus.ts; hidden names (temp files) are never listed; listPage walks
 *   the same way and skips what its cursor (the last key of the previous page) has passed, so each
 *   page costs one PROPFIND per collection on the cursor's path and per collection it enters;
 * - bodies are streamed, never held in memory.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { KluisError } from '../errors.js';
import { resolveCredentials, type TargetConfig } from '../config/index.js';
import { LazyReady, checkedBody, isDeadTemp, tempName, type NetworkTargetDeps, validateKey, validatePrefix } from './common.js';
import type { EgressGuard } from './egress.js';
import {
  createGuardedAgents,
  findKluisError,
  isNetworkError,
  isTlsError,
  readBody,
  send,
  tlsFailure,
  unreachable,
  type GuardedAgents,
  type SendRequest,
} from './http.js';
import { againstCursor, pageLimit, takePage, treeCursor } from './paging.js';
import type { ListPage, ObjectInfo, ProbeResult, PutOptions, Target, TargetCapabilities } from './types.js';
import { parseMultistatus, type DavEntry } from './webdav-multistatus.js';

type WebDavDeps = NetworkTargetDeps;

interface Ready {
  base: URL;
  auth?: string;
  agents: GuardedAgents;
}

/** Collections swept per target instance before the set is forgotten (bounds a daemon's memory). */
const SWEPT_MAX = 10_000;

export class WebDavTarget implements Target {
  readonly type = 'webdav' as const;
  readonly name: string;
  readonly capabilities: TargetCapabilities = { objectLock: false, versioning: false, multipart: false, serverHash: false };
  private readonly deps: WebDavDeps;
  private readonly lazy = new LazyReady<Ready>(() => this.init());
  private agents: GuardedAgents | undefined;
  /** Collections (key prefix, '' = base) already swept, or being swept, by this instance. */
  private readonly swept = new Set<string>();

  constructor(deps: WebDavDeps) {
    this.deps = deps;
    this.name = deps.cfg.name;
  }

  private ready(): Promise<Ready> {
    return this.lazy.get();
  }

  private async init(): Promise<Ready> {
    const { cfg, guard } = this.deps;
    let base: URL;
    try {
      base = new URL(cfg.url.endsWith('/') ? cfg.url : `${cfg.url}/`);
    } catch (err) {
      throw new KluisError('E_CONFIG_INVALID', `target ${cfg.name}: url '${cfg.url}' is not a URL`, { cause: err });
    }
    guard.checkUrl(base);
    await guard.ready();
    const creds = await resolveCredentials(cfg, this.deps.configDir, this.deps.env);
    const auth =
      creds.username !== undefined
        ? `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`
        : undefined;
    this.agents = createGuardedAgents({
      guard,
      ...(this.deps.ca ? { ca: this.deps.ca } : {}),
      ...(cfg.tlsPin ? { tlsPin: cfg.tlsPin } : {}),
      plaintextPassword: auth !== undefined,
      socketTimeoutMs: 120_000,
    });
    return { base, agents: this.agents, ...(auth ? { auth } : {}) };
  }

  private urlOf(base: URL, key: string, collection = false): URL {
    const rel = key
      .split('/')
      .filter((s) => s !== '')
      .map(encodeURIComponent)
      .join('/');
    return new URL(rel + (collection && rel ? '/' : ''), base);
  }

  private mapError(err: unknown, what: string): KluisError {
    const k = findKluisError(err);
    if (k) return k;
    if (isTlsError(err)) return tlsFailure(this.name, err);
    if (isNetworkError(err)) return unreachable(this.name, err, what);
    return new KluisError('E_TARGET_IO', `target ${this.name}: ${what}: ${(err as Error).message}`, { cause: err, details: { retryable: true } });
  }

  private statusError(res: IncomingMessage, what: string): KluisError {
    const s = res.statusCode ?? 0;
    res.resume();
    const msg = `target ${this.name}: ${what}: HTTP ${s} ${res.statusMessage ?? ''}`.trim();
    if (s === 401 || s === 403) {
      return new KluisError('E_TARGET_AUTH', msg, {
        hint: 'check the WebDAV user name and password (credentials.env / credentials.file)',
        details: { retryable: false, status: s },
      });
    }
    if (s === 404) return new KluisError('E_TARGET_MISSING', msg, { details: { retryable: false, status: s } });
    if (s === 412) return new KluisError('E_TARGET_EXISTS', msg, { details: { retryable: false, status: s } });
    if (s === 507) return new KluisError('E_TARGET_FULL', msg, { hint: 'the server is out of space', details: { retryable: true, status: s } });
    if (s >= 500) return new KluisError('E_TARGET_UNREACHABLE', msg, { details: { retryable: true, status: s } });
    return new KluisError('E_TARGET_IO', msg, { details: { retryable: false, status: s } });
  }

  private async request(r: Ready, req: Omit<SendRequest, 'headers'> & { headers?: Record<string, string | number> }, what: string): Promise<IncomingMessage> {
    const headers: Record<string, string | number> = { ...(req.headers ?? {}) };
    if (r.auth) headers.Authorization = r.auth;
    try {
      return await send(r.agents, this.deps.guard, { ...req, headers });
    } catch (err) {
      throw this.mapError(err, what);
    }
  }

  private async propfind(r: Ready, url: URL, depth: 0 | 1, what: string): Promise<DavEntry[] | null> {
    const body =
      '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/></D:prop></D:propfind>';
    const res = await this.request(
      r,
      { method: 'PROPFIND', url, headers: { Depth: depth, 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }, body },
      what,
    );
    if (res.statusCode === 404) {
      res.resume();
      return null;
    }
    if (res.statusCode !== 207) throw this.statusError(res, what);
    let xml: string;
    try {
      xml = (await readBody(res)).toString('utf8');
    } catch (err) {
      throw this.mapError(err, what);
    }
    return parseMultistatus(xml, this.name);
  }

  /** Creates each missing collection on the way to `dir` (a key prefix without trailing '/'). */
  private async mkcols(r: Ready, dir: string): Promise<void> {
    const segs = dir.split('/').filter((s) => s !== '');
    for (let i = 1; i <= segs.length; i++) {
      const url = this.urlOf(r.base, segs.slice(0, i).join('/'), true);
      const res = await this.request(r, { method: 'MKCOL', url }, `creating collection ${url.pathname}`);
      res.resume();
      // 201 created; 405 already exists (RFC 4918 9.3.1).
      if (res.statusCode !== 201 && res.statusCode !== 405) throw this.statusError(res, `creating collection ${url.pathname}`);
    }
  }

  private async deleteUrl(r: Ready, url: URL, what: string): Promise<void> {
    const res = await this.request(r, { method: 'DELETE', url }, what);
    res.resume();
    if (res.statusCode !== 204 && res.statusCode !== 200 && res.statusCode !== 404) throw this.statusError(res, what);
  }

  async put(key: string, body: () => Readable, opts: PutOptions): Promise<void> {
    validateKey(key);
    const r = await this.ready();
    const slash = key.lastIndexOf('/');
    const dir = slash >= 0 ? key.slice(0, slash) : '';
    if (await this.head(key)) {
      throw new KluisError('E_TARGET_EXISTS', `target ${this.name}: object ${key} already exists`, { details: { retryable: false } });
    }
    await this.mkcols(r, dir);
    await this.sweepDeadTemps(r, dir);
    const tmpKey = `${dir ? `${dir}/` : ''}${tempName()}`;
    const tmpUrl = this.urlOf(r.base, tmpKey);
    let uploaded = false;
    try {
      const res = await this.request(
        r,
        {
          method: 'PUT',
          url: tmpUrl,
          headers: { 'Content-Length': opts.size, 'Content-Type': 'application/octet-stream' },
          body: checkedBody(body(), opts.size, opts.sha256, this.name),
        },
        `uploading ${key}`,
      );
      uploaded = true;
      if (res.statusCode !== 201 && res.statusCode !== 204 && res.statusCode !== 200) throw this.statusError(res, `uploading ${key}`);
      res.resume();
      const check = await this.propfind(r, tmpUrl, 0, `checking upload of ${key}`);
      const size = check?.[0]?.size;
      if (size !== opts.size) {
        throw new KluisError('E_TARGET_IO', `target ${this.name}: server holds ${size ?? 'no'} bytes for ${key}, expected ${opts.size}`, {
          details: { retryable: true },
        });
      }
      const mv = await this.request(
        r,
        { method: 'MOVE', url: tmpUrl, headers: { Destination: this.urlOf(r.base, key).href, Overwrite: 'F' } },
        `moving ${key} into place`,
      );
      mv.resume();
      if (mv.statusCode === 412) {
        throw new KluisError('E_TARGET_EXISTS', `target ${this.name}: object ${key} already exists`, { details: { retryable: false } });
      }
      if (mv.statusCode !== 201 && mv.statusCode !== 204) throw this.statusError(mv, `moving ${key} into place`);
    } catch (err) {
      // Best effort: the temp name is hidden from list/head either way. Only when the request
      // reached the server (or may have); a refused connection left nothing.
      if (uploaded || !(err instanceof KluisError && err.code.startsWith('E_EGRESS'))) {
        await this.deleteUrl(r, tmpUrl, 'removing a temp upload').catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * DELETEs the temps in collection `dir` that this host's dead writers left behind. Once per
   * collection per instance: a dead writer's temps do not come back, and a listing per put would
   * cost a batch folder's whole listing for every object. Never throws; a failed listing is
   * tried again by the next put into the folder.
   */
  private async sweepDeadTemps(r: Ready, dir: string): Promise<void> {
    if (this.swept.has(dir)) return;
    if (this.swept.size >= SWEPT_MAX) this.swept.clear();
    this.swept.add(dir);
    try {
      const url = this.urlOf(r.base, dir, true);
      const entries = await this.propfind(r, url, 1, `listing ${dir || '/'} for dead temp uploads`);
      const parent = decodeURIComponent(url.pathname).replace(/\/$/, '');
      for (const e of entries ?? []) {
        if (e.collection) continue;
        let p: string;
        try {
          p = decodeURIComponent(new URL(e.href, r.base).pathname);
        } catch {
          continue; // an href we cannot read names nothing we would remove
        }
        const cut = p.lastIndexOf('/');
        // Only a direct child of this collection, named exactly as a dead temp of this host.
        if (cut < 0 || p.slice(0, cut) !== parent || !isDeadTemp(p.slice(cut + 1))) continue;
        const name = p.slice(cut + 1);
        await this.deleteUrl(r, this.urlOf(r.base, dir ? `${dir}/${name}` : name), `removing a dead temp upload ${name}`).catch(() => undefined);
      }
    } catch {
      this.swept.delete(dir);
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    validateKey(key);
    const r = await this.ready();
    const entries = await this.propfind(r, this.urlOf(r.base, key), 0, `checking ${key}`);
    const e = entries?.[0];
    if (!e || e.collection) return null;
    return { key, size: e.size };
  }

  async get(key: string): Promise<Readable> {
    validateKey(key);
    const r = await this.ready();
    const res = await this.request(r, { method: 'GET', url: this.urlOf(r.base, key) }, `reading ${key}`);
    if (res.statusCode !== 200) {
      const e = this.statusError(res, `reading ${key}`);
      if (e.code === 'E_TARGET_MISSING') throw new KluisError('E_TARGET_MISSING', `target ${this.name}: object ${key} does not exist`, { details: { retryable: false } });
      throw e;
    }
    return res;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    const r = await this.ready();
    yield* this.walk(r, this.startOf(prefix), prefix, undefined);
  }

  async listPage(prefix: string, cursor?: string, limit?: number): Promise<ListPage> {
    validatePrefix(prefix);
    const n = pageLimit(limit);
    const after = treeCursor(cursor);
    const r = await this.ready();
    return takePage(this.walk(r, this.startOf(prefix), prefix, after), n);
  }

  private startOf(prefix: string): string {
    const slash = prefix.lastIndexOf('/');
    return slash >= 0 ? prefix.slice(0, slash) : '';
  }

  /** Tree order (names sorted within each collection); with `after`, only what follows that key. */
  private async *walk(r: Ready, rel: string, prefix: string, after: string[] | undefined): AsyncGenerator<ObjectInfo> {
    const url = this.urlOf(r.base, rel, true);
    const entries = await this.propfind(r, url, 1, `listing ${rel || '/'}`);
    if (!entries) return;
    const children: Array<{ name: string; e: DavEntry }> = [];
    for (const e of entries) {
      const p = new URL(e.href, r.base).pathname;
      if (p.replace(/\/$/, '') === url.pathname.replace(/\/$/, '')) continue; // the collection itself
      const name = decodeURIComponent(p.replace(/\/$/, '').split('/').pop() ?? '');
      if (!name || name.startsWith('.')) continue;
      children.push({ name, e });
    }
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const { name, e } of children) {
      const key = rel ? `${rel}/${name}` : name;
      const where = againstCursor(key.split('/'), after, e.collection);
      if (where === 'before') continue;
      if (e.collection) {
        if (prefix.startsWith(`${key}/`) || `${key}/`.startsWith(prefix) || key.startsWith(prefix)) yield* this.walk(r, key, prefix, where === 'on-path' ? after : undefined);
      } else if (key.startsWith(prefix)) {
        yield { key, size: e.size };
      }
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    const r = await this.ready();
    await this.deleteUrl(r, this.urlOf(r.base, key), `deleting ${key}`);
  }

  /** Policy verdict per address, then PROPFIND Depth 0 on the base collection. Uploads nothing. */
  async probe(): Promise<ProbeResult> {
    const addresses: ProbeResult['addresses'] = [];
    try {
      const url = new URL(this.deps.cfg.url);
      this.deps.guard.checkUrl(url);
      for (const v of await this.deps.guard.explain(url.hostname)) {
        addresses.push({ address: v.address, ...(v.country ? { country: v.country } : {}), allowed: v.allowed, reason: v.reason });
      }
      const r = await this.ready();
      const e = await this.propfind(r, r.base, 0, 'checking the base collection');
      if (!e || !e[0]?.collection) {
        throw new KluisError('E_TARGET_MISSING', `target ${this.name}: ${r.base.href} is not a WebDAV collection`);
      }
      return { ok: addresses.every((a) => a.allowed), addresses };
    } catch (err) {
      const k = this.mapError(err, 'probing');
      return { ok: false, addresses, error: { code: k.code, message: k.message } };
    }
  }

  async close(): Promise<void> {
    this.agents?.destroy();
  }
}
