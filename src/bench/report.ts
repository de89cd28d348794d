/**
 * Benchmark results as data: the record of one run, the derived figures (MB/s, files/s, ratios
 * against the baselines, pass/fail against the targets of issue 10), the text table and the JSON
 * document written to bench/results/. Pure functions only: no clocks, no processes, no files
 * except `writeResultFile`, which writes one JSON document and never overwrites an existing one.
 *
 * Conventions: MB is 10^6 bytes (as the card makers count); a ratio is kluis MB/s divided by the
 * baseline's MB/s, so "2.0x" means kluis moved the same bytes twice as fast.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';

export type RunGroup = 'baseline' | 'kluis' | 'stage' | 'memory';

export interface RunResult {
  /** Stable id used in ratios and the JSON, e.g. "cp+sha256sum", "kluis-ingest-fs", "seal-sodium". */
  id: string;
  /** What a reader sees in the table. */
  label: string;
  group: RunGroup;
  /** Input bytes the run processed (the card's bytes for whole-card runs). */
  bytes: number;
  files: number;
  wallMs: number;
  /** CPU time of the run including its child processes. */
  cpuUserMs: number;
  cpuSysMs: number;
  /** Peak resident set size; null when it could not be measured. */
  peakRssBytes: number | null;
  /** How the peak was measured, e.g. "wait4 max of any process", "VmHWM of this process". */
  rssMethod?: string;
  /** Peak RSS per process name (kluis "node", "ffmpeg", …) where the run sampled /proc. */
  rssByProcess?: Record<string, number>;
  ok: boolean;
  error?: string;
  note?: string;
  /** kluis runs: from the start of the batch to "safe to remove" (the card read), from its journal. */
  cardFreeMs?: number;
}

export interface RatioSpec {
  id: string;
  label: string;
  /** Run whose speed is measured. */
  subject: string;
  /** Run it is compared with. */
  baseline: string;
  /** The goal from issue 10: subject MB/s ≥ min × baseline MB/s. Absent: informational. */
  min?: number;
}

export interface RatioResult extends RatioSpec {
  /** subject MB/s ÷ baseline MB/s; null when either run is missing or failed. */
  ratio: number | null;
  /** null when there is no goal, or no ratio. */
  pass: boolean | null;
}

/** The comparisons issue 10 asks for, plus informational ones. */
export const RATIOS: RatioSpec[] = [
  { id: 'e2e-vs-cp', label: 'kluis ingest (fs) / cp+sha256sum', subject: 'kluis-ingest-fs', baseline: 'cp+sha256sum', min: 0.5 },
  { id: 'e2e-vs-rclone', label: 'kluis ingest (fs) / rclone crypt', subject: 'kluis-ingest-fs', baseline: 'rclone-crypt', min: 2 },
  { id: 'seal-vs-age', label: 'seal sodium / age (same file)', subject: 'seal-sodium', baseline: 'age-file', min: 0.5 },
  { id: 'e2e-vs-age', label: 'kluis ingest (fs) / age (whole card)', subject: 'kluis-ingest-fs', baseline: 'age-card' },
  { id: 's3-vs-cp', label: 'kluis ingest (Ceph S3) / cp+sha256sum', subject: 'kluis-ingest-s3', baseline: 'cp+sha256sum' },
  { id: 'tweetnacl-vs-age', label: 'seal tweetnacl / age', subject: 'seal-tweetnacl', baseline: 'age-file' },
  { id: 'chacha-vs-age', label: 'node chacha20-poly1305 / age', subject: 'seal-node-chacha20', baseline: 'age-file' },
  { id: 'tweetnacl-vs-sodium', label: 'seal tweetnacl / sodium', subject: 'seal-tweetnacl', baseline: 'seal-sodium' },
  { id: 'chacha-vs-sodium', label: 'node chacha20-poly1305 / sodium', subject: 'seal-node-chacha20', baseline: 'seal-sodium' },
];

/** MB/s (10^6 bytes per second); 0 for a run that took no measurable time. */
export function mbPerSecond(r: Pick<RunResult, 'bytes' | 'wallMs'>): number {
  if (r.wallMs <= 0) return 0;
  return r.bytes / 1e6 / (r.wallMs / 1000);
}

