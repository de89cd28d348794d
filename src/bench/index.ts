/**
 * `kluis bench`: builds (or reuses) the synthetic card, runs the baselines, kluis itself and each
 * stage alone back to back in this process, and returns one BenchDocument (report.ts) that the
 * CLI prints as a table or JSON and writes to bench/results/. With `memory`, it instead ingests
 * a single 1 GB and a single 4 GB video and reports the peak RSS of the kluis process and of
 * ffmpeg for both.
 *
 * Checks free disk space before it writes anything; removes its scratch data at the end unless
 * `keep` (the card cache under os.tmpdir() stays, so the next run starts at once). Never touches
 * a station other than the throw-away ones it creates itself.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KluisError } from '../errors.js';
import { VERSION } from '../version.js';
import { buildCard, buildVideoCard, cacheDirDefault, type BuildOptions } from './card.js';
import { freeBytes } from './measure.js';
import { makeDocument, type BenchDocument, type CardInfo, type MachineInfo, type RunResult } from './report.js';
import { failedRun, readServicesEnv, runAgeCard, runCpSha256, runKluisIngest, runRcloneCrypt, type RunContext } from './runs.js';
import { runStages } from './stages.js';
import { selector } from './select.js';

export { SELECTORS, selector } from './select.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BenchOptions {
  /** Card size in bytes (mixed card) — ignored with `memory`. */
  size: number;
  keep: boolean;
  only: string[] | null;
  memory: boolean;
  /** The command line, recorded in the result. */
  command: string;
  log: (line: string) => void;
  card?: BuildOptions;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'not found';
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? '';
}

export function toolVersions(): Record<string, string> {
  const commit = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return {
    kluis: `${VERSION}${commit.status === 0 ? ` (${commit.stdout.trim()})` : ''}`,
    node: process.version,
    ffmpeg: firstLine('ffmpeg', ['-version']).replace(/^ffmpeg version (\S+).*$/, '$1'),
    rclone: firstLine('rclone', ['version']).replace(/^rclone /, ''),
    age: firstLine('age', ['--version']),
    coreutils: firstLine('sha256sum', ['--version']).replace(/^sha256sum \(GNU coreutils\) /, ''),
  };
}

export function machineInfo(): MachineInfo {
  return {
    host: os.hostname(),
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memTotalBytes: os.totalmem(),
    os: `${os.type()} ${os.release()}`,
  };
}

async function ensureSpace(dir: string, need: number, what: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const free = await freeBytes(dir);
  if (free < need) {
    throw new KluisError('E_BENCH_DISK', `${dir} has ${(free / 1e9).toFixed(1)} GB free; ${what} needs about ${(need / 1e9).toFixed(1)} GB`, {
      hint: 'free disk space, or run a smaller bench (--size 1G)',
    });
  }
}

export async function runBench(opts: BenchOptions): Promise<BenchDocument> {
  const cacheDir = opts.card?.cacheDir ?? cacheDirDefault();
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-run-'));
  const notes: string[] = [];
  const runs: RunResult[] = [];
  const load = os.loadavg()[0] ?? 0;
  notes.push(`load average at start ${load.toFixed(2)} on ${os.availableParallelism()} cores; the card is read from the page cache (warm) in every run`);
  let card: CardInfo | undefined;
  try {
    if (opts.memory) {
      // Cards of 1 + 4 GB, and a 4 GB ingest keeps at most its acquired, sanitized and sealed
      // copies plus the store copy.
      await ensureSpace(work, 5e9 + 4 * 4e9 + 1e9, 'the memory run');
      for (const [id, bytes] of [['memory-1g', 1e9], ['memory-4g', 4e9]] as const) {
        try {
          const c = await buildVideoCard(bytes, { ...opts.card, cacheDir, log: opts.log });
          const ctx: RunContext = { card: c, work, keep: opts.keep, log: opts.log };
          const r = await runKluisIngest(ctx, undefined, c, `-${id}`);
          runs.push({ ...r, id, group: 'memory', label: `kluis ingest, one ${(c.bytes / 1e9).toFixed(1)} GB video` });
        } catch (err) {
          runs.push(failedRun(id, `kluis ingest, one ${bytes / 1e9} GB video`, 'memory', err));
        }
      }
      notes.push('peak RSS per process is the VmHWM of each process under the run, sampled every 100 ms from /proc');
    } else {
      await ensureSpace(work, opts.size * 3.5 + 1e9, `a ${(opts.size / 1e9).toFixed(1)} GB bench`);
      card = await buildCard(opts.size, { ...opts.card, cacheDir, log: opts.log });
      const ctx: RunContext = { card, work, keep: opts.keep, log: opts.log };
      const want = selector(opts.only);
      const guard = async (id: string, label: string, fn: () => Promise<RunResult>): Promise<void> => {
        if (!want(id)) return;
        opts.log(`running ${label}`);
        try {
          runs.push(await fn());
        } catch (err) {
          runs.push(failedRun(id, label, 'baseline', err));
        }
      };
      await guard('cp+sha256sum', 'cp -r + sha256sum', () => runCpSha256(ctx));
      await guard('rclone-crypt', 'rclone copy to crypt', () => runRcloneCrypt(ctx));
      await guard('age-card', 'age over the card', () => runAgeCard(ctx));
      await guard('kluis-ingest-fs', 'kluis ingest → local store', () => runKluisIngest(ctx));
      const s3 = readServicesEnv(REPO_ROOT);
      if (want('kluis-ingest-s3')) {
        if (s3) await guard('kluis-ingest-s3', 'kluis ingest → Ceph S3', () => runKluisIngest(ctx, s3));
        else notes.push('Ceph S3 run skipped: no .services.env (start the services with scripts/services/up.sh)');
      }
      const stageIds = ['stages', 'seal-sodium', 'seal-tweetnacl', 'seal-node-chacha20', 'age-file'];
      if (stageIds.some(want)) {
        const all = want('stages');
        const stageRuns = await runStages(ctx, { only: (id) => all || want(id) });
        runs.push(...stageRuns.filter((r) => all || want(r.id)));
      }
    }
  } finally {
    if (!opts.keep) await fsp.rm(work, { recursive: true, force: true });
    else notes.push(`scratch data kept in ${work}`);
  }
  return makeDocument({
    date: new Date().toISOString(),
    command: opts.command,
    machine: machineInfo(),
    versions: toolVersions(),
    ...(card ? { card } : {}),
    runs,
    notes,
  });
}
