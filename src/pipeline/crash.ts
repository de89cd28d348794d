/**
 * Named crash points for fault-injection tests. When a crash point is armed (pipeline/seams.ts:
 * the command line arms KLUIS_CRASH_AT=name[:N], the N-th time it is reached, counting from 1),
 * the process kills itself with SIGKILL right there: no cleanup, no flush, exactly like a power
 * cut. An armed stop point (KLUIS_STOP_AT, same form) stops the process there instead (SIGSTOP),
 * so a test can act on it at a known moment, e.g. kill its whole process group. Inert otherwise.
 *
 * Some points are reached inside worker threads (mid-acquire in the card reader, mid-seal in a
 * sanitize/seal worker). The hit counts are then shared by the whole process: the main thread
 * makes a SharedArrayBuffer (crashCounters) and every worker adopts it (useCrashCounters), so
 * `mid-seal:3` is the third file sealed, whichever worker sealed it. A signal sent from a worker
 * acts on the whole process.
 */
import { seams } from './seams.js';

export const CRASH_POINTS = [
  'after-inventory',
  'mid-acquire',
  'after-acquire',
  'mid-seal',
  'after-sanitize',
  'after-seal',
  'after-hold',
  'before-put',
  'after-put',
  'after-delivered',
  'after-verify',
  'before-manifest',
  'after-manifest',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

let counters: Int32Array = new Int32Array(new SharedArrayBuffer(4 * CRASH_POINTS.length));

/** The process-wide hit counters, to hand to worker threads. */
export function crashCounters(): SharedArrayBuffer {
  return counters.buffer as SharedArrayBuffer;
}

/** In a worker thread: count hits in the main thread's counters (from crashCounters()). */
export function useCrashCounters(shared: SharedArrayBuffer): void {
  counters = new Int32Array(shared);
}

export function crashPoint(name: CrashPoint): void {
  const { crashAt, stopAt } = seams();
  if (crashAt?.point !== name && stopAt?.point !== name) return;
  const n = Atomics.add(counters, CRASH_POINTS.indexOf(name), 1) + 1;
  if (crashAt?.point === name && n === crashAt.nth) process.kill(process.pid, 'SIGKILL');
  if (stopAt?.point === name && n === stopAt.nth) process.kill(process.pid, 'SIGSTOP');
}
