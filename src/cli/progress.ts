/**
 * Terminal progress for ingest, resume and watch, always on stderr, never on stdout (so
 * `--json` keeps stdout to one JSON document).
 *
 *  - stderr is a terminal: live bars per card (total and current file: bytes, rate, time
 *    left), redrawn in place at most ~10 times a second; lasting news (safe to remove, a failed
 *    file, the batch result) is printed above the bars and stays in the scrollback. Other
 *    stderr output written while bars are shown (errors, hints, watch messages) is placed
 *    above the bars too, so nothing is overdrawn.
 *  - otherwise (a pipe, a log file, systemd, TERM=dumb, KLUIS_PROGRESS=plain): one plain line
 *    per meaningful event, reading progress every 25 %.
 *  - --quiet: problems only (errors, warnings, a card not safe to remove); --verbose:
 *    per-file states and every delivery as well.
 *
 * The pipeline itself never writes to the terminal: its problems arrive here as events (a file
 * failed, rejected or held, the card removed or not safe, a warning) and are printed as
 * `kluis: error: …` / `kluis: hint: …` / `kluis: warning: …` lines, escaped like all output.
 *
 * Call `finish()` before printing the result, so the last frame is drawn and the terminal is
 * left clean. Lines are cut to the terminal width, because a wrapped line would break the
 * in-place redraw.
 */
import { lstatSync } from 'node:fs';
import { oneLine } from '../util/terminal.js';
import { cardFsPath } from '../card/index.js';
import type { PipelineEvent } from '../pipeline/events.js';
import { ProgressReducer, type CardProgress } from '../pipeline/progress.js';

export interface ProgressOptions {
  quiet?: boolean;
  verbose?: boolean;
  /** Print only the problem lines (what --quiet still shows). */
  problemsOnly?: boolean;
}

export interface ProgressSink {
  (e: PipelineEvent): void;
  /** Draws the final frame and releases the terminal. Safe to call twice. */
  finish(): void;
}

export interface ProgressStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

/** Chooses bars or lines for stderr. (Name kept from the first, line-only version.) */
export function lineProgress(opts: ProgressOptions = {}): ProgressSink {
  if (opts.quiet) return plainProgress(process.stderr, { problemsOnly: true });
  return useBars(process.stderr) ? ttyProgress(process.stderr, opts, { interceptStderr: true }) : plainProgress(process.stderr, opts);
}

export function useBars(stream: ProgressStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.KLUIS_PROGRESS === 'plain') return false;
  if (env.KLUIS_PROGRESS === 'tty') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

// ---------------------------------------------------------------------------------------------
// formatting (pure)

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

