/**
 * The benchmark document: every measured run, the ratios and goals of issue 14 derived from them
 * (goals.ts), the summary (summary.ts), the text the command prints, and the JSON written to
 * bench/results/. Pure functions only: no clocks, no processes, no files except
 * `writeResultFile`, which writes one JSON document and never overwrites an existing one.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import { computeRatios, memoryChecks, ratioChecks, type RatioResult } from './goals.js';
import { cardSummary, cpuTable, formatSummary, type Summary } from './summary.js';
import { cpuSeconds, filesPerSecond, mbPerSecond, type CardInfo, type MachineInfo, type RunResult } from './result.js';

export interface BenchDocument {
  schema: 'kluis-bench/2';
  date: string;
  command: string;
  machine: MachineInfo;
  versions: Record<string, string>;
  /** The card scale of this run (1: the cards of issue 14). */
  scale: number;
  /** 1-minute load average when the bench started, null where unknown. */
  loadAverage: number | null;
  /** The whole cards the runs read (not the single videos of the memory runs). */
  cards: CardInfo[];
  runs: RunResult[];
  ratios: RatioResult[];
  summary: Summary;
  notes: string[];
}

export function makeDocument(parts: Omit<BenchDocument, 'schema' | 'ratios' | 'summary'>): BenchDocument {
  const ids = parts.cards.map((c) => c.id);
  const ratios = computeRatios(parts.runs, ids);
  return {
    schema: 'kluis-bench/2',
    ...parts,
    ratios,
    summary: {
      cards: parts.cards.map((c) => cardSummary(parts.runs, c, parts.machine.cores)),
      cpuPerGb: cpuTable(parts.runs, ids),
      goals: [...ratioChecks(ratios), ...memoryChecks(parts.runs)],
    },
  };
}

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/**
 * "kluis 120 MB; MainThread 120 MB, ffmpeg 40 MB" for runs of kluis itself (whose processes were
 * sampled): the kluis process, then the peak of every process name in the run (the kluis process
 * among them, under its own name: MainThread on Node 24, node before).
 */
export function rssBreakdown(r: RunResult): string {
  if ((r.group !== 'kluis' && r.group !== 'memory') || !r.rssByProcess) return '';
  const byName = Object.entries(r.rssByProcess)
    .filter(([name]) => name !== 'bash')
    .sort((a, b) => b[1] - a[1])
    .map(([name, v]) => `${name} ${(v / 1e6).toFixed(0)} MB`)
    .join(', ');
  return r.commandPeakRssBytes === undefined ? byName : `kluis ${(r.commandPeakRssBytes / 1e6).toFixed(0)} MB; ${byName}`;
}

/** "card free 16.2 s" / "copy 3.1 s, exiftool 2.0 s, rclone 4.2 s": what a run recorded besides its totals. */
function extras(r: RunResult): string {
  const parts: string[] = [];
  if (r.phasesMs) parts.push(Object.entries(r.phasesMs).map(([k, v]) => `${k} ${fixed(v / 1000, 1)} s`).join(', '));
  if (r.cardFreeMs !== undefined && r.id !== 'cp+sha256sum') parts.push(`card free after ${fixed(r.cardFreeMs / 1000, 1)} s`);
  return parts.join('; ');
}

function runTable(runs: RunResult[]): string[] {
  const head = ['run', 'MB/s', 'files/s', 'wall s', 'CPU s', 'CPU s/GB', 'peak RSS MB', 'note'];
  const rows: string[][] = runs.map((r) => [
    r.label,
    r.ok ? fixed(mbPerSecond(r), 1) : 'FAILED',
    r.ok ? fixed(filesPerSecond(r), 1) : '-',
    fixed(r.wallMs / 1000, 2),
    fixed(cpuSeconds(r), 2),
    r.ok && r.bytes > 0 ? fixed(cpuSeconds(r) / (r.bytes / 1e9), 1) : '-',
    r.peakRssBytes === null ? '-' : fixed(r.peakRssBytes / 1e6, 0),
    r.ok ? [extras(r), rssBreakdown(r), r.note ?? ''].filter((x) => x !== '').join('; ') : (r.error ?? 'failed'),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/**
 * Plain text: the machine, per card its runs, the memory runs, every ratio (goals with their
 * verdict), the notes, and last the Markdown summary (summary.ts) to paste into a closing note.
 */
export function formatTable(doc: BenchDocument): string {
  const out: string[] = [];
  out.push(
    `kluis bench on ${doc.machine.host}: ${doc.machine.cores} cores, ${doc.machine.cpuModel}, ${fixed(doc.machine.memTotalBytes / 1e9, 1)} GB RAM`,
  );
  out.push(Object.entries(doc.versions).map(([k, v]) => `${k} ${v}`).join(' | '));
  const cardIds = new Set(doc.cards.map((c) => c.id));
  for (const card of doc.cards) {
    const runs = doc.runs.filter((r) => r.card === card.id);
    out.push('');
    out.push(`card ${card.id}: ${card.description}; ${fixed(card.bytes / 1e6, 0)} MB in ${card.files} files${card.cached ? ', cached' : ''}`);
    if (runs.length > 0) out.push(...runTable(runs));
  }
  const other = doc.runs.filter((r) => r.card === undefined || !cardIds.has(r.card));
  if (other.length > 0) {
    out.push('');
    out.push('memory (one video per run)');
    out.push(...runTable(other));
  }
  const ratios = doc.ratios.filter((r) => r.ratio !== null || r.min !== undefined);
  if (ratios.length > 0) {
    out.push('');
    const label = (r: RatioResult): string => `${r.card ? `${r.card}: ` : ''}${r.label}`;
    const w = Math.max(...ratios.map((r) => label(r).length));
    for (const r of ratios) {
      const goal = r.min === undefined ? '' : `  goal >= ${r.min}x: ${r.pass === null ? 'NOT MEASURED' : r.pass ? 'PASS' : 'FAIL'}`;
      out.push(`${label(r).padEnd(w)}  ${r.ratio === null ? '    -' : `${fixed(r.ratio, 2).padStart(5)}x`}${goal}`);
    }
  }
  if (doc.notes.length > 0) out.push('');
  for (const n of doc.notes) out.push(`note: ${n}`);
  out.push('');
  out.push(formatSummary(doc.summary, doc).trimEnd());
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
