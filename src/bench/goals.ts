/**
 * The comparisons and goals of issue 14, computed from the runs of one bench: per card, kluis
 * against cp+sha256sum and against the do-it-yourself pipeline, end to end and until the card is
 * free; peak RSS of the kluis process, and its growth from a 1 GB to a 4 GB video. Pure: a verdict
 * is only ever a comparison of figures measured in the same run, never a number written here.
 *
 * A ratio is kluis's rate over the baseline's rate (MB of the card per second of the time
 * compared), so "2.0x" means kluis did it twice as fast; with the same card that is baseline time
 * over kluis time.
 */
import { findRun, mbPerSecond, sizeText, type Check, type RunResult } from './result.js';

/** Which time of a run a ratio compares: its whole wall time, or the time until the card was free. */
export type TimeOf = 'wall' | 'cardFree';

export interface RatioSpec {
  id: string;
  label: string;
  /** Run whose speed is measured. */
  subject: string;
  /** Run it is compared with. */
  baseline: string;
  /** Default 'wall'. */
  subjectTime?: TimeOf;
  baselineTime?: TimeOf;
  /** The goal of issue 14: subject rate ≥ min × baseline rate. Absent: reported only. */
  min?: number;
}

export interface RatioResult extends RatioSpec {
  /** The card both runs read; null for runs of no card (the seal comparisons are per card too). */
  card: string | null;
  /** subject rate ÷ baseline rate; null when either run (or its time) is missing or failed. */
  ratio: number | null;
  /** null when there is no goal, or no ratio. */
  pass: boolean | null;
}

/** The end-to-end ratios with their goals (issue 14), then the ones only reported. */
export const RATIOS: RatioSpec[] = [
  { id: 'e2e-vs-cp', label: 'kluis end to end / cp+sha256sum', subject: 'kluis-ingest-fs', baseline: 'cp+sha256sum', min: 0.5 },
  { id: 'e2e-vs-diy', label: 'kluis end to end / do-it-yourself', subject: 'kluis-ingest-fs', baseline: 'diy', min: 1 },
  { id: 'free-vs-cp', label: 'kluis card free / cp+sha256sum', subject: 'kluis-ingest-fs', baseline: 'cp+sha256sum', subjectTime: 'cardFree', baselineTime: 'cardFree', min: 1 },
  { id: 'free-vs-diy', label: 'kluis card free / do-it-yourself card free', subject: 'kluis-ingest-fs', baseline: 'diy', subjectTime: 'cardFree', baselineTime: 'cardFree' },
  { id: 'e2e-vs-rclone', label: 'kluis end to end / rclone crypt', subject: 'kluis-ingest-fs', baseline: 'rclone-crypt' },
  { id: 'e2e-vs-age', label: 'kluis end to end / age (whole card)', subject: 'kluis-ingest-fs', baseline: 'age-card' },
  { id: 's3-vs-cp', label: 'kluis → Ceph S3 end to end / cp+sha256sum', subject: 'kluis-ingest-s3', baseline: 'cp+sha256sum' },
  { id: 's3-vs-diy', label: 'kluis → Ceph S3 end to end / do-it-yourself', subject: 'kluis-ingest-s3', baseline: 'diy' },
  { id: 'seal-vs-age', label: 'seal sodium / age (same file)', subject: 'seal-sodium', baseline: 'age-file' },
  { id: 'tweetnacl-vs-age', label: 'seal tweetnacl / age', subject: 'seal-tweetnacl', baseline: 'age-file' },
  { id: 'chacha-vs-age', label: 'node chacha20-poly1305 / age', subject: 'seal-node-chacha20', baseline: 'age-file' },
  { id: 'tweetnacl-vs-sodium', label: 'seal tweetnacl / sodium', subject: 'seal-tweetnacl', baseline: 'seal-sodium' },
  { id: 'chacha-vs-sodium', label: 'node chacha20-poly1305 / sodium', subject: 'seal-node-chacha20', baseline: 'seal-sodium' },
];

/** The time a ratio compares, or null when the run did not record it. */
export function timeOf(r: RunResult, which: TimeOf = 'wall'): number | null {
  const ms = which === 'wall' ? r.wallMs : r.cardFreeMs;
  return ms !== undefined && ms > 0 ? ms : null;
}

/** One ratio between two runs of one card. */
export function ratioOf(runs: RunResult[], spec: RatioSpec, card: string | undefined): RatioResult {
  const a = findRun(runs, spec.subject, card);
  const b = findRun(runs, spec.baseline, card);
  const ta = a?.ok ? timeOf(a, spec.subjectTime) : null;
  const tb = b?.ok ? timeOf(b, spec.baselineTime) : null;
  const ratio = a && b && ta !== null && tb !== null && b.bytes > 0 ? mbPerSecond({ bytes: a.bytes, wallMs: ta }) / mbPerSecond({ bytes: b.bytes, wallMs: tb }) : null;
  const pass = ratio === null || spec.min === undefined ? null : ratio >= spec.min;
  return { ...spec, card: card ?? null, ratio, pass };
}

