/**
 * The shapes of benchmark results (one measured run, a card, the machine, the whole document)
 * and the plain arithmetic every other part uses on them. Pure: no clocks, no processes, no files.
 *
 * Conventions: MB is 10^6 bytes and GB 10^9 (as the card makers count); "CPU s" is user + system
 * time including child processes.
 */

export type RunGroup = 'baseline' | 'kluis' | 'stage' | 'memory';

export interface RunResult {
  /** Stable id used in ratios and the JSON, e.g. "cp+sha256sum", "diy", "kluis-ingest-fs", "stage-seal". */
  id: string;
  /** What a reader sees in the table. */
  label: string;
  group: RunGroup;
  /** The card the run read (CardInfo.id); absent for runs that belong to no card. */
  card?: string;
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
  /** Peak RSS per process name ("ffmpeg", "exiftool", …) where the run sampled /proc. */
  rssByProcess?: Record<string, number>;
  /** Peak RSS of the run's own process (for kluis runs: the kluis process) where sampled. */
  commandPeakRssBytes?: number;
  ok: boolean;
  error?: string;
  note?: string;
  /**
   * From the start of the run to the moment the card could be taken out: kluis from its journal
   * ("safe to remove"), cp+sha256sum at its end, the do-it-yourself pipeline after its copy.
   */
  cardFreeMs?: number;
  /** Wall time of the named steps of a scripted run, in order (the do-it-yourself pipeline). */
  phasesMs?: Record<string, number>;
}

export interface MachineInfo {
  host: string;
  cores: number;
  cpuModel: string;
  memTotalBytes: number;
  os: string;
}

export interface CardInfo {
  /** The bench's name for the card: "photo-heavy", "video-heavy", "memory-1g", … */
  id: string;
  path: string;
  /** What it holds, in words, e.g. "58 clips of 20 s 1920x1080 H.264/AAC + 60 JPEGs of 4000x3000 …". */
  description: string;
  bytes: number;
  files: number;
  jpegs: number;
  videos: number;
  sidecars: number;
  /** True when the card came from the cache of an earlier run. */
  cached: boolean;
}

/** A figure judged against a goal (or only reported, `pass` null). */
export interface Check {
  id: string;
  label: string;
  value: string;
  pass: boolean | null;
  /** The figures behind `value`, for a reader of the JSON; null where not measured. */
  figures?: Record<string, number | null>;
}

/** "480 MB" below a GB, "1.5 GB" from there: a size as a reader says it. */
export function sizeText(bytes: number): string {
  return bytes < 1e9 ? `${(bytes / 1e6).toFixed(0)} MB` : `${(bytes / 1e9).toFixed(1)} GB`;
}

/** MB/s (10^6 bytes per second); 0 for a run that took no measurable time. */
export function mbPerSecond(r: Pick<RunResult, 'bytes' | 'wallMs'>): number {
  if (r.wallMs <= 0) return 0;
  return r.bytes / 1e6 / (r.wallMs / 1000);
}

export function filesPerSecond(r: Pick<RunResult, 'files' | 'wallMs'>): number {
  if (r.wallMs <= 0) return 0;
  return r.files / (r.wallMs / 1000);
}

export function cpuSeconds(r: Pick<RunResult, 'cpuUserMs' | 'cpuSysMs'>): number {
  return (r.cpuUserMs + r.cpuSysMs) / 1000;
}

/** CPU seconds per GB of input; null for a failed run or one that read nothing. */
export function cpuPerGb(r: RunResult): number | null {
  if (!r.ok || r.bytes <= 0) return null;
  return cpuSeconds(r) / (r.bytes / 1e9);
}

/** The run with this id on this card (card undefined: a run that belongs to no card). */
export function findRun(runs: RunResult[], id: string, card?: string): RunResult | undefined {
  return runs.find((r) => r.id === id && r.card === card);
}
