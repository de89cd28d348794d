#!/usr/bin/env node
// The catalog at scale (docs/scale.md): fills a fresh bucket on the test Ceph with generated,
// really signed and sealed batches of several stations, runs `kluis catalog` on it through an
// evidence desk config (wall time and peak memory by /usr/bin/time), and removes the bucket.
//
//   node scripts/scale-catalog.mjs [--batches 10000] [--stations 10] [--objects 3] [--keep]
//
// Needs the build (`npx tsc -p .`) and the test services (KLUIS_SERVICES_ENV, default
// .services.env: KLUIS_S3_ENDPOINT, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _REGION). Bounded: at most
// 20,000 batches and 10 objects per batch; the objects are small (their content does not matter
// to the catalog, only their names and sizes), the manifests are what kluis writes. Whatever
// happens, the bucket and the temp folder are removed unless --keep is given.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client, CreateBucketCommand, PutObjectCommand, ListObjectsV2Command, DeleteObjectsCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { createManifest } = await dist('seal/manifest.js');
const { generateKey, formatPublicKey, writeSecretKeyFile } = await dist('seal/keys.js');
const { signedDocument } = await dist('config/load.js');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const BATCHES = Math.min(arg('batches', 10_000), 20_000);
const STATIONS = Math.max(1, Math.min(arg('stations', 10), 50));
const OBJECTS = Math.max(0, Math.min(arg('objects', 3), 10));
const KEEP = process.argv.includes('--keep');
const PUT_CONCURRENCY = 16;

function services() {
  const file = process.env.KLUIS_SERVICES_ENV ?? path.join(root, '.services.env');
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  for (const k of ['KLUIS_S3_ENDPOINT', 'KLUIS_S3_ACCESS_KEY_ID', 'KLUIS_S3_SECRET_ACCESS_KEY', 'KLUIS_S3_REGION']) if (!env[k]) throw new Error(`${file} lacks ${k}`);
  return env;
}

async function pool(n, count, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < count) await fn(i++);
  }));
}

const svc = services();
const bucket = `kluis-scale-${Date.now().toString(36)}`;
const s3 = new S3Client({
  endpoint: svc.KLUIS_S3_ENDPOINT, region: svc.KLUIS_S3_REGION, forcePathStyle: true,
  credentials: { accessKeyId: svc.KLUIS_S3_ACCESS_KEY_ID, secretAccessKey: svc.KLUIS_S3_SECRET_ACCESS_KEY },
  requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 5,
});
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kluis-scale-'));
const log = (s) => process.stderr.write(`scale: ${s}\n`);

