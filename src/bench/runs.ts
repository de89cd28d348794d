/**
 * Whole-card runs, each a child process measured by measure.ts: the baselines a user would pick
 * instead of kluis (cp + sha256sum; rclone copy to a crypt remote; age; the do-it-yourself
 * pipeline is in diy.ts) and `kluis ingest` itself into a fresh station with a local fs store, and
 * into Ceph S3 when scripts/services/up.sh has written its settings.
 *
 * Every run ends with its output durable (fsync of every written file: `sync FILE…`, as kluis
 * fsyncs what it writes), starts with the card warm in the page cache (read once beforehand, not
 * timed) and removes its output afterwards unless asked to keep it. A run that fails is recorded
 * as failed with its error; it never stops the other runs.
 */
import { promises as fsp, existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Sqlite } from '../util/sqlite.js';
import { KluisError } from '../errors.js';
import { readSecretKeyFile } from '../seal/index.js';
import { writeSignedConfig, readConfigFile } from '../config/index.js';
import { runCommand, type CommandResult } from './measure.js';
import type { CardInfo, RunResult, RunGroup } from './result.js';

/** bin/kluis.js of this installation (dist/bench/runs.js → ../../bin/kluis.js). */
export const KLUIS_BIN = fileURLToPath(new URL('../../bin/kluis.js', import.meta.url));

export interface RunContext {
  card: CardInfo;
  /** Scratch folder for this bench run (outputs go below it). */
  work: string;
  keep: boolean;
  log: (line: string) => void;
}

export function toRun(id: string, label: string, group: RunGroup, card: CardInfo, r: CommandResult, note?: string): RunResult {
  const ok = r.exitCode === 0;
  return {
    id,
    label,
    group,
    card: card.id,
    bytes: card.bytes,
    files: card.files,
    wallMs: r.wallMs,
    cpuUserMs: r.cpuUserMs,
    cpuSysMs: r.cpuSysMs,
    peakRssBytes: r.peakRssBytes,
    rssMethod: r.rssMethod,
    rssByProcess: r.rssByProcess,
    ...(r.commandPeakRssBytes !== null ? { commandPeakRssBytes: r.commandPeakRssBytes } : {}),
    ok,
    ...(ok ? {} : { error: `exit ${r.exitCode}: ${lastLine(r.stderrTail)}` }),
    ...(note ? { note } : {}),
  };
}

export function failedRun(id: string, label: string, group: RunGroup, err: unknown, card?: string): RunResult {
  const message = err instanceof Error ? err.message : String(err);
  return { id, label, group, ...(card !== undefined ? { card } : {}), bytes: 0, files: 0, wallMs: 0, cpuUserMs: 0, cpuSysMs: 0, peakRssBytes: null, ok: false, error: message };
}

export function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  return (lines.slice(-2).join(' | ') || 'no message').slice(0, 300);
}

/** Reads every card file once so each run starts from the same warm page cache. */
export async function warmCard(card: string): Promise<void> {
  await runCommand('bash', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'warm', card]);
}

/** Reads one file once (page cache warm), without holding it in memory. */
export async function warmFile(file: string): Promise<void> {
  await runCommand('bash', ['-c', 'cat "$1" > /dev/null', 'warm', file]);
}

export async function cleanup(ctx: RunContext, dir: string): Promise<void> {
  if (!ctx.keep) await fsp.rm(dir, { recursive: true, force: true });
}

/** Baseline 1: `cp -r` the card, `sha256sum` every copied file, fsync every copy. The card is free at its end. */
export async function runCpSha256(ctx: RunContext): Promise<RunResult> {
  const dst = path.join(ctx.work, 'cp');
  await fsp.rm(dst, { recursive: true, force: true });
  await fsp.mkdir(dst, { recursive: true });
  await warmCard(ctx.card.path);
  const script = 'cp -r "$1" "$2/card" && (cd "$2/card" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$2/SHA256SUMS" && find "$2" -type f -exec sync {} +';
  const r = await runCommand('bash', ['-c', script, 'cp-sha256', ctx.card.path, dst]);
  await cleanup(ctx, dst);
  const run = toRun('cp+sha256sum', 'cp -r + sha256sum (+fsync)', 'baseline', ctx.card, r);
  if (run.ok) run.cardFreeMs = run.wallMs;
  return run;
}

