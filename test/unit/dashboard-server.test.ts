// The dashboard server against a real station (kluis init layout, fs target, real journal):
// the gate over HTTP (401/403 with no body for data; the page shell without data and without a
// cookie), the CSRF value from an authenticated request, one-use tickets, security headers,
// the state it shows, SSE driven by the event table, thumbnails only from the spool, and the
// two actions (retry, ciphertext re-check) with their CSRF check.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { register as registerInit } from '../../src/cli/init.js';
import { openStation, type Station } from '../../src/pipeline/station.js';
import { ensureSpool } from '../../src/pipeline/spool.js';
import { startDashboard, type DashboardServer } from '../../src/dashboard/server.js';
import type { DashboardState } from '../../src/dashboard/state.js';

let dir: string;
let station: Station;
let dash: DashboardServer;
const BATCH = 'b0000000000000000000000a';
const PULLED = 'b0000000000000000000000b';
const ENDED = 'b0000000000000000000000c';
const OBJ = `${BATCH}/obj00000000000000000000000000001`;
const sealedBytes = Buffer.from('pretend ciphertext '.repeat(100));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(p: string, o: { method?: string; headers?: Record<string, string>; body?: string; host?: string } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: '127.0.0.1', port: dash.port, path: p, method: o.method ?? 'GET', headers: { host: o.host ?? `127.0.0.1:${dash.port}`, ...(o.headers ?? {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    r.on('error', reject);
    if (o.body) r.write(o.body);
    r.end();
  });
}

const auth = () => ({ authorization: `Bearer ${dash.token}` });
let csrf = '';
const post = (p: string, body: unknown, extra: Record<string, string> = {}) =>
  request(p, { method: 'POST', body: JSON.stringify(body), headers: { ...auth(), 'content-type': 'application/json', 'x-kluis-csrf': csrf, ...extra } });
const state = async (): Promise<DashboardState> => JSON.parse((await request('/api/state', { headers: auth() })).body.toString()) as DashboardState;

async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-dash-'));
  const program = new Command().exitOverride();
  registerInit(program);
  const ew = process.stderr.write.bind(process.stderr);
  const ow = process.stdout.write.bind(process.stdout);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'kluis', 'init', '--dir', dir, '--station', 'test-station']);
  } finally {
    process.stderr.write = ew;
    process.stdout.write = ow;
    process.exitCode = 0;
  }
  station = await openStation(path.join(dir, 'kluis.json'));
  const j = station.journal;
  j.createBatch({ id: BATCH, card_fingerprint: 'fp1', card_root: '/media/card1', card_label: 'DJI_CARD', card_uuid: null, operator: 'op', case_ref: null, status: 'acquiring', recipients: '[]' });
  j.addFile({ batch_id: BATCH, path: 'DCIM/100MEDIA/DJI_0001.JPG', class: 'footage', format: 'jpeg', size: 10, mtime_ms: 0, state: 'seen' });
  j.addFile({
    batch_id: BATCH, path: 'DCIM/100MEDIA/DJI_0002.JPG', class: 'footage', format: null, size: 0, mtime_ms: 0, state: 'rejected',
    error_code: 'E_CARD_EMPTY', error_message: 'the file is empty', error_hint: 'copy it again from the drone',
  });
  const sp = await ensureSpool(station.layout.spoolDir, BATCH);
  const sealedPath = path.join(sp.sealed, 'obj1');
  await fsp.writeFile(sealedPath, sealedBytes);
  const thumb = path.join(sp.thumbs, 't1.jpg');
  await fsp.writeFile(thumb, Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
  j.addFile({
    batch_id: BATCH, path: 'DCIM/100MEDIA/DJI_0003.JPG', class: 'footage', format: 'jpeg', size: 10, mtime_ms: 0, state: 'sealed',
    object_id: OBJ.split('/')[1]!, sealed_path: sealedPath, sealed_sha256: sha(sealedBytes), sealed_size: sealedBytes.length, thumb_path: thumb,
    sanitize_json: JSON.stringify({ sha256: 'ab'.repeat(32), removed: [{ where: 'APP1/Exif', what: 'GPS position', bytes: 120 }] }),
  });
  // A thumbnail path that points outside the spool must never be served.
  j.addFile({ batch_id: BATCH, path: 'DCIM/100MEDIA/DJI_0004.JPG', class: 'footage', format: 'jpeg', size: 10, mtime_ms: 0, state: 'seen', thumb_path: path.join(dir, 'kluis.json') });
  j.enqueue(BATCH, OBJ, ['local'], { size: sealedBytes.length, sha256: sha(sealedBytes), localPath: sealedPath });
  j.setDelivery(BATCH, OBJ, 'local', { state: 'failed', attempts: 3, last_error_code: 'E_TARGET_UNREACHABLE', last_error: 'store folder gone' });
  j.addEvent('card-seen', BATCH, { type: 'card-seen', batchId: BATCH, card: '/media/card1', files: 4, bytes: 30 });
  // A card pulled while being read: one file read, one not.
  j.createBatch({ id: PULLED, card_fingerprint: 'fp2', card_root: '/media/card2', card_label: null, card_uuid: null, operator: null, case_ref: null, status: 'acquiring', recipients: '[]' });
  j.addFile({ batch_id: PULLED, path: 'DCIM/100MEDIA/A.JPG', class: 'footage', format: 'jpeg', size: 10, mtime_ms: 0, state: 'acquired' });
  j.addFile({ batch_id: PULLED, path: 'DCIM/100MEDIA/B.JPG', class: 'footage', format: 'jpeg', size: 10, mtime_ms: 0, state: 'seen' });
  j.addEvent('card-seen', PULLED, { type: 'card-seen', batchId: PULLED, card: '/media/card2', files: 2, bytes: 20 });
  j.addEvent('card-missing', PULLED, { type: 'card-missing', batchId: PULLED, card: '/media/card2', remaining: 1 });
  // A card read completely whose only picture failed to sanitize: nothing left to do, not secured.
  j.createBatch({ id: ENDED, card_fingerprint: 'fp3', card_root: '/media/card3', card_label: null, card_uuid: null, operator: null, case_ref: null, status: 'delivering', recipients: '[]' });
  j.setBatch(ENDED, { safe_to_remove_at: new Date().toISOString(), manifest_written: 1 });
  j.addFile({
    batch_id: ENDED, path: 'DCIM/100MEDIA/C.MP4', class: 'footage', format: 'mp4', size: 10, mtime_ms: 0, state: 'failed',
    error_code: 'E_SANITIZE_BOX_TRUNCATED', error_message: 'box mdat is cut off', error_hint: 'the file is damaged',
  });
  dash = await startDashboard(station, { port: 0, pollMs: 50, log: () => undefined });
  csrf = (JSON.parse((await request('/api/session', { headers: auth() })).body.toString()) as { csrf: string }).csrf;
});