export function filesPerSecond(r: Pick<RunResult, 'files' | 'wallMs'>): number {
  if (r.wallMs <= 0) return 0;
  return r.files / (r.wallMs / 1000);
}

export function computeRatios(runs: RunResult[], specs: RatioSpec[] = RATIOS): RatioResult[] {
  const byId = new Map(runs.map((r) => [r.id, r]));
  return specs.map((s) => {
    const a = byId.get(s.subject);
    const b = byId.get(s.baseline);
    const usable = a && b && a.ok && b.ok && mbPerSecond(b) > 0;
    const ratio = usable ? mbPerSecond(a) / mbPerSecond(b) : null;
    const pass = ratio === null || s.min === undefined ? null : ratio >= s.min;
    return { ...s, ratio, pass };
  });
}

/** Peak RSS goal of issue 10 for the kluis process while ingesting one large video. */
export const RSS_LIMIT_BYTES = 300e6;
/** "Roughly constant": the 4 GB peak may exceed the 1 GB peak by at most this fraction. */
export const RSS_GROWTH_LIMIT = 0.25;

export interface Check {
  id: string;
  label: string;
  value: string;
  pass: boolean | null;
  /** The figures behind `value`, for a reader of the JSON; null where not measured. */
  figures?: Record<string, number | null>;
}

/** Peak RSS of the kluis process (the `node` process of the run), or null. */
export function kluisPeakRss(r: RunResult): number | null {
  return r.rssByProcess?.node ?? null;
}

/** The memory goals, from the runs "memory-1g" and "memory-4g" (when present). */
export function memoryChecks(runs: RunResult[]): Check[] {
  const small = runs.find((r) => r.id === 'memory-1g');
  const large = runs.find((r) => r.id === 'memory-4g');
  const checks: Check[] = [];
  for (const r of [small, large]) {
    if (!r) continue;
    const peak = r.ok ? kluisPeakRss(r) : null;
    checks.push({
      id: `${r.id}-rss`,
      label: `peak RSS of kluis, ${r.id === 'memory-1g' ? '1 GB' : '4 GB'} video (goal < ${RSS_LIMIT_BYTES / 1e6} MB)`,
      value: peak === null ? '-' : `${(peak / 1e6).toFixed(0)} MB (ffmpeg ${fmtMb(r.rssByProcess?.ffmpeg)})`,
      pass: peak === null ? null : peak < RSS_LIMIT_BYTES,
    });
  }
  if (small && large) {
    const a = small.ok ? kluisPeakRss(small) : null;
    const b = large.ok ? kluisPeakRss(large) : null;
    const growth = a !== null && b !== null && a > 0 ? (b - a) / a : null;
    checks.push({
      id: 'memory-growth',
      label: `kluis peak RSS growth 1 GB -> 4 GB (goal <= ${RSS_GROWTH_LIMIT * 100}%)`,
      value: growth === null ? '-' : `${(growth * 100).toFixed(1)}%`,
      pass: growth === null ? null : growth <= RSS_GROWTH_LIMIT,
    });
  }
  return checks;
}

/** Run id of the photo proof floor row (src/bench/stages.ts). */
export const PROOF_FLOOR_RUN = 'stage-proof-floor';

/**
 * The CPU seconds a speed goal leaves for the whole card: at `min` × the baseline's MB/s kluis
 * may take cardBytes / (min × baseline bytes/s) seconds of wall time, and can use every core
 * for all of it. null when the baseline is missing, failed or took no time.
 */
export function goalCpuBudgetS(cardBytes: number, min: number, baseline: RunResult | undefined, cores: number): number | null {
  if (!baseline || !baseline.ok || min <= 0 || cores <= 0) return null;
  const mbps = mbPerSecond(baseline);
  if (mbps <= 0) return null;
  return (cardBytes / 1e6 / (min * mbps)) * cores;
}

/**
 * For each end-to-end goal (the e2e ratios with a `min`): the CPU seconds the photo proof floor
 * (two decodes per JPEG, nothing else) needs against the CPU seconds the goal allows for the
 * whole card on this machine's cores. PASS only says the decodes fit in the budget, not that the
 * goal is reachable; FAIL says it is not, while the proof decodes every photo twice. Omitted when
 * there is no floor row; '-' where the floor row failed or a baseline (or the card) is missing.
 */