/** rclone's `obscure` form of a password, as its config file wants. */
async function rcloneObscure(pw: string): Promise<string> {
  const r = await runCommand('rclone', ['obscure', '--', pw]);
  if (r.exitCode !== 0) throw new KluisError('E_BENCH_TOOL', `rclone obscure failed: ${lastLine(r.stderrTail)}`, { hint: 'install rclone (apt-get install rclone)' });
  return r.stdout.trim();
}

/** The remote name in the config cryptRemote writes. */
export const CRYPT_REMOTE = 'benchcrypt';

/**
 * An rclone config in `dir`/rclone.conf (mode 0600) with one crypt remote, CRYPT_REMOTE, over
 * the local folder `dir`/store: random passwords in rclone's obscured form, as `rclone config`
 * writes them. Returns the config file and the store folder.
 */
export async function cryptRemote(dir: string): Promise<{ conf: string; store: string }> {
  const store = path.join(dir, 'store');
  await fsp.mkdir(store, { recursive: true });
  const conf = path.join(dir, 'rclone.conf');
  const pw1 = await rcloneObscure(randomBytes(18).toString('hex'));
  const pw2 = await rcloneObscure(randomBytes(18).toString('hex'));
  await fsp.writeFile(conf, [`[${CRYPT_REMOTE}]`, 'type = crypt', `remote = ${store}`, `password = ${pw1}`, `password2 = ${pw2}`, ''].join('\n'), { mode: 0o600 });
  return { conf, store };
}

/** Baseline 2a: `rclone copy` of the card to a crypt remote on local disk, then fsync. */
export async function runRcloneCrypt(ctx: RunContext): Promise<RunResult> {
  const dir = path.join(ctx.work, 'rclone');
  await fsp.rm(dir, { recursive: true, force: true });
  const { conf, store } = await cryptRemote(dir);
  await warmCard(ctx.card.path);
  const script = `rclone --config "$1" copy "$2" ${CRYPT_REMOTE}: && find "$3" -type f -exec sync {} +`;
  const r = await runCommand('bash', ['-c', script, 'rclone', conf, ctx.card.path, store]);
  await cleanup(ctx, dir);
  return toRun('rclone-crypt', 'rclone copy → crypt remote (+fsync)', 'baseline', ctx.card, r, 'default transfers (4)');
}

async function ageRecipient(dir: string): Promise<string> {
  const keyFile = path.join(dir, 'age.key');
  const r = await runCommand('age-keygen', ['-o', keyFile]);
  if (r.exitCode !== 0) throw new KluisError('E_BENCH_TOOL', `age-keygen failed: ${lastLine(r.stderrTail)}`, { hint: 'install age (apt-get install age)' });
  const m = /public key: (age1[0-9a-z]+)/.exec(readFileSync(keyFile, 'utf8'));
  if (!m) throw new KluisError('E_BENCH_TOOL', 'age-keygen wrote no public key');
  return m[1]!;
}

/** Baseline 2b: `age -r` over every card file (one process per file, as a shell loop would). */
export async function runAgeCard(ctx: RunContext): Promise<RunResult> {
  const dir = path.join(ctx.work, 'age-card');
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(path.join(dir, 'out'), { recursive: true });
  const rcpt = await ageRecipient(dir);
  await warmCard(ctx.card.path);
  const script = 'i=0; find "$2" -type f -print0 | while IFS= read -r -d "" f; do i=$((i+1)); age -r "$1" -o "$3/$i.age" "$f" || exit 1; done && find "$3" -type f -exec sync {} +';
  const r = await runCommand('bash', ['-c', script, 'age-card', rcpt, ctx.card.path, path.join(dir, 'out')]);
  await cleanup(ctx, dir);
  return toRun('age-card', 'age -r, every card file (+fsync)', 'baseline', ctx.card, r);
}

