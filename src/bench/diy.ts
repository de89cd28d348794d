/**
 * The do-it-yourself baseline of issue 14: what a careful user would script instead of kluis.
 * Copy the card (`cp -r`, then `sync` of the copy so the card can be taken out), strip the copy
 * with `exiftool -all= -overwrite_original -r`, then `rclone copy` it to a crypt remote over a
 * local folder (a temp rclone.conf, passwords obscured with `rclone obscure`) and fsync what
 * rclone wrote. One bash script, measured as one child process (CPU of every tool counted); it
 * prints a mark with a nanosecond clock between the steps, from which the steps' wall times and
 * the moment the card was free are read.
 *
 * A baseline only: it proves nothing (exiftool's "-all=" keeps what it cannot write, e.g. the SRT
 * sidecars, and rewrites in place), and its output is removed afterwards unless kept. Never
 * touches the card except to read it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { runCommand } from './measure.js';
import type { RunResult } from './result.js';
import { CRYPT_REMOTE, cleanup, cryptRemote, toRun, warmCard, type RunContext } from './runs.js';

/** The line the script prints between steps: `kluis-bench-mark NAME NANOSECONDS`. */
export const MARK = 'kluis-bench-mark';

/** The steps, each named by the mark that ends it; the first mark starts the clock. */
export const DIY_STEPS = [
  { mark: 'copied', name: 'copy' },
  { mark: 'stripped', name: 'exiftool' },
  { mark: 'delivered', name: 'rclone' },
] as const;

/** The script: $1 card, $2 scratch folder, $3 rclone config, $4 the crypt remote's local folder. */
export const DIY_SCRIPT = [
  'set -e',
  `mark() { printf '${MARK} %s %s\\n' "$1" "$(date +%s%N)"; }`,
  'mark start',
  'cp -r "$1" "$2/copy"',
  'find "$2/copy" -type f -exec sync {} +',
  'mark copied',
  'exiftool -q -all= -overwrite_original -r "$2/copy"',
  'mark stripped',
  `rclone --config "$3" copy "$2/copy" ${CRYPT_REMOTE}:`,
  'find "$4" -type f -exec sync {} +',
  'mark delivered',
].join('\n');

/** Reads the marks a script printed, in order: name and nanoseconds since the epoch. */
export function parseMarks(stdout: string): Array<{ name: string; ns: bigint }> {
  const out: Array<{ name: string; ns: bigint }> = [];
  for (const line of stdout.split('\n')) {
    const m = new RegExp(`^${MARK} (\\S+) (\\d+)$`).exec(line.trim());
    if (m) out.push({ name: m[1]!, ns: BigInt(m[2]!) });
  }
  return out;
}

/**
 * Milliseconds of each step (named as in `steps`) from the marks: from 'start' to the first
 * step's mark, then from mark to mark. null when a mark is missing, repeated or out of order
 * (the script stopped early, or printed something else).
 */
export function stepTimes(marks: Array<{ name: string; ns: bigint }>, steps: ReadonlyArray<{ mark: string; name: string }> = DIY_STEPS): Record<string, number> | null {
  const names = ['start', ...steps.map((s) => s.mark)];
  if (marks.length !== names.length || marks.some((m, i) => m.name !== names[i])) return null;
  const out: Record<string, number> = {};
  for (const [i, s] of steps.entries()) {
    const d = marks[i + 1]!.ns - marks[i]!.ns;
    if (d < 0n) return null;
    out[s.name] = Number(d) / 1e6;
  }
  return out;
}

/** Runs the do-it-yourself pipeline over the card (warm page cache, as every whole-card run). */
export async function runDiy(ctx: RunContext): Promise<RunResult> {
  const dir = path.join(ctx.work, 'diy');
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir, { recursive: true });
  const { conf, store } = await cryptRemote(path.join(dir, 'rclone'));
  await warmCard(ctx.card.path);
  const r = await runCommand('bash', ['-c', DIY_SCRIPT, 'diy', ctx.card.path, dir, conf, store]);
  await cleanup(ctx, dir);
  const run = toRun('diy', 'do-it-yourself: cp -r, exiftool -all=, rclone crypt (+fsync)', 'baseline', ctx.card, r);
  if (!run.ok) return run;
  const steps = stepTimes(parseMarks(r.stdout));
  if (!steps) return { ...run, ok: false, error: `the script's step marks are missing or out of order: ${JSON.stringify(r.stdout.slice(0, 300))}` };
  return { ...run, phasesMs: steps, cardFreeMs: steps.copy! };
}