export function proofBudgetChecks(runs: RunResult[], cardBytes: number | null, cores: number, specs: RatioSpec[] = RATIOS): Check[] {
  const floor = runs.find((r) => r.id === PROOF_FLOOR_RUN);
  if (!floor) return [];
  const need = floor.ok ? (floor.cpuUserMs + floor.cpuSysMs) / 1000 : null;
  const byId = new Map(runs.map((r) => [r.id, r]));
  const goals = specs.filter((s): s is RatioSpec & { min: number } => s.subject === 'kluis-ingest-fs' && s.min !== undefined);
  return goals.map((s) => {
    const min = s.min;
    const baseline = byId.get(s.baseline);
    const budget = cardBytes === null ? null : goalCpuBudgetS(cardBytes, min, baseline, cores);
    const needText = need === null ? '- (the floor run failed)' : `${need.toFixed(1)} CPU s`;
    const why = cardBytes === null ? 'no card' : !baseline ? `no ${s.baseline} run` : !baseline.ok ? `${s.baseline} run failed` : `${s.baseline} took no time`;
    const budgetText = budget === null ? `- (${why})` : `${budget.toFixed(1)} CPU s`;
    return {
      id: `proof-floor-vs-${s.id}`,
      label: `photo proof floor within the CPU the ${min}x ${s.baseline} goal allows`,
      value: `photo decodes alone need ${needText}; the ${min}x ${s.baseline} goal allows ${budgetText} for the whole card on ${cores} cores`,
      pass: need === null || budget === null ? null : need <= budget,
      figures: {
        needCpuS: need,
        budgetCpuS: budget,
        cardBytes,
        baselineMBps: baseline?.ok ? mbPerSecond(baseline) : null,
        goal: min,
        cores,
      },
    };
  });
}

function fmtMb(n: number | undefined): string {
  return n === undefined ? '-' : `${(n / 1e6).toFixed(0)} MB`;
}

export interface MachineInfo {
  host: string;
  cores: number;
  cpuModel: string;
  memTotalBytes: number;
  os: string;
}

export interface CardInfo {
  path: string;
  bytes: number;
  files: number;
  jpegs: number;
  videos: number;
  sidecars: number;
  /** True when the card came from the cache of an earlier run. */
  cached: boolean;
}

export interface BenchDocument {
  schema: 'kluis-bench/1';
  date: string;
  command: string;
  machine: MachineInfo;
  versions: Record<string, string>;
  card?: CardInfo;
  runs: RunResult[];
  ratios: RatioResult[];
  checks: Check[];
  notes: string[];
}

export function makeDocument(parts: Omit<BenchDocument, 'schema' | 'ratios' | 'checks'>): BenchDocument {
  return {
    schema: 'kluis-bench/1',
    ...parts,
    notes: [...cardFreeNotes(parts.runs), ...parts.notes],
    ratios: computeRatios(parts.runs),
    checks: [...memoryChecks(parts.runs), ...proofBudgetChecks(parts.runs, parts.card?.bytes ?? null, parts.machine.cores)],
  };
}

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/** "node 120 MB, ffmpeg 40 MB" for runs of kluis itself (whose processes were sampled). */
export function rssBreakdown(r: RunResult): string {
  if ((r.group !== 'kluis' && r.group !== 'memory') || !r.rssByProcess) return '';
  return Object.entries(r.rssByProcess)
    .filter(([name]) => name !== 'bash')
    .sort((a, b) => b[1] - a[1])
    .map(([name, v]) => `${name === 'node' ? 'kluis(node)' : name} ${(v / 1e6).toFixed(0)} MB`)
    .join(', ');
}

