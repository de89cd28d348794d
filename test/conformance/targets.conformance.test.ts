/**
 * One conformance suite, run against every target: fs (a temp folder), S3 (the Ceph RGW started
 * by scripts/services/up.sh) and WebDAV (Apache mod_dav over TLS with basic auth, same script).
 * Without the services this file FAILS (see test/setup/services.ts); KLUIS_NO_SERVICES=1 runs the
 * fs target alone, for quick local runs only.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fsp, readFileSync, renameSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectRetentionCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { openTarget, type TargetContext } from '../../src/targets/index.js';
import type { Target } from '../../src/targets/types.js';
import { listPages } from '../../src/targets/paging.js';
import { EgressSchema, TargetConfigSchema, type TargetConfig } from '../../src/config/schema.js';
import { KluisError } from '../../src/errors.js';
import { loadServices, type Services } from '../setup/services.js';
import { body, bodySha, collect, relay, sha256Of } from './helpers.js';
import { rawS3Client } from '../helpers/s3.js';

const services: Services | null = loadServices();
const MiB = 1024 * 1024;

interface Flaky {
  target: Target;
  /** Plays "server down": called from inside the upload once some bytes went out. */
  kill(): void;
  /** Undoes what kill did where the harness can (fs: folder back), before checking visibility. */
  restore(): Promise<void>;
}

interface Harness {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  open(): Target;
  openWrongCredentials?(): Target;
  openFlaky(): Promise<Flaky>;
}

const refusals: unknown[] = [];

function ctxFor(configDir: string, env: NodeJS.ProcessEnv = {}): TargetContext {
  return { configDir, egress: EgressSchema.parse({}), env, onRefusal: (r) => refusals.push(r) };
}

function fsHarness(): Harness {
  let dir = '';
  const cfg = (): TargetConfig => TargetConfigSchema.parse({ name: 'nas', type: 'fs', url: 'store' });
  return {
    name: 'fs',
    async setup() {
      dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-conf-fs-'));
    },
    async teardown() {
      await fsp.rm(dir, { recursive: true, force: true });
    },
    open: () => openTarget(cfg(), ctxFor(dir)),
    async openFlaky() {
      // A NAS that goes away mid-upload: the store folder disappears under the writer.
      const store = path.join(dir, 'store');
      const gone = path.join(dir, 'store.gone');
      return {
        target: openTarget(cfg(), ctxFor(dir)),
        kill: () => {
          // Synchronous on purpose: it runs inside the body stream.
          renameSync(store, gone);
        },
        restore: () => fsp.rename(gone, store),
      };
    },
  };
}

function s3Harness(s: Services['s3']): Harness {
  const bucket = `kluis-conf-${randomBytes(4).toString('hex')}`;
  let dir = '';
  const cfg = (url = s.endpoint): TargetConfig =>
    TargetConfigSchema.parse({ name: 'ceph', type: 's3', url, bucket, region: s.region, class: 'onprem' });
  // The AWS SDK's standard variables, with no credentials block in the config.
  const env = { AWS_ACCESS_KEY_ID: s.accessKeyId, AWS_SECRET_ACCESS_KEY: s.secretAccessKey };
  return {
    name: 's3 (Ceph RGW)',
    async setup() {
      dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-conf-s3-'));
      const c = rawS3Client(s);
      await c.send(new CreateBucketCommand({ Bucket: bucket }));
      c.destroy();
    },
    async teardown() {
      await fsp.rm(dir, { recursive: true, force: true });
    },
    open: () => openTarget(cfg(), ctxFor(dir, env)),
    openWrongCredentials: () => openTarget(cfg(), ctxFor(dir, { ...env, AWS_SECRET_ACCESS_KEY: 'wrong-secret-0000000000000000000000000000' })),
    async openFlaky() {
      const u = new URL(s.endpoint);
      const r = await relay({ host: u.hostname, port: Number(u.port) });
      return { target: openTarget(cfg(`http://127.0.0.1:${r.port}`), ctxFor(dir, env)), kill: r.kill, restore: async () => {} };
    },
  };
}

