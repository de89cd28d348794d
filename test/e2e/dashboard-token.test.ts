// The dashboard's token in a real browser (issue 15, item 13), Debian's Chromium through
// playwright-core. Cookies ignore ports: a cookie holding the token would be sent by the
// operator's browser to every other service on 127.0.0.1 it visits. So:
//  - after logging in there is no cookie at all, and another local service the same browser
//    visits receives no credential (a small HTTP server on another port records what it gets);
//  - the page keeps the token where only its own origin (scheme, host AND port) can read it;
//  - after `kluis serve` restarts on the same port, the old tab shows a login prompt (never a
//    bare 401), and opening the new address in that same tab logs in cleanly.
// Thumbnails, which an <img> cannot fetch with a header, are fetched by the page with the token
// and shown as blobs (a dashboard started in-process over a journal row with a real thumbnail).
// A screenshot of the prompt is saved under test-results/dashboard/.
//
// Needs the build (`npm run build`: it bundles the page script the server serves).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { makeStation, repoRoot, spawnKluis, type TestStation } from '../helpers/kluis.js';
import { makeMediaFile } from '../helpers/card.js';
import { openStation } from '../../src/pipeline/station.js';
import { ensureSpool } from '../../src/pipeline/spool.js';
import { startDashboard } from '../../src/dashboard/server.js';

const shots = path.join(repoRoot, 'test-results', 'dashboard');
let st: TestStation;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let other: http.Server;
let otherPort = 0;
const seenByOther: http.IncomingHttpHeaders[] = [];
let serve: ReturnType<typeof spawnKluis> | undefined;
let port = 0;

/** Starts `kluis serve` on `p` (0 = any) and returns its login address. */
async function startServe(p: number): Promise<string> {
  serve = spawnKluis(['serve', '--config', st.config, '--port', String(p)]);
  let out = '';
  serve.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 400 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
  const url = out.split('\n')[0]!.trim();
  // (Older versions printed ?token=; accepted here so that this test shows what they did wrong.)
  expect(url, `serve said: ${serve.stderr()}`).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[?#]token=[A-Za-z0-9_-]{43}$/);
  return url;
}

async function stopServe(): Promise<void> {
  if (serve && serve.child.exitCode === null) {
    serve.child.kill('SIGINT');
    await serve.exited;
  }
  serve = undefined;
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  st = makeStation();
  other = http.createServer((req, res) => {
    seenByOther.push(req.headers);
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>another local service</title><p>hello</p>');
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', () => resolve()));
  otherPort = (other.address() as import('node:net').AddressInfo).port;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  context = await browser.newContext();
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopServe();
  await new Promise<void>((resolve) => (other ? other.close(() => resolve()) : resolve()));
});

describe('the dashboard token in Chromium', () => {
  it('logs in from the printed address, drops the token from the address bar and sets no cookie', async () => {
    const loginUrl = await startServe(0);
    port = Number(new URL(loginUrl).port);
    const resp = await page.goto(loginUrl);
    expect(resp?.status()).toBe(200);
    await page.getByTestId('no-cards').waitFor();
    expect(page.url()).toBe(`http://127.0.0.1:${port}/`);
    expect(await context.cookies()).toEqual([]);
  });

  it('another local service the browser visits gets no credential, and cannot read the token', async () => {
    const token = await page.evaluate(() => sessionStorage.getItem('kluis-token'));
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const p2 = await context.newPage();
    await p2.goto(`http://127.0.0.1:${otherPort}/`);
    expect(seenByOther.length).toBeGreaterThan(0);
    for (const h of seenByOther) {
      expect(h.cookie, 'a cookie reached another port').toBeUndefined();
      expect(JSON.stringify(h)).not.toContain(token!);
    }
    // Storage is per origin, and the port is part of the origin.
    expect(await p2.evaluate(() => [sessionStorage.length, localStorage.length])).toEqual([0, 0]);
    await p2.close();
  });

  it('after a restart on the same port the old tab asks for the new address, and the new address logs in', async () => {
    await stopServe();
    const second = await startServe(port);
    expect(Number(new URL(second).port)).toBe(port);

    // The old tab, reloaded: the page itself (200), a login prompt saying what happened.
    const again = await page.reload();
    expect(again?.status()).toBe(200);
    const login = page.getByTestId('login');
    await login.waitFor();
    expect(await page.getByTestId('login-text').textContent()).toMatch(/opnieuw gestart/);
    await page.screenshot({ path: path.join(shots, 'login-after-restart.png'), fullPage: true });

    // The new address opened in the same tab (only the fragment changes: no navigation by itself).
    await page.goto(second);
    await page.getByTestId('no-cards').waitFor();
    expect(await login.isHidden()).toBe(true);
    expect(page.url()).toBe(`http://127.0.0.1:${port}/`);
    expect(await context.cookies()).toEqual([]);
  });

  it('a browser that still holds the old cookie from an older version gets it deleted, and it opens nothing', async () => {
    const fresh = await browser.newContext();
    await fresh.addCookies([{ name: `kluis_${port}`, value: 'x'.repeat(43), domain: '127.0.0.1', path: '/', httpOnly: true, sameSite: 'Strict' }]);
    const p = await fresh.newPage();
    const r = await p.goto(`http://127.0.0.1:${port}/`);
    expect(r?.status()).toBe(200);
    await p.getByTestId('login').waitFor();
    expect((await fresh.cookies()).filter((c) => c.name === `kluis_${port}`)).toEqual([]);
    await fresh.close();
  });
});

describe('thumbnails', () => {
  it('are fetched with the token header and shown', async () => {
    const st2 = makeStation();
    const station = await openStation(st2.config);
    const batchId = 'b000000000000000000thumb';
    station.journal.createBatch({ id: batchId, card_fingerprint: 'fp-thumb', card_root: '/media/thumbcard', card_label: null, card_uuid: null, operator: null, case_ref: null, status: 'acquiring', recipients: '[]' });
    const sp = await ensureSpool(station.layout.spoolDir, batchId);
    const thumb = path.join(sp.thumbs, 't1.jpg');
    makeMediaFile(thumb, { kind: 'jpeg', name: 't1.jpg' });
    station.journal.addFile({ batch_id: batchId, path: 'DCIM/100MEDIA/DJI_0001.JPG', class: 'footage', format: 'jpeg', size: 10, mtime_ms: 0, state: 'sanitized', thumb_path: thumb });
    const dash = await startDashboard(station, { port: 0, log: () => undefined });
    const ctx = await browser.newContext();
    try {
      const p = await ctx.newPage();
      await p.goto(dash.loginUrl);
      const img = p.locator('img.thumb');
      await img.waitFor();
      await p.waitForFunction(() => {
        const i = document.querySelector('img.thumb') as HTMLImageElement | null;
        return !!i && i.complete && i.naturalWidth > 0;
      });
      expect(await img.getAttribute('src')).toMatch(/^blob:/);
    } finally {
      await ctx.close();
      await dash.close();
      await station.close();
    }
  });
});