/** Plain-text table: one line per run, then the ratios with their goals. */
export function formatTable(doc: BenchDocument): string {
  const head = ['run', 'MB/s', 'files/s', 'wall s', 'CPU s', 'peak RSS MB', 'note'];
  const rows: string[][] = doc.runs.map((r) => [
    r.label,
    r.ok ? fixed(mbPerSecond(r), 1) : 'FAILED',
    r.ok ? fixed(filesPerSecond(r), 1) : '-',
    fixed(r.wallMs / 1000, 2),
    fixed((r.cpuUserMs + r.cpuSysMs) / 1000, 2),
    r.peakRssBytes === null ? '-' : fixed(r.peakRssBytes / 1e6, 0),
    r.ok ? [rssBreakdown(r), r.note ?? ''].filter((x) => x !== '').join('; ') : (r.error ?? 'failed'),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  out.push(
    `kluis bench on ${doc.machine.host}: ${doc.machine.cores} cores, ${doc.machine.cpuModel}, ${fixed(doc.machine.memTotalBytes / 1e9, 1)} GB RAM`,
  );
  out.push(Object.entries(doc.versions).map(([k, v]) => `${k} ${v}`).join(' | '));
  if (doc.card) {
    out.push(
      `card: ${fixed(doc.card.bytes / 1e6, 0)} MB in ${doc.card.files} files (${doc.card.videos} videos, ${doc.card.jpegs} JPEGs, ${doc.card.sidecars} sidecars)${doc.card.cached ? ', cached' : ''}`,
    );
  }
  out.push('');
  out.push(line(head));
  out.push(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) out.push(line(row));
  const ratios = doc.ratios.filter((r) => r.ratio !== null || r.min !== undefined);
  if (ratios.length > 0) {
    out.push('');
    const w = Math.max(...ratios.map((r) => r.label.length));
    for (const r of ratios) {
      const goal = r.min === undefined ? '' : `  goal >= ${r.min}x: ${r.pass === null ? 'NOT MEASURED' : r.pass ? 'PASS' : 'FAIL'}`;
      out.push(`${r.label.padEnd(w)}  ${r.ratio === null ? '   -' : `${fixed(r.ratio, 2).padStart(5)}x`}${goal}`);
    }
  }
  if (doc.checks.length > 0) {
    out.push('');
    const w = Math.max(...doc.checks.map((c) => c.label.length));
    for (const c of doc.checks) out.push(`${c.label.padEnd(w)}  ${c.value}  ${c.pass === null ? 'NOT MEASURED' : c.pass ? 'PASS' : 'FAIL'}`);
  }
  for (const n of doc.notes) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}

/** A file name for the document: `<date>-<host>.json`, safe on any filesystem. */
export function resultFileName(doc: Pick<BenchDocument, 'date' | 'machine'>): string {
  const date = doc.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '');
  const host = doc.machine.host.replace(/[^A-Za-z0-9._-]/g, '_') || 'host';
  return `${date}-${host}.json`;
}

/**
 * Writes the document as `<dir>/<date>-<host>.json` (pretty JSON, newline at the end) and returns
 * the path. Never overwrites: a second result in the same second gets a numbered name.
 */
export async function writeResultFile(dir: string, doc: BenchDocument): Promise<string> {
  await fsp.mkdir(dir, { recursive: true });
  const base = resultFileName(doc);
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  for (let i = 0; i < 100; i++) {
    const name = i === 0 ? base : base.replace(/\.json$/, `-${i}.json`);
    const file = path.join(dir, name);
    try {
      await fsp.writeFile(file, text, { flag: 'wx' });
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KluisError('E_BENCH_WRITE', `cannot write the bench result ${file}: ${(err as Error).message}`, {
          hint: 'choose another --out folder',
          cause: err,
        });
      }
    }
  }
  throw new KluisError('E_BENCH_WRITE', `too many bench results named ${base} in ${dir}`, { hint: 'choose another --out folder' });
}

/**
 * What the operator waits for: per kluis run that recorded it, the time until the card was safe to
 * remove and the rate the card was read at, set against cp+sha256sum (read, hash, write) when that
 * ran. No goal: issue 10's goals are about the whole run; this says how soon the card is free.
 */
export function cardFreeNotes(runs: RunResult[]): string[] {
  const cp = runs.find((r) => r.id === 'cp+sha256sum' && r.ok && r.wallMs > 0);
  const out: string[] = [];
  for (const r of runs) {
    if (r.group !== 'kluis' || !r.ok || !r.cardFreeMs || r.cardFreeMs <= 0) continue;
    const rate = mbPerSecond({ bytes: r.bytes, wallMs: r.cardFreeMs });
    const vs = cp ? `, ${(rate / mbPerSecond(cp)).toFixed(2)}x cp+sha256sum` : '';
    out.push(`${r.label}: card free (safe to remove) after ${(r.cardFreeMs / 1000).toFixed(1)} s, read at ${rate.toFixed(1)} MB/s${vs}`);
  }
  return out;
}