function webdavHarness(s: Services['webdav']): Harness {
  let dir = '';
  const cfg = (url = s.url, file = 'webdav.credentials'): TargetConfig =>
    TargetConfigSchema.parse({
      name: 'dav',
      type: 'webdav',
      url,
      class: 'onprem',
      caFile: s.caFile,
      tlsPin: s.pin,
      credentials: { file },
    });
  return {
    name: 'webdav (Apache mod_dav, TLS)',
    async setup() {
      dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-conf-dav-'));
      await fsp.writeFile(path.join(dir, 'webdav.credentials'), `username=${s.username}\npassword=${s.password}\n`, { mode: 0o600 });
      await fsp.writeFile(path.join(dir, 'wrong.credentials'), `username=${s.username}\npassword=not-the-password\n`, { mode: 0o600 });
    },
    async teardown() {
      await fsp.rm(dir, { recursive: true, force: true });
    },
    open: () => openTarget(cfg(), ctxFor(dir)),
    openWrongCredentials: () => openTarget(cfg(s.url, 'wrong.credentials'), ctxFor(dir)),
    async openFlaky() {
      const u = new URL(s.url);
      const r = await relay({ host: u.hostname, port: Number(u.port) });
      const url = new URL(s.url);
      url.port = String(r.port);
      return { target: openTarget(cfg(url.href), ctxFor(dir)), kill: r.kill, restore: async () => {} };
    },
  };
}

const harnesses: Harness[] = [fsHarness()];
if (services) harnesses.push(s3Harness(services.s3), webdavHarness(services.webdav));

async function expectCode(p: Promise<unknown>, code: string): Promise<KluisError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(KluisError);
  expect((err as KluisError).code).toBe(code);
  return err as KluisError;
}

