/**
 * `kluis bench`: builds (or reuses) the two synthetic cards of issue 14, the photo-heavy card and
 * the video-heavy card, and on each runs the baselines (cp+sha256sum, the do-it-yourself
 * pipeline, rclone crypt, age), kluis itself end to end and each stage alone, back to back in
 * this process; then ingests one 1 GB and one 4 GB video for the memory goals. Returns one
 * BenchDocument (report.ts) that the CLI prints and writes to bench/results/. `scale` shrinks
 * every card and video alike (0.1: a tenth), for trying the bench out; `memory` runs only the two
 * videos.
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
import { buildCard, buildClipsCard, buildVideoCard, cacheDirDefault, type BuildOptions } from './card.js';
import { runDiy } from './diy.js';
import { MEMORY_RUNS } from './goals.js';
import { freeBytes } from './measure.js';
import { makeDocument, type BenchDocument } from './report.js';
import { sizeText, type CardInfo, type MachineInfo, type RunResult } from './result.js';
import { failedRun, readServicesEnv, runAgeCard, runCpSha256, runKluisIngest, runRcloneCrypt, type RunContext } from './runs.js';
import { runStages } from './stages.js';
import { CARD_KINDS, selector, type CardKind } from './select.js';

export { SELECTORS, selector } from './select.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BenchOptions {
  /** Size of the photo-heavy card in bytes, before `scale`. */
  size: number;
  /** Multiplies every card and memory video (1: the sizes of issue 14). */
  scale: number;
  /** Which cards to run (default both). */
  cards: CardKind[];
  keep: boolean;
  only: string[] | null;
  /** Only the memory runs. */
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
      hint: 'free disk space, or run a smaller bench (--card-scale 0.5, --cards photo)',
    });
  }
}

/** About the size of the video-heavy card at scale 1 (for the disk-space check before it is built). */
const VIDEO_CARD_BYTES = 1.6e9;

/** Per-card run ids: a card is built only when one of them is wanted. */
const CARD_RUNS = ['cp+sha256sum', 'diy', 'rclone-crypt', 'age-card', 'kluis-ingest-fs', 'kluis-ingest-s3', 'stages', 'seal-sodium', 'seal-tweetnacl', 'seal-node-chacha20', 'age-file'];

async function cardRuns(ctx: RunContext, want: (id: string) => boolean, sealCompare: boolean, notes: string[], log: (line: string) => void): Promise<RunResult[]> {
  const runs: RunResult[] = [];
  const card = ctx.card.id;
  const guard = async (id: string, label: string, fn: () => Promise<RunResult>): Promise<void> => {
    if (!want(id)) return;
    log(`${card}: running ${label}`);
    try {
      runs.push(await fn());
    } catch (err) {
      runs.push(failedRun(id, label, 'baseline', err, card));
    }
  };
  await guard('cp+sha256sum', 'cp -r + sha256sum', () => runCpSha256(ctx));
  await guard('diy', 'do-it-yourself (cp, exiftool, rclone crypt)', () => runDiy(ctx));
  await guard('rclone-crypt', 'rclone copy to crypt', () => runRcloneCrypt(ctx));
  await guard('age-card', 'age over the card', () => runAgeCard(ctx));
  await guard('kluis-ingest-fs', 'kluis ingest → local store', () => runKluisIngest(ctx));
  if (want('kluis-ingest-s3')) {
    const s3 = readServicesEnv(REPO_ROOT);
    if (s3) await guard('kluis-ingest-s3', 'kluis ingest → Ceph S3', () => runKluisIngest(ctx, s3));
    else notes.push(`${card}: Ceph S3 run skipped: no test services (set KLUIS_SERVICES_ENV, or start them with scripts/services/up.sh)`);
  }
  const seal = (id: string): boolean => sealCompare && want(id);
  if (want('stages') || ['seal-sodium', 'seal-tweetnacl', 'seal-node-chacha20', 'age-file'].some(seal)) {
    runs.push(...(await runStages(ctx, { stages: want('stages'), sealCompare: seal })));
  }
  return runs;
}

export async function runBench(opts: BenchOptions): Promise<BenchDocument> {
  const cacheDir = opts.card?.cacheDir ?? cacheDirDefault();
  const build: BuildOptions = { ...opts.card, cacheDir, log: opts.log };
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-run-'));
  const notes: string[] = [];
  const runs: RunResult[] = [];
  const cards: CardInfo[] = [];
  const want = selector(opts.only);
  const load = os.loadavg()[0] ?? null;
  notes.push(`load average at start ${load === null ? '?' : load.toFixed(2)} on ${os.availableParallelism()} cores; the card is read from the page cache (warm) in every run`);
  try {
    if (!opts.memory && CARD_RUNS.some(want)) {
      for (const [i, kind] of opts.cards.entries()) {
        const id = CARD_KINDS[kind];
        // About the card's size to build it (when not cached), 3.5 times that for the runs.
        const about = kind === 'photo' ? opts.size * opts.scale : VIDEO_CARD_BYTES * opts.scale;
        await ensureSpace(work, about * 4.5 + 1e9, `the ${sizeText(about)} ${id} card and its runs`);
        const card =
          kind === 'photo' ? await buildCard(id, Math.round(opts.size * opts.scale), build) : await buildClipsCard(id, opts.scale, build);
        cards.push(card);
        const ctx: RunContext = { card, work, keep: opts.keep, log: opts.log };
        // The single-file seal comparisons are about the seal, not the card: once, on the first card.
        runs.push(...(await cardRuns(ctx, want, i === 0, notes, opts.log)));
      }
    }
    const memory = MEMORY_RUNS.filter((id) => want(id));
    if (memory.length > 0) {
      // A 4 GB ingest keeps at most its acquired, sanitized and sealed copies plus the store copy.
      await ensureSpace(work, (5e9 + 4 * 4e9 + 1e9) * opts.scale, 'the memory runs');
      for (const id of memory) {
        const bytes = (id === 'memory-1g' ? 1e9 : 4e9) * opts.scale;
        const label = `kluis ingest, one ${sizeText(bytes)} video`;
        opts.log(`running ${label}`);
        try {
          const card = await buildVideoCard(id, Math.round(bytes), build);
          const r = await runKluisIngest({ card, work, keep: opts.keep, log: opts.log });
          const run: RunResult = { ...r, id, group: 'memory', label: `kluis ingest, one ${sizeText(card.bytes)} video` };
          delete run.card; // the single video is no card of the summary
          runs.push(run);
        } catch (err) {
          runs.push(failedRun(id, label, 'memory', err));
        }
      }
      notes.push('peak RSS per process is the VmHWM of each process under the run, sampled every 100 ms from /proc');
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
    scale: opts.scale,
    loadAverage: load,
    cards,
    runs,
    notes,
  });
}