/** `age -r` of one file (the seal comparison), output fsynced like sealFile's. */
export async function runAgeFile(ctx: RunContext, file: string): Promise<RunResult> {
  const dir = path.join(ctx.work, 'age-file');
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir, { recursive: true });
  const rcpt = await ageRecipient(dir);
  const size = (await fsp.stat(file)).size;
  await warmFile(file);
  const r = await runCommand('bash', ['-c', 'age -r "$1" -o "$3" "$2" && sync "$3"', 'age-file', rcpt, file, path.join(dir, 'out.age')]);
  await cleanup(ctx, dir);
  return { ...toRun('age-file', `age -r, one ${(size / 1e6).toFixed(0)} MB video (+fsync)`, 'stage', ctx.card, r), bytes: size, files: 1 };
}

export interface S3Settings {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** Reads the S3 settings scripts/services/up.sh wrote, or null when the services are not up. */
export function readServicesEnv(repoRoot: string): S3Settings | null {
  const file = process.env.KLUIS_SERVICES_ENV ?? path.join(repoRoot, '.services.env');
  if (!existsSync(file)) return null;
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  const { KLUIS_S3_ENDPOINT: endpoint, KLUIS_S3_ACCESS_KEY_ID: accessKeyId, KLUIS_S3_SECRET_ACCESS_KEY: secretAccessKey } = env;
  if (!endpoint || !accessKeyId || !secretAccessKey) return null;
  return { endpoint, accessKeyId, secretAccessKey, region: env.KLUIS_S3_REGION ?? 'us-east-1' };
}

/**
 * From a station's journal: milliseconds from the start of its (one) batch to "safe to remove",
 * or null when there is no such batch or the card was never fully read.
 */
export function cardFreeMs(journalFile: string): number | null {
  if (!existsSync(journalFile)) return null;
  const db = new Sqlite(journalFile, { readOnly: true });
  try {
    const rows = db.prepare('SELECT created_at, safe_to_remove_at FROM batches').all() as Array<{ created_at: string; safe_to_remove_at: string | null }>;
    if (rows.length !== 1 || !rows[0]!.safe_to_remove_at) return null;
    const ms = Date.parse(rows[0]!.safe_to_remove_at) - Date.parse(rows[0]!.created_at);
    return Number.isFinite(ms) && ms >= 0 ? ms : null;
  } finally {
    db.close();
  }
}

/** Creates a fresh station (`kluis init`) in `dir`; returns its config file. */
export async function initStation(dir: string): Promise<string> {
  await fsp.rm(dir, { recursive: true, force: true });
  const r = await runCommand(process.execPath, [KLUIS_BIN, 'init', '--dir', dir, '--station', 'bench', '--json']);
  if (r.exitCode !== 0) throw new KluisError('E_BENCH_RUN', `kluis init failed: ${lastLine(r.stderrTail)}`, { hint: 'run `npm run build` first' });
  return path.join(dir, 'kluis.json');
}

/** An S3 client for the bench's own set-up and clean-up: one attempt, bounded waits. */
async function s3Client(s3: S3Settings): Promise<import('@aws-sdk/client-s3').S3Client> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { NodeHttpHandler } = await import('@smithy/node-http-handler');
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 60_000, throwOnRequestTimeout: true }),
  });
}

/** How long a whole-card kluis run may take before the bench stops it: 20 min + 1 s per MB. */
export function ingestTimeoutMs(bytes: number): number {
  return 20 * 60_000 + Math.ceil(bytes / 1e6) * 1000;
}

