/**
 * The per-batch evidence report: one self-contained HTML page (inline CSS, thumbnails as data:
 * URIs, no scripts, a CSP that forbids every external load) and the same data as JSON.
 *
 * Promises: everything the report states comes from `ReportData` as given, escaped; nothing is
 * looked up, rounded away or left out silently (a missing value prints as "—", a missing
 * thumbnail as "no preview" with the reason). It prints to A4 with repeated table headers and no
 * file split across pages. Thumbnails are made from the sanitized footage (sharp for images,
 * one ffmpeg frame for video) and carry no metadata.
 *
 * Never: loads anything over a network, embeds the original (unsanitized) footage.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { KluisError } from '../errors.js';
import { runFfmpeg, inputArgs } from '../wrappers/ffmpeg.js';
import { essenceLabel, type RecordedEssence } from '../sanitize/index.js';

// Every thumbnail is of a different file: libvips's operation cache would only hold memory.
sharp.cache(false);

export type VerifyOutcome = 'verified' | 'mismatch' | 'missing' | 'unchecked';

export interface ReportFile {
  /** Path on the card, e.g. DCIM/100MEDIA/DJI_0001.JPG. */
  path: string;
  class: 'footage' | 'sidecar' | 'other';
  /** secured / withheld / rejected / failed, as the pipeline decided. */
  status: string;
  format?: string;
  size?: number;
  cardSha256?: string;
  sanitizedSha256?: string;
  /** As the manifest records them (either form of the method, src/sanitize/essence-method.ts). */
  essence?: Array<RecordedEssence & { before: string; after: string }>;
  removed?: Array<{ where: string; what: string; bytes: number }>;
  kept?: string[];
  stored?: Array<{ target: string; objectId: string; ciphertextSha256?: string }>;
  verification?: Array<{ target: string; result: VerifyOutcome; detail?: string; time?: string }>;
  error?: { code: string; message: string };
  /** A JPEG thumbnail (from renderThumbnail); omitted from the JSON form. */
  thumbnail?: Buffer | null;
  /** Why there is no thumbnail, when there is none. */
  thumbnailNote?: string;
}

export interface ReportData {
  batchId: string;
  card: { label?: string; uuid?: string; fingerprint?: string };
  station: string;
  operator?: string;
  case?: string;
  times: { start: string; end?: string };
  status?: string;
  files: ReportFile[];
  targets: Array<{ name: string; type: string; class?: string; required?: boolean }>;
  tool?: { name: string; version: string };
  /** When the report was made (default now). */
  generatedAt?: string;
  notes?: string[];
}

export type ThumbnailFormat = 'jpeg' | 'tiff' | 'dng' | 'mp4' | 'mov';

const THUMB = 320;

/**
 * A small JPEG of the file (longest side 320 px), or null when the format has no picture we
 * can render (the caller records why). Video: one representative frame from ffmpeg.
 */
export async function renderThumbnail(file: string, format: ThumbnailFormat): Promise<Buffer | null> {
  if (format === 'mp4' || format === 'mov') {
    // The most representative of the first few keyframes only (the decoder skips every other
    // frame), scaled down before the choice so that only small frames are held; one decoder
    // thread, so the 4K frames in flight do not grow with the core count. A stream without
    // keyframes the decoder marks as such gives nothing: then the first frames, decoded in full.
    const frame = async (keyOnly: boolean): Promise<Buffer> =>
      (
        await runFfmpeg(
          [
            ...(keyOnly ? ['-skip_frame', 'nokey'] : []), '-threads', '1', ...inputArgs(file), '-map', '0:v:0',
            '-vf', `scale=${THUMB}:${THUMB}:force_original_aspect_ratio=decrease,thumbnail=${keyOnly ? 5 : 10}`,
            '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', 'pipe:1',
          ],
          { collectStdout: 8 * 1024 * 1024, timeoutMs: 120_000 },
        )
      ).stdout;
    let stdout = await frame(true);
    if (stdout.length === 0) stdout = await frame(false);
    if (stdout.length === 0) return null;
    return sharp(stdout).jpeg({ quality: 75 }).toBuffer();
  }
  try {
    return await sharp(file, { limitInputPixels: 1e9, sequentialRead: true })
      .rotate()
      .resize(THUMB, THUMB, { fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 75 })
      .toBuffer();
  } catch (err) {
    if (format === 'dng' || format === 'tiff') return null; // raw data sharp cannot develop
    throw new KluisError('E_REPORT_THUMBNAIL', `cannot make a thumbnail of ${path.basename(file)}: ${(err as Error).message}`, { cause: err });
  }
}