afterAll(async () => {
  await dash?.close();
  await station?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('gate over HTTP', () => {
  it('prints a token address on 127.0.0.1, the token in the fragment (never sent to a server)', () => {
    expect(dash.loginUrl).toBe(`http://127.0.0.1:${dash.port}/#token=${dash.token}`);
  });

  it('without the token: 401 and an empty body, on every path that holds data', async () => {
    for (const p of ['/api/state', '/api/events', '/api/session', `/api/batch/${BATCH}`, `/batch/${BATCH}/report`, `/thumb/${BATCH}?path=x`, '/nope']) {
      const r = await request(p);
      expect(r.status, p).toBe(401);
      expect(r.body.length, p).toBe(0);
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
    }
    const wrong = await request('/api/state', { headers: { authorization: 'Bearer wrong' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.length).toBe(0);
    // The token in a cookie or in the address is no credential.
    expect((await request('/api/state', { headers: { cookie: `kluis_${dash.port}=${dash.token}` } })).status).toBe(401);
    expect((await request(`/api/state?token=${dash.token}`)).status).toBe(401);
  });

  it('with a foreign Host header (DNS rebinding): 403 and an empty body, token or not', async () => {
    const r = await request('/api/state', { headers: auth(), host: `evil.example:${dash.port}` });
    expect(r.status).toBe(403);
    expect(r.body.length).toBe(0);
    expect((await request('/', { host: `evil.example:${dash.port}` })).status).toBe(403);
  });

  it('serves the page shell without the token: no data, no cookie, the strict headers', async () => {
    const page = await request(`/?token=${dash.token}`);
    expect(page.status).toBe(200);
    expect(page.headers['set-cookie']).toBeUndefined();
    const html = page.body.toString();
    expect(html).toContain('<html lang="nl">');
    expect(html).not.toContain(dash.token);
    expect(html).not.toContain('test-station'); // no station data in the shell
    expect(html).not.toContain(BATCH);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/https?:\/\//); // no external asset
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('deletes the token cookie an older version left, on any response', async () => {
    const r = await request('/app.css', { headers: { cookie: `kluis_${dash.port}=${dash.token}` } });
    expect(String(r.headers['set-cookie']?.[0])).toMatch(new RegExp(`^kluis_${dash.port}=; Max-Age=0;`));
  });

  it('gives the CSRF value only with the token; it is not derived from the token', async () => {
    const r = await request('/api/session', { headers: auth() });
    expect(r.status).toBe(200);
    const j = JSON.parse(r.body.toString()) as { csrf: string; station: string };
    expect(j.station).toBe('test-station');
    expect(j.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(j.csrf).not.toContain(dash.token);
    expect(j.csrf).toBe(csrf);
  });

  it('a ticket from an action opens the report once, in a navigation without the header', async () => {
    const t = await post('/api/ticket', { path: `/batch/${BATCH}/report` });
    expect(t.status).toBe(200);
    const { url } = JSON.parse(t.body.toString()) as { url: string };
    expect(url).toMatch(new RegExp(`^/batch/${BATCH}/report\\?ticket=[A-Za-z0-9_-]+$`));
    const first = await request(url);
    expect(first.status).toBe(200);
    expect(first.body.toString()).toContain('DCIM/100MEDIA/DJI_0003.JPG');
    expect((await request(url)).status).toBe(401);
    expect((await post('/api/ticket', { path: '/api/state' })).status).toBe(400);
  });
});

describe('what it shows', () => {
  it('the card, its rejected file with code, message and hint, files with removed items, the failed delivery, targets', async () => {
    const s = await state();
    expect(s.station).toBe('test-station');
    const c = s.cards.find((x) => x.batchId === BATCH)!;
    expect(c.state).toBe('inserted');
    expect(c.problems).toContainEqual({ path: 'DCIM/100MEDIA/DJI_0002.JPG', status: 'rejected', code: 'E_CARD_EMPTY', message: 'the file is empty', hint: 'copy it again from the drone' });
    const f3 = c.files.find((f) => f.path === 'DCIM/100MEDIA/DJI_0003.JPG')!;
    expect(f3.removed).toEqual([{ where: 'APP1/Exif', what: 'GPS position', bytes: 120 }]);
    expect(f3.thumb).toBe(true);
    expect(c.deliveries).toEqual([expect.objectContaining({ object: OBJ, label: 'DCIM/100MEDIA/DJI_0003.JPG', target: 'local', state: 'failed', canRetry: true })]);
    const t = s.targets.find((x) => x.name === 'local')!;
    expect(t).toMatchObject({ type: 'fs', class: 'onprem', required: true, lastError: { code: 'E_TARGET_UNREACHABLE' } });
  });

  it('while a card is read, unread files are still to come, not "card removed"', async () => {
    const c = (await state()).cards.find((x) => x.batchId === BATCH)!;
    expect(c.files.find((f) => f.path === 'DCIM/100MEDIA/DJI_0001.JPG')).toMatchObject({ status: 'queued' });
    expect(c.problems.map((p) => p.path)).not.toContain('DCIM/100MEDIA/DJI_0001.JPG');
    expect(c.problems.map((p) => p.path)).not.toContain('DCIM/100MEDIA/DJI_0004.JPG');
    expect(c.problems.map((p) => p.code)).not.toContain('E_CARD_REMOVED');
  });

  it('a pulled card says so, with the number of files left and E_CARD_REMOVED on each', async () => {
    const c = (await state()).cards.find((x) => x.batchId === PULLED)!;
    expect(c.state).toBe('missing');
    expect(c.remaining).toBe(1);
    expect(c.problems).toEqual([expect.objectContaining({ path: 'DCIM/100MEDIA/B.JPG', code: 'E_CARD_REMOVED' })]);
  });

  it('a card read completely with a failed file and nothing left to do is "partial", with the error', async () => {
    const c = (await state()).cards.find((x) => x.batchId === ENDED)!;
    expect(c.state).toBe('partial');
    expect(c.problems).toEqual([{ path: 'DCIM/100MEDIA/C.MP4', status: 'failed', code: 'E_SANITIZE_BOX_TRUNCATED', message: 'box mdat is cut off', hint: 'the file is damaged' }]);
  });

  it('serves a thumbnail from the spool, and nothing for a path outside it', async () => {
    const ok = await request(`/thumb/${BATCH}?path=${encodeURIComponent('DCIM/100MEDIA/DJI_0003.JPG')}`, { headers: auth() });
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('image/jpeg');
    expect(ok.headers['cache-control']).toBe('no-store');
    const outside = await request(`/thumb/${BATCH}?path=${encodeURIComponent('DCIM/100MEDIA/DJI_0004.JPG')}`, { headers: auth() });
    expect(outside.status).toBe(404);
    expect(outside.body.length).toBe(0);
  });

  it('pushes reading progress over SSE when the pipeline writes an event', async () => {
    const got = await new Promise<DashboardState>((resolve, reject) => {
      const r = http.get({ host: '127.0.0.1', port: dash.port, path: '/api/events', headers: { ...auth(), host: `127.0.0.1:${dash.port}` } }, (res) => {
        expect(res.headers['content-type']).toMatch(/text\/event-stream/);
        let buf = '';
        let wrote = false;
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const msg = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = msg.split('\n').find((l) => l.startsWith('data: '));
            if (!data) continue;
            const s = JSON.parse(data.slice(6)) as DashboardState;
            const c = s.cards.find((x) => x.batchId === BATCH);
            if (c?.progress) {
              r.destroy();
              resolve(s);
            } else if (!wrote) {
              wrote = true;
              // Two progress events 2 s apart in event time (as the pipeline would write them).
              const t0 = Date.now();
              const ins = station.journal.db.prepare('INSERT INTO events (time, batch_id, type, data) VALUES (?, ?, ?, ?)');
              const ev = (t: number, bytesDone: number, filesDone: number) =>
                ins.run(new Date(t).toISOString(), BATCH, 'acquire-progress', JSON.stringify({ type: 'acquire-progress', batchId: BATCH, path: 'DCIM/100MEDIA/DJI_0001.JPG', bytesDone, bytesTotal: 100_000_000, filesDone, filesTotal: 2 }));
              ev(t0, 0, 0);
              ev(t0 + 2000, 40_000_000, 1);
            }
          }
        });
      });
      r.on('error', reject);
    });
    const c = got.cards.find((x) => x.batchId === BATCH)!;
    expect(c.state).toBe('reading');
    expect(c.progress).toMatchObject({ bytesDone: 40_000_000, bytesTotal: 100_000_000, filesDone: 1, filesTotal: 2 });
    // 40 MB in 2 s of event time: 20 MB/s, 3 s left.
    expect(c.progress!.rate).toBeCloseTo(20_000_000, -3);
    expect(c.progress!.eta).toBe(3);
  });
});

describe('actions', () => {
  let n = 0;
  /** A batch of its own with one sealed object whose delivery to `local` is in `state`. */
  async function batchWithObject(deliveryState: 'failed' | 'verified'): Promise<{ batchId: string; key: string }> {
    const batchId = `act${String(++n).padStart(21, '0')}`;
    const j = station.journal;
    j.createBatch({ id: batchId, card_fingerprint: `fp-${batchId}`, card_root: '/media/x', card_label: null, card_uuid: null, operator: null, case_ref: null, status: 'delivering', recipients: '[]' });
    const sp = await ensureSpool(station.layout.spoolDir, batchId);
    const bytes = Buffer.from(`ciphertext of ${batchId} `.repeat(50));
    const objectId = `obj${batchId}`;
    const sealedPath = path.join(sp.sealed, objectId);
    await fsp.writeFile(sealedPath, bytes);
    j.addFile({ batch_id: batchId, path: 'DCIM/100MEDIA/P.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'sealed', object_id: objectId, sealed_path: sealedPath, sealed_sha256: sha(bytes), sealed_size: bytes.length });
    const key = `${batchId}/${objectId}`;
    j.enqueue(batchId, key, ['local'], { size: bytes.length, sha256: sha(bytes), localPath: sealedPath });
    if (deliveryState === 'failed') {
      j.setDelivery(batchId, key, 'local', { state: 'failed', attempts: 2, last_error_code: 'E_TARGET_UNREACHABLE', last_error: 'gone' });
    } else {
      await station.targets.get('local')!.put(key, () => Readable.from([bytes]), { size: bytes.length, sha256: sha(bytes) });
      j.setDelivery(batchId, key, 'local', { state: 'verified' });
    }
    return { batchId, key };
  }

  it('refuses an action without the CSRF value, as a form post or from another origin', async () => {
    const { batchId, key } = await batchWithObject('failed');
    const body = { batchId, object: key, target: 'local' };
    const noCsrf = await request('/api/retry', { method: 'POST', body: JSON.stringify(body), headers: { ...auth(), 'content-type': 'application/json' } });
    expect(noCsrf.status).toBe(403);
    expect((await post('/api/retry', body, { 'content-type': 'text/plain' })).status).toBe(403);
    expect((await post('/api/retry', body, { origin: 'http://evil.example' })).status).toBe(403);
    expect(station.journal.deliveries(batchId)[0]!.state).toBe('failed');
  });

  it('retries a failed delivery: put, read back, verified; the target is reachable again', async () => {
    const { batchId, key } = await batchWithObject('failed');
    const r = await post('/api/retry', { batchId, object: key, target: 'local' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toMatchObject({ ok: true, state: 'verified', worked: 'done' });
    expect(await fsp.readFile(path.join(dir, 'store', ...key.split('/')))).toEqual(await fsp.readFile(station.journal.deliveries(batchId)[0]!.local_path));
    expect((await state()).targets.find((t) => t.name === 'local')!.reachable).toBe('yes');
    const again = await post('/api/retry', { batchId, object: key, target: 'local' });
    expect(again.status).toBe(409);
    expect(JSON.parse(again.body.toString()).error.code).toBe('E_DASHBOARD_NOTHING_TO_DO');
  });

  it('re-checks stored ciphertext: fine, then a changed object is a mismatch, a removed one missing', async () => {
    const { batchId, key } = await batchWithObject('verified');
    const run = async () => {
      const r = await post('/api/verify', { batchId });
      expect(r.status).toBe(202);
      return until(async () => {
        const v = (await state()).cards.find((c) => c.batchId === batchId)!.verify;
        return v && !v.running ? v : undefined;
      }, 'the re-check');
    };
    const ok = await run();
    expect(ok.items).toEqual([{ object: key, label: 'DCIM/100MEDIA/P.JPG', target: 'local', result: 'ok' }]);
    const stored = path.join(dir, 'store', ...key.split('/'));
    await fsp.chmod(stored, 0o644);
    await fsp.appendFile(stored, 'x');
    const bad = await run();
    expect(bad.items[0]).toMatchObject({ result: 'mismatch' });
    await fsp.rm(stored);
    const gone = await run();
    expect(gone.items[0]).toMatchObject({ result: 'missing' });
    // The journal is not changed by a re-check; the audit log records each result.
    expect(station.journal.deliveries(batchId)[0]!.state).toBe('verified');
  });

  it('opens a batch report built from the journal, with the report CSP', async () => {
    const r = await request(`/batch/${BATCH}/report`, { headers: auth() });
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toContain("default-src 'none'");
    expect(r.headers['content-security-policy']).not.toContain('script');
    expect(r.body.toString()).toContain('DCIM/100MEDIA/DJI_0003.JPG');
    const missing = await request('/batch/nope/report', { headers: auth() });
    expect(missing.status).toBe(404);
  });
});

describe('bind', () => {
  it('refuses a non-loopback address without --allow-remote-bind', async () => {
    await expect(startDashboard(station, { bind: '0.0.0.0', port: 0, log: () => undefined })).rejects.toMatchObject({ code: 'E_DASHBOARD_BIND' });
  });
});