/** Empties and removes a bench bucket (the objects are ciphertext of synthetic footage). */
async function dropBucket(s3: S3Settings, bucket: string): Promise<void> {
  const { ListObjectsV2Command, DeleteObjectsCommand, DeleteBucketCommand } = await import('@aws-sdk/client-s3');
  const client = await s3Client(s3);
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

/** Points a station's only target at a new bucket on the Ceph S3 endpoint, re-signed by its admin key. */
async function useS3(configFile: string, s3: S3Settings): Promise<string> {
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const bucket = `kluis-bench-${randomBytes(5).toString('hex')}`;
  const client = await s3Client(s3);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  const { raw } = await readConfigFile(configFile);
  const config = raw as Record<string, unknown>;
  config.targets = [
    {
      name: 'ceph',
      type: 's3',
      url: s3.endpoint,
      bucket,
      region: s3.region,
      class: 'onprem',
      required: true,
      credentials: { env: { accessKeyId: 'KLUIS_S3_ACCESS_KEY_ID', secretAccessKey: 'KLUIS_S3_SECRET_ACCESS_KEY' } },
    },
  ];
  const admin = await readSecretKeyFile(path.join(path.dirname(configFile), 'keys', 'admin.key'), 'admin');
  await writeSignedConfig(configFile, config, admin);
  return bucket;
}

interface IngestJson {
  status?: string;
  files?: Array<{ path: string; class: string; status: string; error?: { code: string; message: string } }>;
}

/** Checks `ingest --json` output: secured, and every footage file secured. Returns an error or null. */
export function ingestProblem(stdout: string): string | null {
  let doc: IngestJson;
  try {
    doc = JSON.parse(stdout) as IngestJson;
  } catch {
    return 'ingest printed no JSON';
  }
  const footage = (doc.files ?? []).filter((f) => f.class === 'footage');
  const bad = footage.filter((f) => f.status !== 'secured');
  if (doc.status !== 'secured' || bad.length > 0) {
    const first = bad[0];
    return `batch ${doc.status ?? '?'}; ${bad.length}/${footage.length} footage files not secured${first?.error ? ` (first: ${first.path} ${first.error.code} ${first.error.message})` : ''}`;
  }
  return null;
}

/** `kluis ingest` of the card into a fresh station: local fs store, or Ceph S3 with `s3`. */
export async function runKluisIngest(ctx: RunContext, s3?: S3Settings): Promise<RunResult> {
  const card = ctx.card;
  const id = `kluis-ingest-${s3 ? 's3' : 'fs'}`;
  const label = s3 ? 'kluis ingest → Ceph S3 (end to end)' : 'kluis ingest → local store (end to end)';
  const dir = path.join(ctx.work, `${id}-${card.id}`);
  let bucket: string | undefined;
  try {
    const configFile = await initStation(dir);
    let note = 'acquire+hash, sanitize+proof, seal, deliver, read back+verify, manifest';
    let env: NodeJS.ProcessEnv = process.env;
    if (s3) {
      bucket = await useS3(configFile, s3);
      note += `; bucket ${bucket}`;
      env = { ...process.env, KLUIS_S3_ACCESS_KEY_ID: s3.accessKeyId, KLUIS_S3_SECRET_ACCESS_KEY: s3.secretAccessKey };
    }
    await warmCard(card.path);
    const r = await runCommand(process.execPath, [KLUIS_BIN, 'ingest', card.path, '--config', configFile, '--json', '--quiet'], {
      env,
      timeoutMs: ingestTimeoutMs(card.bytes),
    });
    const run = toRun(id, label, 'kluis', card, r, note);
    const free = cardFreeMs(path.join(dir, 'state', 'journal.db'));
    if (free !== null) run.cardFreeMs = free;
    const problem = r.exitCode === 0 || r.stdout ? ingestProblem(r.stdout) : null;
    if (problem) {
      run.ok = false;
      run.error = `${problem}${r.exitCode !== 0 ? `; exit ${r.exitCode}: ${lastLine(r.stderrTail)}` : ''}`;
    }
    return run;
  } catch (err) {
    return failedRun(id, label, 'kluis', err, card.id);
  } finally {
    await cleanup(ctx, dir);
    if (s3 && bucket && !ctx.keep) await dropBucket(s3, bucket).catch((err: Error) => ctx.log(`could not remove bench bucket ${bucket}: ${err.message}`));
  }
}
