// The batch report: made from a real JPEG and a real MP4 (both generated here with ffmpeg's
// test source), opened in real Chromium, screenshotted to test-results/report.png; every file
// row, its thumbnail (decoded: naturalWidth > 0) and its hashes must be visible. Also printed to
// PDF with Chromium's print-to-PDF.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { buildReport, renderThumbnail, reportToPdf, type ReportData } from '../../src/evidence/report.js';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '..', '..');
let dir: string;
let browser: Browser;
let data: ReportData;

const h = (c: string): string => c.repeat(64);

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-report-'));
  const jpg = path.join(dir, 'DJI_0001.JPG');
  const mp4 = path.join(dir, 'DJI_0002.MP4');
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=640x480', '-frames:v', '1', jpg]);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', mp4]);
  const [tj, tv] = await Promise.all([renderThumbnail(jpg, 'jpeg'), renderThumbnail(mp4, 'mp4')]);
  data = {
    batchId: 'B20240501-101500-ab12',
    card: { label: 'DJI <card>', uuid: '1234-ABCD', fingerprint: h('f') },
    station: 'station-lelystad-1',
    operator: 'J. Jansen',
    case: 'PV-2024-0017',
    times: { start: '2024-05-01T10:15:00.000Z', end: '2024-05-01T10:17:31.000Z' },
    status: 'partial',
    targets: [
      { name: 'nas', type: 'fs', class: 'onprem', required: true },
      { name: 'cloud-nl', type: 's3', class: 'cloud', required: false },
    ],
    files: [
      {
        path: 'DCIM/100MEDIA/DJI_0001.JPG',
        class: 'footage',
        status: 'secured',
        format: 'jpeg',
        size: 123456,
        cardSha256: h('a'),
        sanitizedSha256: h('b'),
        essence: [{ method: 'jpeg-scan-sha256', before: h('c'), after: h('c') }],
        removed: [{ where: 'APP1/Exif/GPS', what: 'gps', bytes: 312 }, { where: 'APP1/XMP', what: 'vendor-xmp', bytes: 2048 }],
        stored: [{ target: 'nas', objectId: 'o-7f3a', ciphertextSha256: h('d') }],
        verification: [{ target: 'nas', result: 'verified' }],
        thumbnail: tj,
      },
      {
        path: 'DCIM/100MEDIA/DJI_0002.MP4',
        class: 'footage',
        status: 'secured',
        format: 'mp4',
        size: 9_876_543,
        cardSha256: h('1'),
        sanitizedSha256: h('2'),
        essence: [{ method: 'ffmpeg-streamhash-sha256', before: h('3'), after: h('3') }],
        removed: [{ where: 'track 3 (djmd)', what: 'timed-metadata', bytes: 40960 }],
        stored: [{ target: 'nas', objectId: 'o-91bc' }],
        verification: [{ target: 'nas', result: 'verified' }, { target: 'cloud-nl', result: 'missing', detail: 'object not found' }],
        thumbnail: tv,
      },
      {
        path: 'DCIM/100MEDIA/DJI_0002.SRT',
        class: 'sidecar',
        status: 'withheld',
        cardSha256: h('9'),
        thumbnailNote: 'sidecar, withheld',
      },
    ],
  };
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
});

afterAll(async () => {
  await browser?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('report', () => {
  it('thumbnails are small JPEGs made from the footage', async () => {
    const tj = data.files[0]!.thumbnail!;
    const tv = data.files[1]!.thumbnail!;
    for (const t of [tj, tv]) {
      expect(t.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))).toBe(true);
    }
    const sharp = (await import('sharp')).default;
    const mj = await sharp(tj).metadata();
    expect(Math.max(mj.width!, mj.height!)).toBe(320);
    expect(mj.exif).toBeUndefined();
    const mv = await sharp(tv).metadata();
    expect(mv.width).toBe(320);
  });

  it('renders offline in Chromium with every file, thumbnail and hash visible', async () => {
    const { html, json } = buildReport(data);
    const file = path.join(dir, 'report.html');
    await fsp.writeFile(file, html);
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    expect(html).toContain('DJI &lt;card&gt;');

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const external: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) external.push(r.url());
    });
    await page.goto(`file://${file}`);
    await fsp.mkdir(path.join(repoRoot, 'test-results'), { recursive: true });
    await page.screenshot({ path: path.join(repoRoot, 'test-results', 'report.png'), fullPage: true });
    expect(external).toEqual([]);

    for (const f of data.files) {
      const row = page.locator(`tr[data-row="${f.path}"]`);
      expect(await row.isVisible()).toBe(true);
      const block = page.locator(`section[data-file="${f.path}"]`);
      expect(await block.isVisible()).toBe(true);
      await block.scrollIntoViewIfNeeded();
      expect(await block.locator('[data-k="card-sha256"]').innerText()).toBe(f.cardSha256);
      if (f.sanitizedSha256) {
        expect(await block.locator('[data-k="sanitized-sha256"]').innerText()).toBe(f.sanitizedSha256);
        expect(await block.locator('[data-k="essence"]').innerText()).toContain(f.essence![0]!.after);
      }
      if (f.thumbnail) {
        const img = block.locator('img');
        expect(await img.isVisible()).toBe(true);
        const naturalWidth = await img.evaluate((el) => (el as HTMLImageElement).naturalWidth);
        expect(naturalWidth).toBeGreaterThan(0);
        const box = await img.boundingBox();
        expect(box!.width).toBeGreaterThan(0);
      } else {
        expect(await block.locator('.nothumb').innerText()).toContain('no preview');
      }
    }
    expect(await page.locator('section[data-file="DCIM/100MEDIA/DJI_0002.MP4"]').innerText()).toMatch(/cloud-nl: missing/);
    await page.close();

    const parsed = JSON.parse(json) as { files: Array<{ path: string; thumbnail: boolean; cardSha256?: string }> };
    expect(parsed.files.map((f) => [f.path, f.thumbnail])).toEqual([
      ['DCIM/100MEDIA/DJI_0001.JPG', true],
      ['DCIM/100MEDIA/DJI_0002.MP4', true],
      ['DCIM/100MEDIA/DJI_0002.SRT', false],
    ]);
    expect(parsed.files[0]!.cardSha256).toBe(h('a'));
  });

  it('prints to PDF with Chromium', async () => {
    const { html } = buildReport(data);
    const file = path.join(dir, 'report-pdf.html');
    await fsp.writeFile(file, html);
    const pdf = path.join(dir, 'report.pdf');
    await reportToPdf(file, pdf);
    const head = (await fsp.readFile(pdf)).subarray(0, 5).toString('latin1');
    expect(head).toBe('%PDF-');
  });
});