for (const h of harnesses) {
  describe(`target conformance: ${h.name}`, () => {
    let t: Target;
    const run = `r${randomBytes(4).toString('hex')}`;
    beforeAll(async () => {
      await h.setup();
      t = h.open();
    });
    afterAll(async () => {
      await t?.close();
      await h.teardown();
    });

    it('round trip: the bytes read back equal the bytes put, and head reports the size', async () => {
      const key = `${run}/rt/obj-1`;
      const size = 300 * 1024 + 7;
      const sha = await bodySha('rt', size);
      await t.put(key, () => body('rt', size), { size, sha256: sha });
      expect(await t.head(key)).toMatchObject({ key, size });
      expect(await sha256Of(await t.get(key))).toBe(sha);
    });

    it('an empty object round-trips', async () => {
      const key = `${run}/rt/empty`;
      const sha = await bodySha('e', 0);
      await t.put(key, () => body('e', 0), { size: 0, sha256: sha });
      expect(await t.head(key)).toMatchObject({ key, size: 0 });
      expect(await sha256Of(await t.get(key))).toBe(sha);
    });

    it('large object (40 MiB, streamed; multipart where the target has it) round-trips', async () => {
      const key = `${run}/big/obj-40m`;
      const size = 40 * MiB + 123;
      const sha = await bodySha('big', size);
      await t.put(key, () => body('big', size), { size, sha256: sha });
      expect((await t.head(key))?.size).toBe(size);
      expect(await sha256Of(await t.get(key))).toBe(sha);
    });

    it('refuses to overwrite an existing key, and the first object stays', async () => {
      const key = `${run}/ow/obj`;
      const sha1 = await bodySha('one', 1000);
      const sha2 = await bodySha('two', 2000);
      await t.put(key, () => body('one', 1000), { size: 1000, sha256: sha1 });
      const err = await expectCode(t.put(key, () => body('two', 2000), { size: 2000, sha256: sha2 }), 'E_TARGET_EXISTS');
      expect(err.details?.retryable).toBe(false);
      expect(await sha256Of(await t.get(key))).toBe(sha1);
    });

    it('a body that fails mid-way leaves nothing visible (head null, not listed)', async () => {
      const key = `${run}/partial/obj`;
      const size = 20 * MiB;
      const sha = await bodySha('p', size);
      await expect(t.put(key, () => body('p', size, { failAfter: 10 * MiB }), { size, sha256: sha })).rejects.toThrow();
      expect(await t.head(key)).toBeNull();
      expect((await collect(t.list(`${run}/partial/`))).map((o) => o.key)).toEqual([]);
    });

    it('a body shorter or different than promised is refused and leaves nothing visible', async () => {
      const key = `${run}/mismatch/obj`;
      const sha = await bodySha('m', 5000);
      await expectCode(t.put(key, () => body('m', 4000), { size: 5000, sha256: sha }), 'E_TARGET_BODY');
      await expectCode(t.put(key, () => body('other', 5000), { size: 5000, sha256: sha }), 'E_TARGET_BODY');
      expect(await t.head(key)).toBeNull();
      expect((await collect(t.list(`${run}/mismatch/`))).length).toBe(0);
    });

    if (h.openWrongCredentials) {
      const open = h.openWrongCredentials.bind(h);
      it('wrong credentials: E_TARGET_AUTH, not retryable, nothing stored', async () => {
        const bad = open();
        try {
          const key = `${run}/auth/obj`;
          const sha = await bodySha('a', 1000);
          const err = await expectCode(bad.put(key, () => body('a', 1000), { size: 1000, sha256: sha }), 'E_TARGET_AUTH');
          expect(err.details?.retryable).toBe(false);
          expect(await t.head(key)).toBeNull();
          const probe = await bad.probe();
          expect(probe.ok).toBe(false);
          expect(probe.error?.code).toBe('E_TARGET_AUTH');
        } finally {
          await bad.close();
        }
      });
    }

    it('server down mid-upload: E_TARGET_UNREACHABLE, retryable, nothing visible', async () => {
      const flaky = await h.openFlaky();
      const key = `${run}/down/obj`;
      const size = 12 * MiB;
      const sha = await bodySha('d', size);
      try {
        const err = await expectCode(
          flaky.target.put(key, () => body('d', size, { onBytes: { at: 3 * MiB, fn: flaky.kill } }), { size, sha256: sha }),
          'E_TARGET_UNREACHABLE',
        );
        expect(err.details?.retryable).toBe(true);
      } finally {
        await flaky.target.close();
        await flaky.restore();
      }
      expect(await t.head(key)).toBeNull();
      expect((await collect(t.list(`${run}/down/`))).map((o) => o.key)).toEqual([]);
    });

    it('lists by prefix (string prefix semantics, across batch folders), sorted', async () => {
      const keys = ['a/1', 'a/2', 'ab/3', 'b/4'].map((k) => `${run}/ls/${k}`);
      for (const k of keys) {
        const sha = await bodySha(k, 10);
        await t.put(k, () => body(k, 10), { size: 10, sha256: sha });
      }
      const names = async (p: string): Promise<string[]> => (await collect(t.list(p))).map((o) => o.key).sort();
      expect(await names(`${run}/ls/a/`)).toEqual([`${run}/ls/a/1`, `${run}/ls/a/2`]);
      expect(await names(`${run}/ls/a`)).toEqual([`${run}/ls/a/1`, `${run}/ls/a/2`, `${run}/ls/ab/3`]);
      expect(await names(`${run}/ls/`)).toEqual(keys.slice().sort());
      expect(await names(`${run}/nothing-here/`)).toEqual([]);
      const sizes = (await collect(t.list(`${run}/ls/`))).map((o) => o.size);
      expect(sizes).toEqual([10, 10, 10, 10]);
    });

    it('lists page by page: every key once, in list order, a cursor only while more may follow', async () => {
      expect(typeof t.listPage).toBe('function');
      const listPage = t.listPage!.bind(t);
      // Folder names chosen so that byte order and folder-by-folder order differ ('a-b' / 'a').
      const keys = ['a/1', 'a/2', 'a/3', 'a-b/4', 'b/5', 'b/c/6', 'd'].map((k) => `${run}/pg/${k}`);
      for (const k of keys) {
        const sha = await bodySha(k, 3);
        await t.put(k, () => body(k, 3), { size: 3, sha256: sha });
      }
      const full = (await collect(t.list(`${run}/pg/`))).map((o) => o.key);
      expect(full.slice().sort()).toEqual(keys.slice().sort());
      for (const limit of [1, 2, 3, 7, 1000]) {
        const got: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await listPage(`${run}/pg/`, cursor, limit);
          expect(page.objects.length).toBeLessThanOrEqual(limit);
          if (page.cursor !== undefined) expect(page.objects.length).toBe(limit);
          got.push(...page.objects.map((o) => o.key));
          cursor = page.cursor;
          pages++;
          expect(pages).toBeLessThanOrEqual(keys.length + 1);
        } while (cursor !== undefined);
        expect(got, `limit ${limit}`).toEqual(full);
      }
      // The size comes with each object, as from list.
      expect((await listPage(`${run}/pg/a/`, undefined, 10)).objects).toEqual([
        expect.objectContaining({ key: `${run}/pg/a/1`, size: 3 }),
        expect.objectContaining({ key: `${run}/pg/a/2`, size: 3 }),
        expect.objectContaining({ key: `${run}/pg/a/3`, size: 3 }),
      ]);
      // A prefix that holds nothing: one empty last page.
      expect(await listPage(`${run}/nothing-here/`, undefined, 5)).toEqual({ objects: [] });
      // The generic helper walks the same pages.
      const viaHelper: string[] = [];
      for await (const page of listPages(t, `${run}/pg/`, 2)) viaHelper.push(...page.map((o) => o.key));
      expect(viaHelper).toEqual(full);
    });

    it('read-back verification: get of each stored object hashes to what was put; missing keys are reported', async () => {
      const key = `${run}/verify/obj`;
      const size = 2 * MiB + 1;
      const sha = await bodySha('v', size);
      await t.put(key, () => body('v', size), { size, sha256: sha });
      expect(await sha256Of(await t.get(key))).toBe(sha);
      if (typeof t.readBackSha256 === 'function') {
        // The target's own read-back gives the same answer as hashing what get streams.
        expect(await t.readBackSha256(key)).toEqual({ sha256: sha, size });
        await expectCode(t.readBackSha256(`${run}/verify/missing`), 'E_TARGET_MISSING');
      }
      expect(await t.head(`${run}/verify/missing`)).toBeNull();
      await expectCode(t.get(`${run}/verify/missing`), 'E_TARGET_MISSING');
      await t.delete(key);
      expect(await t.head(key)).toBeNull();
      await t.delete(key); // deleting what is gone is not an error
    });

    it('probe: reachable, policy verdict per address, stores nothing', async () => {
      const before = (await collect(t.list(''))).length;
      const p = await t.probe();
      expect(p.error).toBeUndefined();
      expect(p.ok).toBe(true);
      expect(p.addresses.length).toBeGreaterThan(0);
      expect(p.addresses.every((a) => a.allowed)).toBe(true);
      expect((await collect(t.list(''))).length).toBe(before);
    });

    it('refuses keys that could escape or hide (.., leading dot, empty segments)', async () => {
      for (const k of ['../x', 'a/../b', '.hidden', 'a//b', '/abs', '']) {
        await expectCode(t.put(k, () => body('x', 1), { size: 1, sha256: 'x' }), 'E_TARGET_KEY');
      }
    });

    it('a put that names the local file holding the body stores the same bytes, refuses an existing key, and leaves the local file as it was', async () => {
      const key = `${run}/local/obj`;
      const size = 3 * MiB + 5;
      const sha = await bodySha('local', size);
      const local = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-conf-local-')), 'sealed');
      await fsp.writeFile(local, await readAll(body('local', size)), { mode: 0o644 });
      await t.put(key, () => body('local', size), { size, sha256: sha, localPath: local });
      expect(await t.head(key)).toMatchObject({ key, size });
      expect(await sha256Of(await t.get(key))).toBe(sha);
      await expectCode(t.put(key, () => body('local', size), { size, sha256: sha, localPath: local }), 'E_TARGET_EXISTS');
      await fsp.rm(local); // what the spool does once the object is verified
      expect(await sha256Of(await t.get(key))).toBe(sha);
    });
  });
}