/**
 * Every ratio for every card that has runs: the goals always (unmeasured ones show as such), the
 * reported-only ratios where at least one of their two runs exists on that card.
 */
export function computeRatios(runs: RunResult[], cards: string[], specs: RatioSpec[] = RATIOS): RatioResult[] {
  const out: RatioResult[] = [];
  for (const card of cards) {
    for (const s of specs) {
      const present = findRun(runs, s.subject, card) ?? findRun(runs, s.baseline, card);
      if (s.min === undefined && !present) continue;
      out.push(ratioOf(runs, s, card));
    }
  }
  return out;
}

/** Peak RSS goal of issue 14 for the kluis process. */
export const RSS_LIMIT_BYTES = 300e6;
/** "Flat": the 4 GB video's peak may exceed the 1 GB video's by at most this fraction. */
export const RSS_GROWTH_LIMIT = 0.25;

/**
 * Peak RSS of the kluis process: the run's own process (its name is "MainThread" under Node 24,
 * "node" before; results written before commandPeakRssBytes existed have only the name), or null.
 */
export function kluisPeakRss(r: RunResult): number | null {
  return r.ok ? (r.commandPeakRssBytes ?? r.rssByProcess?.node ?? null) : null;
}

function mb(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : `${(n / 1e6).toFixed(0)} MB`;
}

/** The ids of the memory runs: one video of 1 GB and one of 4 GB (times the card scale). */
export const MEMORY_RUNS = ['memory-1g', 'memory-4g'] as const;

/**
 * The memory goals: the kluis process under RSS_LIMIT_BYTES in every kluis run (whole cards and
 * the two videos), and its peak flat from the 1 GB to the 4 GB video.
 */
export function memoryChecks(runs: RunResult[]): Check[] {
  const checks: Check[] = [];
  for (const r of runs) {
    if (r.group !== 'kluis' && r.group !== 'memory') continue;
    const peak = kluisPeakRss(r);
    const where = r.group === 'memory' ? `one ${sizeText(r.bytes)} video` : `${r.card ?? 'card'}, ${r.id === 'kluis-ingest-s3' ? 'Ceph S3' : 'fs store'}`;
    checks.push({
      id: `${r.card ? `${r.card}:` : ''}${r.id}-rss`,
      label: `peak RSS of kluis, ${where} (goal < ${RSS_LIMIT_BYTES / 1e6} MB)`,
      value: peak === null ? (r.ok ? 'not sampled' : 'run failed') : `${mb(peak)} (ffmpeg ${mb(r.rssByProcess?.ffmpeg)})`,
      pass: peak === null ? null : peak < RSS_LIMIT_BYTES,
      figures: { kluisPeakRssBytes: peak, limitBytes: RSS_LIMIT_BYTES },
    });
  }
  const small = findRun(runs, MEMORY_RUNS[0]);
  const large = findRun(runs, MEMORY_RUNS[1]);
  if (small && large) {
    const a = kluisPeakRss(small);
    const b = kluisPeakRss(large);
    const growth = a !== null && b !== null && a > 0 ? (b - a) / a : null;
    checks.push({
      id: 'memory-growth',
      label: `kluis peak RSS growth ${sizeText(small.bytes)} -> ${sizeText(large.bytes)} video (goal <= ${RSS_GROWTH_LIMIT * 100}%)`,
      value: growth === null ? '-' : `${(growth * 100).toFixed(1)}% (${mb(a)} -> ${mb(b)})`,
      pass: growth === null ? null : growth <= RSS_GROWTH_LIMIT,
      figures: { smallPeakBytes: a, largePeakBytes: b, growth, limit: RSS_GROWTH_LIMIT },
    });
  }
  return checks;
}

/** The ratio goals as checks, one per card and goal, in the order of RATIOS. */
export function ratioChecks(ratios: RatioResult[]): Check[] {
  return ratios
    .filter((r) => r.min !== undefined)
    .map((r) => ({
      id: `${r.card ? `${r.card}:` : ''}${r.id}`,
      label: `${r.card ? `${r.card}: ` : ''}${r.label} (goal >= ${r.min}x)`,
      value: r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
      pass: r.pass,
      figures: { ratio: r.ratio, goal: r.min ?? null },
    }));
}

/**
 * The CPU seconds a speed goal leaves for a whole card: at `min` × the baseline's MB/s kluis may
 * take cardBytes / (min × baseline bytes/s) seconds of wall time, and can use every core for all
 * of it. null when the baseline is missing, failed or took no time.
 */
export function goalCpuBudgetS(cardBytes: number, min: number, baseline: RunResult | undefined, cores: number): number | null {
  if (!baseline || !baseline.ok || min <= 0 || cores <= 0) return null;
  const mbps = mbPerSecond(baseline);
  if (mbps <= 0) return null;
  return (cardBytes / 1e6 / (min * mbps)) * cores;
}