async function cleanBucket() {
  let removed = 0;
  for (;;) {
    const l = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
    const keys = (l.Contents ?? []).map((o) => ({ Key: o.Key }));
    if (keys.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    removed += keys.length;
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  return removed;
}

// Wall time and peak RSS from /usr/bin/time; the live JS heap from a preloaded observer: the heap
// in use just after each full (major) collection, i.e. what the catalog really holds, not what V8
// reserved. The observer only reads; it forces no collection.
const GC_PRELOAD = `
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { writeFileSync } from 'node:fs';
const after = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail && e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) after.push(getHeapStatistics().used_heap_size);
}).observe({ entryTypes: ['gc'] });
process.on('exit', () => writeFileSync(process.env.KLUIS_SCALE_GC_OUT, JSON.stringify(after)));
`;

function runCatalog(desk, key, extra) {
  const preload = path.join(tmp, 'gc-observer.mjs');
  if (!existsSync(preload)) writeFileSync(preload, GC_PRELOAD);
  const gcOut = path.join(tmp, `gc-${Date.now()}.json`);
  const args = ['-f', '%e %M', process.execPath, '--import', preload, path.join(root, 'bin', 'kluis.js'), 'catalog', '--config', desk, '--identity', key, '--json', ...extra];
  const r = spawnSync('/usr/bin/time', args, {
    env: { ...process.env, AWS_ACCESS_KEY_ID: svc.KLUIS_S3_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: svc.KLUIS_S3_SECRET_ACCESS_KEY, KLUIS_SCALE_GC_OUT: gcOut },
    maxBuffer: 512 * 1024 * 1024, encoding: 'utf8',
  });
  const last = r.stderr.trim().split('\n').pop() ?? '';
  const [secs, kb] = last.split(' ').map(Number);
  if (r.status !== 0) throw new Error(`catalog exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const doc = JSON.parse(r.stdout);
  const live = liveHeap(gcOut);
  return { seconds: secs, maxRssMiB: Math.round((kb / 1024) * 10) / 10, ...live, found: doc.batches.length, scanned: doc.scanned, problems: doc.problems.length };
}

function liveHeap(file) {
  if (!existsSync(file)) return {};
  const after = JSON.parse(readFileSync(file, 'utf8')).map((b) => Math.round((b / 1048576) * 10) / 10);
  if (after.length === 0) return { fullGcs: 0 };
  return { fullGcs: after.length, liveHeapMaxMiB: Math.max(...after), liveHeapLastMiB: after[after.length - 1] };
}

let created = false;
try {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  created = true;
  const recipient = generateKey('recipient');
  const admin = generateKey('admin');
  const stations = Array.from({ length: STATIONS }, (_, i) => ({ name: `station-${String(i + 1).padStart(2, '0')}`, key: generateKey('station') }));
  // The desk: config signed by the admin, admin key pinned beside it, the evidence key.
  const deskDir = path.join(tmp, 'desk');
  mkdirSync(path.join(deskDir, 'keys'), { recursive: true });
  writeFileSync(path.join(deskDir, 'keys', 'admin.pub'), `${formatPublicKey(admin.publicKey)}\n`);
  const keyFile = path.join(deskDir, 'evidence.key');
  await writeSecretKeyFile(keyFile, recipient);
  const deskConfig = {
    version: 1, kind: 'desk', revision: 1, signedAt: new Date().toISOString(), desk: 'scale',
    stations: stations.map((s) => ({ name: s.name, key: formatPublicKey(s.key.publicKey), targets: ['ceph'] })),
    targets: [{ name: 'ceph', type: 's3', url: svc.KLUIS_S3_ENDPOINT, bucket, region: svc.KLUIS_S3_REGION, class: 'onprem', required: true }],
    egress: { onpremRanges: [], countries: ['NL'] },
  };
  const deskFile = path.join(deskDir, 'kluis.json');
  writeFileSync(deskFile, `${JSON.stringify(signedDocument(deskConfig, admin), null, 2)}\n`);

  // The batches: ids like the station's (24 hex), spread over a year, 400 cases, 3 files each.
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  const started = Date.now();
  let manifestBytes = 0;
  await pool(PUT_CONCURRENCY, BATCHES, async (i) => {
    const st = stations[i % STATIONS];
    const batchId = randomBytes(12).toString('hex');
    const createdAt = new Date(t0 + Math.floor((i / BATCHES) * 365 * 24 * 3600 * 1000)).toISOString();
    const objects = [];
    const files = [];
    for (let j = 0; j < OBJECTS; j++) {
      const body = randomBytes(64 + j);
      const id = randomBytes(16).toString('hex');
      objects.push({ id, size: body.length, sha256: createHash('sha256').update(body).digest('hex') });
      files.push({ path: `DCIM/100MEDIA/DJI_${String(j + 1).padStart(4, '0')}.JPG`, class: 'footage', status: 'sealed', objectId: id, cardSha256: 'a'.repeat(64), size: 5_000_000, format: 'jpeg', sanitizedSha256: 'b'.repeat(64), sanitizedSize: 4_990_000, removed: [{ where: 'APP1/Exif/GPS', what: 'gps', bytes: 412 }] });
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${batchId}/${id}`, Body: body }));
    }
    const inner = {
      batchId, station: { name: st.name, key: formatPublicKey(st.key.publicKey) }, createdAt,
      operator: `operator-${(i * 7) % 40}`, case: `PV-2025-${String(i % 400).padStart(4, '0')}`,
      card: { fingerprint: createHash('sha256').update(batchId).digest('hex'), root: '/media/card', label: 'DJI' },
      tool: { name: 'kluis', version: 'scale' }, files,
    };
    const m = createManifest({ batchId, createdAt, objects, inner, audit: { seq: i, head: 'c'.repeat(64) } }, [recipient.publicKey], st.key);
    const text = `${JSON.stringify(m, null, 2)}\n`;
    manifestBytes += text.length;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${batchId}/manifest.json`, Body: text }));
    if ((i + 1) % 1000 === 0) log(`${i + 1}/${BATCHES} batches stored`);
  });
  const genSeconds = (Date.now() - started) / 1000;
  log(`stored ${BATCHES} batches (${BATCHES * (OBJECTS + 1)} objects, manifests ${Math.round(manifestBytes / BATCHES)} bytes on average) in ${genSeconds.toFixed(0)} s`);

  const wanted = 'PV-2025-0007';
  const results = {
    setup: { batches: BATCHES, stations: STATIONS, objectsPerBatch: OBJECTS + 1, manifestAvgBytes: Math.round(manifestBytes / BATCHES), generateSeconds: Math.round(genSeconds), node: process.version, cpus: os.cpus().length },
    all: runCatalog(deskFile, keyFile, []),
    byCase: runCatalog(deskFile, keyFile, ['--case', wanted]),
    byStation: runCatalog(deskFile, keyFile, ['--station', stations[0].name]),
    byMonth: runCatalog(deskFile, keyFile, ['--from', '2025-06-01', '--to', '2025-06-30']),
  };
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  if (created && !KEEP) {
    const n = await cleanBucket().catch((err) => (log(`could not clean bucket ${bucket}: ${err.message}`), -1));
    log(`removed ${n} objects and bucket ${bucket}`);
  } else if (KEEP) log(`kept bucket ${bucket} and ${tmp}`);
  if (!KEEP && existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  s3.destroy();
}