function umaskNow(): number {
  const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? parseInt(m[1]!, 8) : 0o022;
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('fs only: a put from a local file makes no second full copy', () => {
  it('links a file with the stored mode on the same file system, copies anything else to an object of that mode, and streams when the file does not match', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-conf-fslocal-'));
    const t = openTarget(TargetConfigSchema.parse({ name: 'nas', type: 'fs', url: 'store' }), ctxFor(dir));
    try {
      const size = 2 * MiB;
      const sha = await bodySha('l', size);
      const bytes = await readAll(body('l', size));
      const linked = path.join(dir, 'linked');
      await fsp.writeFile(linked, bytes, { mode: 0o644 }); // as the spool's sealed files are made: 0644 less the umask
      await t.put('b/one', () => body('l', size), { size, sha256: sha, localPath: linked });
      const one = await fsp.stat(path.join(dir, 'store', 'b', 'one'));
      expect(one.ino).toBe((await fsp.stat(linked)).ino);

      const privateFile = path.join(dir, 'private');
      await fsp.writeFile(privateFile, bytes, { mode: 0o400 }); // another mode than a stored object's, whatever the umask
      await t.put('b/two', () => body('l', size), { size, sha256: sha, localPath: privateFile });
      const two = await fsp.stat(path.join(dir, 'store', 'b', 'two'));
      expect(two.ino).not.toBe((await fsp.stat(privateFile)).ino);
      expect(two.mode & 0o777).toBe(0o644 & ~umaskNow());
      expect(await sha256Of(await t.get('b/two'))).toBe(sha);

      // A local file of another size is not used: the body is streamed (and checked) instead.
      await t.put('b/three', () => body('l', size), { size, sha256: sha, localPath: path.join(dir, 'missing') });
      expect(await sha256Of(await t.get('b/three'))).toBe(sha);
      expect((await fsp.readdir(path.join(dir, 'store', 'b'))).sort()).toEqual(['one', 'three', 'two']);
    } finally {
      await t.close();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

if (services) {
  const s = services.s3;
  describe('S3 only: object lock retention when the bucket has it (Ceph RGW)', () => {
    it('detects object lock and versioning and writes objects with the configured retention', async () => {
      const bucket = `kluis-lock-${randomBytes(4).toString('hex')}`;
      const raw = rawS3Client(s);
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-conf-lock-'));
      await raw.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
      const t = openTarget(
        TargetConfigSchema.parse({ name: 'locked', type: 's3', url: s.endpoint, bucket, region: s.region, retentionDays: 1, lockMode: 'governance' }),
        ctxFor(dir, { AWS_ACCESS_KEY_ID: s.accessKeyId, AWS_SECRET_ACCESS_KEY: s.secretAccessKey }),
      );
      try {
        const sha = await bodySha('lock', 1000);
        await t.put('b/obj', () => body('lock', 1000), { size: 1000, sha256: sha });
        expect(t.capabilities.objectLock).toBe(true);
        expect(t.capabilities.versioning).toBe(true);
        const r = await raw.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: 'b/obj' }));
        expect(r.Retention?.Mode).toBe('GOVERNANCE');
        expect(r.Retention?.RetainUntilDate!.getTime()).toBeGreaterThan(Date.now());
      } finally {
        await t.close();
        raw.destroy();
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('S3 only: a spool object goes up from its local file when that file holds the promised bytes', () => {
    it('uses the local file that matches (the body is not read), and streams the body when the file does not', async () => {
      const bucket = `kluis-local-${randomBytes(4).toString('hex')}`;
      const raw = rawS3Client(s);
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-conf-s3local-'));
      await raw.send(new CreateBucketCommand({ Bucket: bucket }));
      const t = openTarget(
        TargetConfigSchema.parse({ name: 'plain', type: 's3', url: s.endpoint, bucket, region: s.region }),
        ctxFor(dir, { AWS_ACCESS_KEY_ID: s.accessKeyId, AWS_SECRET_ACCESS_KEY: s.secretAccessKey }),
      );
      try {
        const size = 9 * MiB + 7; // more than one part
        const sha = await bodySha('promised', size);
        const good = path.join(dir, 'good');
        const bad = path.join(dir, 'bad');
        await fsp.writeFile(good, await readAll(body('promised', size)));
        await fsp.writeFile(bad, await readAll(body('other', size)));
        // The body stream holds other bytes: only the local file can have given the promised ones.
        await t.put('b/from-file', () => body('other', size), { size, sha256: sha, localPath: good });
        expect(await sha256Of(await t.get('b/from-file'))).toBe(sha);
        // The local file holds other bytes: the body stream is what gets stored.
        await t.put('b/from-body', () => body('promised', size), { size, sha256: sha, localPath: bad });
        expect(await sha256Of(await t.get('b/from-body'))).toBe(sha);
        // The upload from the wrong local file was abandoned server-side, not left half-done.
        const open = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        expect(open.Uploads ?? []).toEqual([]);
      } finally {
        for (const k of ['b/from-file', 'b/from-body']) await t.delete(k).catch(() => undefined);
        await t.close();
        raw.destroy();
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });
  });
}