function esc(v: unknown): string {
  return String(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function dash(v: unknown): string {
  return v === undefined || v === null || v === '' ? '<span class="none">—</span>' : esc(v);
}

function hash(v: string | undefined): string {
  return v ? `<code class="hash">${esc(v)}</code>` : '<span class="none">—</span>';
}

function bytes(n: number | undefined): string {
  if (n === undefined) return '<span class="none">—</span>';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]} <span class="exact">(${n.toLocaleString('en-US')} bytes)</span>`;
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 10.5pt/1.4 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #111; margin: 24px; }
h1 { font-size: 17pt; margin: 0 0 4px; }
h2 { font-size: 13pt; margin: 22px 0 8px; border-bottom: 2px solid #222; padding-bottom: 2px; }
h3 { font-size: 11pt; margin: 0 0 6px; word-break: break-all; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 3px 6px; border-bottom: 1px solid #ccc; }
th { background: #eee; font-weight: 600; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
.meta th { width: 11em; background: none; }
code, .hash { font: 8.5pt/1.3 "DejaVu Sans Mono", "Liberation Mono", monospace; word-break: break-all; }
.none { color: #888; }
.exact { color: #666; font-size: 8.5pt; }
.status { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 600; border: 1px solid #555; }
.s-secured, .s-verified { background: #dff3df; border-color: #2a7a2a; }
.s-withheld, .s-unchecked, .s-partial { background: #fff4d6; border-color: #a07800; }
.s-rejected, .s-failed, .s-mismatch, .s-missing { background: #fbdede; border-color: #a02020; }
.file { display: grid; grid-template-columns: ${THUMB / 2 + 10}px 1fr; gap: 12px; border: 1px solid #bbb; padding: 10px; margin: 0 0 10px; page-break-inside: avoid; break-inside: avoid; }
.thumb img { width: ${THUMB / 2}px; height: auto; border: 1px solid #999; display: block; }
.thumb .nothumb { width: ${THUMB / 2}px; height: ${THUMB / 3}px; border: 1px dashed #999; color: #777; font-size: 8.5pt; display: flex; align-items: center; justify-content: center; text-align: center; padding: 4px; }
.kv th { width: 12em; background: none; font-weight: 600; }
.small { font-size: 9pt; }
footer { margin-top: 24px; font-size: 8.5pt; color: #555; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; font-size: 9.5pt; }
  h2 { page-break-after: avoid; break-after: avoid; }
  .file { page-break-inside: avoid; break-inside: avoid; }
  .status { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`;

function statusBadge(s: string): string {
  return `<span class="status s-${esc(s.replace(/[^a-z-]/g, ''))}">${esc(s)}</span>`;
}

function fileBlock(f: ReportFile, i: number): string {
  const thumb = f.thumbnail
    ? `<img alt="thumbnail of ${esc(f.path)}" src="data:image/jpeg;base64,${f.thumbnail.toString('base64')}">`
    : `<div class="nothumb">no preview${f.thumbnailNote ? `: ${esc(f.thumbnailNote)}` : ''}</div>`;
  const essence = f.essence?.length
    ? f.essence
        .map(
          (e) =>
            `<div><b>${esc(essenceLabel(e))}</b> ${e.before === e.after ? '<span class="status s-verified">before = after</span>' : '<span class="status s-mismatch">before ≠ after</span>'}<br>before ${hash(e.before)}<br>after&nbsp;&nbsp; ${hash(e.after)}</div>`,
        )
        .join('')
    : '<span class="none">—</span>';
  const removed = f.removed?.length
    ? `<ul class="small">${f.removed.map((r) => `<li>${esc(r.what)} at <code>${esc(r.where)}</code> (${esc(r.bytes)} bytes)</li>`).join('')}</ul>`
    : '<span class="none">nothing removed</span>';
  const stored = f.stored?.length
    ? f.stored.map((s) => `<div>${esc(s.target)}: <code>${esc(s.objectId)}</code>${s.ciphertextSha256 ? `<br><span class="small">ciphertext sha256 ${hash(s.ciphertextSha256)}</span>` : ''}</div>`).join('')
    : '<span class="none">not stored</span>';
  const verification = f.verification?.length
    ? f.verification.map((v) => `<div>${esc(v.target)}: ${statusBadge(v.result)}${v.detail ? ` <span class="small">${esc(v.detail)}</span>` : ''}${v.time ? ` <span class="small">${esc(v.time)}</span>` : ''}</div>`).join('')
    : '<span class="none">not verified</span>';
  return `
<section class="file" data-file="${esc(f.path)}" id="file-${i + 1}">
  <div class="thumb">${thumb}</div>
  <div>
    <h3>${i + 1}. ${esc(f.path)} ${statusBadge(f.status)}</h3>
    <table class="kv">
      <tr><th>class / format</th><td>${esc(f.class)}${f.format ? ` / ${esc(f.format)}` : ''}</td></tr>
      <tr><th>size</th><td>${bytes(f.size)}</td></tr>
      <tr><th>card SHA-256</th><td data-k="card-sha256">${hash(f.cardSha256)}</td></tr>
      <tr><th>sanitized SHA-256</th><td data-k="sanitized-sha256">${hash(f.sanitizedSha256)}</td></tr>
      <tr><th>essence</th><td data-k="essence">${essence}</td></tr>
      <tr><th>removed</th><td>${removed}</td></tr>
      ${f.kept?.length ? `<tr><th>kept on purpose</th><td class="small">${f.kept.map(esc).join('; ')}</td></tr>` : ''}
      <tr><th>stored</th><td>${stored}</td></tr>
      <tr><th>verification</th><td>${verification}</td></tr>
      ${f.error ? `<tr><th>error</th><td><code>${esc(f.error.code)}</code> ${esc(f.error.message)}</td></tr>` : ''}
    </table>
  </div>
</section>`;
}

/** Renders the report; `json` carries the same data without the thumbnail bytes. */
export function buildReport(data: ReportData): { html: string; json: string } {
  const generatedAt = data.generatedAt ?? new Date().toISOString();
  const counts = new Map<string, number>();
  for (const f of data.files) counts.set(f.status, (counts.get(f.status) ?? 0) + 1);
  const summaryRows = data.files
    .map(
      (f, i) =>
        `<tr data-row="${esc(f.path)}"><td>${i + 1}</td><td><a href="#file-${i + 1}">${esc(f.path)}</a></td><td>${esc(f.class)}</td><td>${statusBadge(f.status)}</td><td>${hash(f.cardSha256)}</td><td>${
          f.verification?.length ? f.verification.map((v) => `${esc(v.target)}: ${esc(v.result)}`).join('<br>') : '<span class="none">—</span>'
        }</td></tr>`,
    )
    .join('\n');
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="${esc(data.tool ? `${data.tool.name} ${data.tool.version}` : 'kluis')}">
<title>Evidence report — batch ${esc(data.batchId)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>Evidence report — batch <code>${esc(data.batchId)}</code></h1>
<div>${data.status ? statusBadge(data.status) : ''} ${[...counts].map(([s, n]) => `${n} ${esc(s)}`).join(', ')} of ${data.files.length} files</div>
<h2>Batch</h2>
<table class="meta">
  <tr><th>batch</th><td><code>${esc(data.batchId)}</code></td></tr>
  <tr><th>case / flight</th><td>${dash(data.case)}</td></tr>
  <tr><th>operator</th><td>${dash(data.operator)}</td></tr>
  <tr><th>station</th><td>${dash(data.station)}</td></tr>
  <tr><th>card label</th><td>${dash(data.card.label)}</td></tr>
  <tr><th>card UUID</th><td>${dash(data.card.uuid)}</td></tr>
  <tr><th>card fingerprint</th><td>${data.card.fingerprint ? hash(data.card.fingerprint) : dash(undefined)}</td></tr>
  <tr><th>started (UTC)</th><td>${dash(data.times.start)}</td></tr>
  <tr><th>finished (UTC)</th><td>${dash(data.times.end)}</td></tr>
  <tr><th>targets</th><td>${data.targets.map((t) => `${esc(t.name)} (${esc(t.type)}${t.class ? `, ${esc(t.class)}` : ''}${t.required === false ? ', optional' : ', required'})`).join('<br>') || dash(undefined)}</td></tr>
</table>
${data.notes?.length ? `<h2>Notes</h2><ul>${data.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h2>Files</h2>
<table class="summary">
<thead><tr><th>#</th><th>path on card</th><th>class</th><th>status</th><th>card SHA-256</th><th>verification</th></tr></thead>
<tbody>
${summaryRows}
</tbody>
</table>
<h2>File details</h2>
${data.files.map(fileBlock).join('\n')}
<footer>Generated ${esc(generatedAt)} by ${esc(data.tool ? `${data.tool.name} ${data.tool.version}` : 'kluis')}. Hashes are SHA-256 in hex unless named otherwise.
Card SHA-256 is of the bytes read from the card; sanitized SHA-256 is of the file as stored after telemetry removal; essence hashes cover the decoded picture and sound.</footer>
</body>
</html>
`;
  const json = JSON.stringify(
    {
      ...data,
      generatedAt,
      files: data.files.map(({ thumbnail, ...f }) => ({ ...f, thumbnail: Boolean(thumbnail) })),
    },
    null,
    2,
  );
  return { html, json };
}

/**
 * Prints an HTML report to PDF with headless Chromium (no network, throwaway profile).
 * Throws E_REPORT_PDF when Chromium is missing or fails.
 */
export async function reportToPdf(htmlFile: string, pdfFile: string, chromium = '/usr/bin/chromium'): Promise<void> {
  const profile = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-chromium-'));
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        chromium,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
          '--disable-extensions',
          '--no-pdf-header-footer',
          `--user-data-dir=${profile}`,
          `--print-to-pdf=${path.resolve(pdfFile)}`,
          `file://${path.resolve(htmlFile)}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      child.stderr.on('data', (c: Buffer) => {
        err = (err + c.toString('utf8')).slice(-4096);
      });
      child.on('error', (e) =>
        reject(new KluisError('E_REPORT_PDF', `cannot start Chromium (${chromium}): ${e.message}`, { hint: 'install chromium, or use the HTML report and print it from a browser', cause: e })),
      );
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new KluisError('E_REPORT_PDF', `Chromium failed to print the report (exit ${code}): ${err.trim().split('\n').slice(-2).join(' | ')}`));
      });
    });
    const st = await fsp.stat(pdfFile).catch(() => null);
    if (!st || st.size === 0) throw new KluisError('E_REPORT_PDF', 'Chromium wrote no PDF');
  } finally {
    await fsp.rm(profile, { recursive: true, force: true });
  }
}