/** `[#####-----]` for a fraction 0..1, `width` characters between the brackets. ASCII only. */
export function renderBar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.floor(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

export function percent(done: number, total: number): string {
  const p = total > 0 ? Math.floor((100 * done) / total) : done > 0 ? 100 : 0;
  return `${String(Math.min(100, p)).padStart(3)}%`;
}

export function fitWidth(line: string, columns: number): string {
  const max = Math.max(20, columns - 1);
  return line.length <= max ? line : `${line.slice(0, max - 1)}~`;
}

// ---------------------------------------------------------------------------------------------
// per-card bookkeeping: the pipeline's one reducer (pipeline/progress.ts), plus the size of the
// card file being read (for the per-file bar), which only the terminal shows

type Card = CardProgress & { fileSize?: number };

class Tracker {
  private readonly reducer = new ProgressReducer();
  private readonly sizes = new Map<string, { path: string; size: number | undefined }>();

  constructor(private readonly now: () => number) {}

  get cards(): Map<string, CardProgress> {
    return this.reducer.cards;
  }

  apply(e: PipelineEvent): Card {
    const c = this.reducer.apply(e, this.now());
    if (e.type === 'acquire-progress' && this.sizes.get(c.batchId)?.path !== e.path) this.sizes.set(c.batchId, { path: e.path, size: statSize(c.card, e.path) });
    if (e.type === 'card-seen') this.sizes.delete(c.batchId);
    return this.withSize(c);
  }

  withSize(c: CardProgress): Card {
    const s = this.sizes.get(c.batchId);
    return s && s.path === c.path ? { ...c, fileSize: s.size } : c;
  }

  rate(c: CardProgress): number | null {
    return this.reducer.rate(c);
  }
}

function statSize(card: string, rel: string): number | undefined {
  if (!card) return undefined;
  try {
    // lstat only: metadata of the card file, never its content, never a link target.
    return lstatSync(cardFsPath(card, rel)).size;
  } catch {
    return undefined;
  }
}

function cardName(c: Card): string {
  return c.label ? `${c.card} (${c.label})` : c.card;
}

/**
 * The lines of a problem event (errors, warnings, a card that must be kept), without the
 * `kluis: ` prefix; empty for every other event. Shown even with --quiet.
 */
function problemLines(e: PipelineEvent): string[] {
  const error = (subject: string | undefined, x: { code: string; message: string; hint?: string }): string[] => [
    `error: ${subject ? `${subject}: ` : ''}${x.message} [${x.code}]`,
    ...(x.hint ? [`hint: ${x.hint}`] : []),
  ];
  switch (e.type) {
    case 'card-writable':
      return [
        `warning: the card at ${e.card} is mounted READ-WRITE (${e.mountOptions ?? 'unknown options'}); ${e.refused ? 'policy refuses to read it' : 'kluis will not write to it, but mount cards read-only (see deploy/)'}`,
      ];
    case 'card-warning':
      return [`warning: ${e.message}`];
    case 'card-missing':
      return error(undefined, {
        code: 'E_CARD_REMOVED',
        message: `the card ${e.card} was removed before ${e.remaining} file(s) were read`,
        hint: 'insert the card again and run the same command; files already read are kept and are not read again',
      });
    case 'card-not-safe':
      return [
        `NOT SAFE TO REMOVE the card ${e.card}: ${e.files.length} file(s) could not be read and sealed; keep the card`,
        ...e.files.flatMap((f) => error(f.path, f)),
        'hint: once the cause is fixed (a file still being written, a bad reader), insert the card again and run the same command',
      ];
    case 'file-state':
      if ((e.state === 'failed' || e.state === 'rejected') && e.error) return error(e.path, e.error);
      if (e.state === 'held' && e.error) return error(e.path, { ...e.error, message: `NOT sanitized, its sealed original is kept: ${e.error.message}` });
      return [];
    default:
      return [];
  }
}

/** Lasting lines for an event (shared by both renderers); `verbose` adds per-file detail. */
function newsLines(e: PipelineEvent, c: Card, verbose: boolean): string[] {
  const problems = problemLines(e);
  if (problems.length > 0) return problems;
  switch (e.type) {
    case 'card-seen':
      return [`card ${cardName(c)}: ${e.files} files, ${formatBytes(e.bytes)} (batch ${e.batchId})`];
    case 'safe-to-remove':
      return [`SAFE TO REMOVE the card ${e.card}: every file is read and every footage file sealed`];
    case 'file-state':
      return verbose ? [`${e.path}: ${e.state}`] : [];
    case 'delivery':
      if (e.state === 'refused' || e.state === 'failed') return [`${e.object} -> ${e.target}: ${e.state}${e.error ? ` [${e.error.code}] ${e.error.message}` : ''}`];
      return verbose ? [`${e.object} -> ${e.target}: ${e.state}`] : [];
    case 'batch-status':
      return [`batch ${e.batchId}: ${e.status.toUpperCase()}${e.status === 'secured' ? ` (${c.verified} verified deliveries)` : ''}`];
    case 'wiped':
      return [`batch ${e.batchId}: ${e.files} secured file(s) erased from the card`];
    default:
      return [];
  }
}

// ---------------------------------------------------------------------------------------------
// plain lines

export function plainProgress(stream: ProgressStream, opts: ProgressOptions = {}, now: () => number = Date.now): ProgressSink {
  const tracker = new Tracker(now);
  const lastStep = new Map<string, number>();
  const say = (s: string): void => {
    stream.write(`kluis: ${oneLine(s)}\n`);
  };
  const sink = (e: PipelineEvent): void => {
    const c = tracker.apply(e);
    if (opts.problemsOnly) {
      for (const l of problemLines(e)) say(l);
      return;
    }
    for (const l of newsLines(e, c, opts.verbose === true)) say(l);
    if (e.type === 'acquire-progress') {
      const step = e.bytesTotal > 0 ? Math.floor((4 * e.bytesDone) / e.bytesTotal) : 4;
      if (opts.verbose || step > (lastStep.get(e.batchId) ?? 0)) {
        lastStep.set(e.batchId, step);
        const r = tracker.rate(c);
        say(
          `reading ${percent(e.bytesDone, e.bytesTotal).trim()}: ${e.filesDone}/${e.filesTotal} files, ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)}` +
            `${r ? `, ${formatBytes(r)}/s, ${formatEta((e.bytesTotal - e.bytesDone) / r)} left` : ''}`,
        );
      }
    }
  };
  return Object.assign(sink, { finish: () => undefined });
}

// ---------------------------------------------------------------------------------------------
// bars

export interface TtyOptions {
  /** Route other writes to the stream (process.stderr) above the bars while they are shown. */
  interceptStderr?: boolean;
  now?: () => number;
  /** Minimum ms between redraws (the last frame is always drawn on finish). */
  frameMs?: number;
  color?: boolean;
}

export function ttyProgress(stream: ProgressStream & NodeJS.WritableStream, opts: ProgressOptions = {}, t: TtyOptions = {}): ProgressSink {
  const now = t.now ?? Date.now;
  const frameMs = t.frameMs ?? 100;
  const color = t.color ?? !process.env.NO_COLOR;
  const tracker = new Tracker(now);
  const shown = new Set<string>();
  const raw = stream.write.bind(stream) as (s: string) => boolean;
  let drawn = 0;
  let lastDraw = 0;
  let pending: NodeJS.Timeout | undefined;
  let finished = false;
  const columns = (): number => (stream.columns && stream.columns > 0 ? stream.columns : 80);
  const bold = (s: string): string => (color ? `\x1b[1m${s}\x1b[22m` : s);

  const frame = (): string[] => {
    const w = columns();
    const barW = Math.max(10, Math.min(30, w - 60));
    const lines: string[] = [];
    for (const id of shown) {
      const found = tracker.cards.get(id);
      if (!found) continue;
      const c = tracker.withSize(found);
      if (c.presence === 'reading') {
        const r = tracker.rate(c);
        const eta = r ? (c.bytesTotal - c.bytesDone) / r : null;
        lines.push(bold(fitWidth(`card ${cardName(c)}: reading - do NOT remove`, w)));
        lines.push(
          fitWidth(
            `  total ${renderBar(c.bytesTotal ? c.bytesDone / c.bytesTotal : 0, barW)} ${percent(c.bytesDone, c.bytesTotal)} ` +
              `${formatBytes(c.bytesDone)}/${formatBytes(c.bytesTotal)}  ${c.filesDone}/${c.filesTotal} files  ` +
              `${r ? `${formatBytes(r)}/s` : '-- MB/s'}  ETA ${formatEta(eta)}`,
            w,
          ),
        );
        if (c.path) {
          const done = c.bytesDone - c.fileStart;
          const size = c.fileSize;
          lines.push(fitWidth(`  file  ${renderBar(size ? done / size : 0, barW)} ${size ? percent(Math.min(done, size), size) : '  ?%'} ${oneLine(c.path)}`, w));
        }
      } else if (c.presence === 'missing') {
        lines.push(fitWidth(`card ${cardName(c)}: REMOVED with ${c.missing} file(s) unread - insert it again`, w));
      } else if (c.presence === 'not-safe') {
        lines.push(bold(fitWidth(`card ${cardName(c)}: NOT SAFE TO REMOVE - ${c.notSafe} file(s) not read and sealed`, w)));
      } else if (c.presence === 'safe') {
        lines.push(bold(fitWidth(`card ${cardName(c)}: SAFE TO REMOVE`, w)));
        lines.push(fitWidth(`  sealing and delivering: ${c.sealed} sealed, ${c.withheld} withheld, ${c.failed} failed${c.held ? `, ${c.held} held (not sanitized, original kept)` : ''}, ${c.verified} deliveries verified${c.deliveryProblems ? `, ${c.deliveryProblems} delivery problem(s)` : ''}`, w));
      } else {
        lines.push(fitWidth(`card ${cardName(c)}: found`, w));
      }
    }
    return lines;
  };

  const draw = (): void => {
    if (pending) {
      clearTimeout(pending);
      pending = undefined;
    }
    lastDraw = now();
    const lines = frame();
    let out = drawn > 0 ? `\r\x1b[${drawn}A` : '\r';
    for (const l of lines) out += `\x1b[2K${l}\n`;
    out += '\x1b[J';
    raw(out);
    drawn = lines.length;
  };

  const schedule = (): void => {
    if (finished) return;
    const wait = frameMs - (now() - lastDraw);
    if (wait <= 0) draw();
    else if (!pending) {
      pending = setTimeout(draw, wait);
      pending.unref?.();
    }
  };

  /** Prints lasting text above the bars. */
  const above = (text: string): void => {
    let out = drawn > 0 ? `\r\x1b[${drawn}A\x1b[J` : '';
    out += text;
    raw(out);
    drawn = 0;
    if (!finished) draw();
  };

  let restore: (() => void) | undefined;
  if (t.interceptStderr) {
    const original = stream.write;
    // Writes by others (errors, hints, watch messages) land above the bars.
    (stream as { write: unknown }).write = (chunk: unknown, ...rest: unknown[]): boolean => {
      if (finished || drawn === 0) return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      above(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    };
    restore = () => {
      (stream as { write: unknown }).write = original;
    };
  }

  const sink = (e: PipelineEvent): void => {
    if (finished) return;
    const c = tracker.apply(e);
    const news = newsLines(e, c, opts.verbose === true);
    // Cards are worked one at a time (ingest, watch's queue): a new card ends the last one's block.
    if (e.type === 'card-seen') {
      shown.clear();
      shown.add(e.batchId);
    }
    if (e.type === 'batch-status' || e.type === 'wiped') shown.delete(e.batchId);
    if (news.length > 0) above(news.map((l) => `kluis: ${e.type === 'safe-to-remove' || e.type === 'card-not-safe' || e.type === 'batch-status' ? bold(oneLine(l)) : oneLine(l)}\n`).join(''));
    else schedule();
  };

  return Object.assign(sink, {
    finish: () => {
      if (finished) return;
      draw();
      finished = true;
      restore?.();
    },
  });
}
