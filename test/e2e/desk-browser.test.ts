// The evidence desk page end to end in Debian's Chromium (playwright-core, never a downloaded
// browser). Two stations of one organisation deliver to a shared NAS folder; a desk made with
// `kluis init --desk` serves `kluis serve --desk`. In the page: every batch is listed; search by
// case, station and date narrows it; a batch shows its files, what was removed and its custody
// record (operator, case, card, times); the verify button shows the end-to-end result; export
// writes a folder that `kluis mhl verify` finds clean, and a non-empty folder is refused. A
// custody record altered on the NAS shows as such, with its code. The page has the dashboard's
// gate: no token 401, foreign Host 403, action without CSRF 403, strict CSP. The desk never
// writes to the NAS. Screenshots go to test-results/desk/.
//
// Needs the build (`npm run build`: it bundles the page script the server serves).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { listFiles, parseJson, repoRoot, runKluis, spawnKluis } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

const shots = path.join(repoRoot, 'test-results', 'desk');
let tmp: string;
let nas: string;
let desk: string;
let serve: ReturnType<typeof spawnKluis>;
let loginUrl = '';
let port = 0;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
const batch: Record<'a' | 'b', string> = { a: '', b: '' };

function raw(method: string, p: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path: p, method, headers }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

function ok(args: string[]): string {
  const r = runKluis(args);
  if (r.code !== 0) throw new Error(`kluis ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kluis-desk-e2e-'));
  nas = path.join(tmp, 'nas');
  mkdirSync(nas);
  mkdirSync(shots, { recursive: true });
  const A = path.join(tmp, 'A');
  const B = path.join(tmp, 'B');
  ok(['init', '--dir', A, '--station', 'a']);
  ok(['init', '--dir', B, '--station', 'b', '--admin-key', path.join(A, 'keys', 'admin.key'), '--recipient', path.join(A, 'keys', 'evidence.pub')]);
  for (const s of [A, B]) ok(['targets', 'add', 'nas', '--config', path.join(s, 'kluis.json'), '--type', 'fs', '--url', nas, '--required', '--admin-key', path.join(A, 'keys', 'admin.key')]);
  const cardA = makeCard(path.join(tmp, 'cardA'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }, { kind: 'srt', name: 'DJI_0001.SRT' }]);
  const cardB = makeCard(path.join(tmp, 'cardB'), [{ kind: 'jpeg', name: 'DJI_0101.JPG' }]);
  batch.a = parseJson(runKluis(['ingest', cardA, '--config', path.join(A, 'kluis.json'), '--operator', 'alice', '--case', 'PV-2026-A', '--json'])).batchId;
  batch.b = parseJson(runKluis(['ingest', cardB, '--config', path.join(B, 'kluis.json'), '--operator', 'bob', '--case', 'PV-2026-B', '--json'])).batchId;
  desk = path.join(tmp, 'D');
  ok(['init', '--desk', '--dir', desk, '--admin-key', path.join(A, 'keys', 'admin.key'), '--trust', path.join(A, 'kluis.json'), '--trust', path.join(B, 'kluis.json')]);
  copyFileSync(path.join(A, 'keys', 'evidence.key'), path.join(desk, 'keys', 'evidence.key'));
  chmodSync(path.join(desk, 'keys', 'evidence.key'), 0o600);

  serve = spawnKluis(['serve', '--desk', '--config', path.join(desk, 'kluis.json'), '--port', '0', '--operator', 'clerk']);
  let out = '';
  serve.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 400 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
  loginUrl = out.split('\n')[0]!.trim();
  expect(loginUrl, `serve said: ${serve.stderr()}`).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{43}$/);
  port = Number(new URL(loginUrl).port);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (serve && serve.child.exitCode === null) {
    serve.child.kill('SIGINT');
    await serve.exited;
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('evidence desk page in Chromium', () => {
  let nasBefore: string[] = [];

  it('opens with the token, drops it from the address, and lists the batches of both stations', async () => {
    nasBefore = listFiles(nas);
    const resp = await page.goto(loginUrl);
    expect(resp?.status()).toBe(200);
    expect(page.url()).toBe(`http://127.0.0.1:${port}/`);
    await page.locator('[data-testid="row"]').nth(1).waitFor();
    const rows = await page.locator('[data-testid="row"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-batch')));
    expect(rows.sort()).toEqual([batch.a, batch.b].sort());
    expect(await page.getAttribute('html', 'lang')).toBe('nl');
    await page.screenshot({ path: path.join(shots, '0-all.png'), fullPage: true });
  });

  it('searches by case, by station and by date', async () => {
    const rowsNow = (): Promise<Array<string | null>> => page.locator('[data-testid="row"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-batch')));
    await page.getByTestId('q-case').fill('PV-2026-B');
    await page.getByTestId('find').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="row"]').length === 1);
    expect(await rowsNow()).toEqual([batch.b]);

    await page.getByTestId('q-case').fill('');
    await page.getByTestId('q-station').selectOption('a');
    await page.getByTestId('find').click();
    await page.waitForFunction((id) => {
      const r = document.querySelectorAll('[data-testid="row"]');
      return r.length === 1 && r[0]!.getAttribute('data-batch') === id;
    }, batch.a);

    await page.getByTestId('q-station').selectOption('');
    const tomorrow = new Date(Date.now() + 36 * 3600 * 1000).toISOString().slice(0, 10);
    await page.getByTestId('q-from').fill(tomorrow);
    await page.getByTestId('find').click();
    await page.getByTestId('no-batches').waitFor();
    const today = new Date().toISOString().slice(0, 10);
    await page.getByTestId('q-from').fill(today);
    await page.getByTestId('q-to').fill(today);
    await page.getByTestId('find').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="row"]').length === 2);
  });

  it("shows a batch: its files, what was removed, and its custody record (operator, case, card, times)", async () => {
    await page.getByTestId(`open-${batch.a}`).click();
    await page.getByTestId('custody-result').waitFor();
    expect(await page.getByTestId('d-case').textContent()).toBe('PV-2026-A');
    expect(await page.getByTestId('d-operator').textContent()).toBe('alice');
    expect(await page.getByTestId('custody-result').textContent()).toBe('in orde');
    expect(await page.getByTestId('c-operator').textContent()).toBe('alice');
    expect(await page.getByTestId('c-case').textContent()).toBe('PV-2026-A');
    expect(await page.getByTestId('c-card').textContent()).toMatch(/[0-9a-f]{64}/);
    expect(await page.getByTestId('c-seen').textContent()).not.toBe('?');
    expect(await page.getByTestId('c-safe').textContent()).not.toBe('?');
    const files = await page.getByTestId('file').allTextContents();
    expect(files.some((f) => f.includes('DCIM/100MEDIA/DJI_0001.JPG') && /gps/i.test(f))).toBe(true); // GPS removed, named
    expect(files.some((f) => f.includes('DJI_0001.SRT') && f.includes('withheld'))).toBe(true);
    await page.screenshot({ path: path.join(shots, '1-batch.png'), fullPage: true });
  });

  it('the verify button shows the end-to-end result', async () => {
    await page.getByTestId('verify').click();
    const res = page.getByTestId('verify-result');
    await res.waitFor({ timeout: 60_000 });
    expect(await res.getAttribute('data-result')).toBe('verified');
  });

  it('exports into a new folder that mhl verify finds clean, and refuses a folder that is not empty', async () => {
    const out = path.join(tmp, 'export-a');
    await page.getByTestId('export-out').fill(out);
    await page.getByTestId('export').click();
    await page.waitForFunction(() => /\d+/.test(document.querySelector('[data-testid="export-out-msg"]')?.textContent ?? ''));
    expect(await page.getByTestId('export-out-msg').textContent()).toContain(out);
    expect(listFiles(out)).toEqual(expect.arrayContaining(['sanitized/DCIM/100MEDIA/DJI_0001.JPG', 'custody.json', 'report.html']));
    const mhl = runKluis(['mhl', 'verify', out]);
    expect(mhl.code, mhl.stdout).toBe(0);

    const busy = path.join(tmp, 'busy');
    mkdirSync(busy);
    writeFileSync(path.join(busy, 'other.txt'), 'not evidence');
    await page.getByTestId('export-out').fill(busy);
    await page.getByTestId('export').click();
    const alert = page.locator('#alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('E_DESK_EXPORT_FOLDER');
    expect(listFiles(busy)).toEqual(['other.txt']);
  });

  it('a custody record altered on the NAS shows as altered, with its code, in the batch and in verify', async () => {
    const rec = path.join(nas, batch.b, 'custody');
    const bytes = readFileSync(rec);
    bytes[bytes.length - 10]! ^= 0x01;
    chmodSync(rec, 0o644);
    writeFileSync(rec, bytes);
    await page.getByTestId('find').click(); // the list as it was
    await page.getByTestId('q-from').fill('');
    await page.getByTestId('q-to').fill('');
    await page.getByTestId('find').click();
    await page.getByTestId(`open-${batch.b}`).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="custody-result"]')?.textContent === 'AFWIJKING');
    expect(await page.getByTestId('custody').textContent()).toContain('E_CUSTODY_ALTERED');
    await page.getByTestId('verify').click();
    await page.getByTestId('verify-result').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('verify-result').getAttribute('data-result')).toBe('mismatch');
    expect(await page.getByTestId('verify-problems').textContent()).toContain('E_CUSTODY_ALTERED');
    await page.screenshot({ path: path.join(shots, '2-altered.png'), fullPage: true });
    writeFileSync(rec, (bytes[bytes.length - 10]! ^= 0x01, bytes));
  });

  it('switches to English from the keyboard', async () => {
    await page.locator('[data-lang="en"]').focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    expect(await page.locator('h1').textContent()).toBe('kluis: evidence desk');
  });

  it("has the dashboard's gate: no token 401, foreign Host 403, an action without CSRF 403, a strict CSP", async () => {
    const token = /#token=([A-Za-z0-9_-]+)$/.exec(loginUrl)![1]!;
    expect(await raw('GET', '/api/catalog', { host: `127.0.0.1:${port}` })).toMatchObject({ status: 401, body: '' });
    expect(await raw('GET', '/api/catalog', { host: `attacker.example:${port}`, authorization: `Bearer ${token}` })).toMatchObject({ status: 403, body: '' });
    const noCsrf = await raw('POST', '/api/export', { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify({ batchId: batch.a, out: path.join(tmp, 'x') }));
    expect(noCsrf).toMatchObject({ status: 403, body: '' });
    // The page shell is served without the token, and holds nothing: no data, no CSRF value.
    const pageResp = await raw('GET', '/', { host: `127.0.0.1:${port}` });
    expect(pageResp.status).toBe(200);
    expect(pageResp.body).not.toMatch(/csrf|PV-2026|alice/i);
    expect(await raw('GET', '/api/session', { host: `127.0.0.1:${port}` })).toMatchObject({ status: 401, body: '' });
    expect(String(pageResp.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(String(pageResp.headers['content-security-policy'])).toContain("default-src 'none'");
    expect(pageResp.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('asks for the address again when the token is stale (another start of the desk), and shows nothing', async () => {
    const other = await (await browser.newContext()).newPage();
    await other.goto(`http://127.0.0.1:${port}/#token=${'x'.repeat(43)}`);
    await other.getByTestId('login-text').waitFor();
    expect(await other.getByTestId('login-text').textContent()).toContain('opnieuw gestart');
    expect(await other.locator('[data-testid="row"]').count()).toBe(0);
    await other.close();
  });

  it('never wrote to the NAS; what it did is in the desk log; no script error', async () => {
    expect(listFiles(nas)).toEqual(nasBefore);
    const lines = readFileSync(path.join(desk, 'state', 'desk-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; batchId?: string; by?: string });
    expect(lines.filter((l) => l.by === 'desk page').map((l) => `${l.type}:${l.batchId}`)).toEqual(expect.arrayContaining([`verified:${batch.a}`, `export:${batch.a}`, `verify-failed:${batch.b}`]));
    expect(pageErrors).toEqual([]);
  });
});
