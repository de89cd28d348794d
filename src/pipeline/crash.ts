/**
 * Named crash points for fault-injection tests. When KLUIS_CRASH_AT names a point (optionally
 * `name:N` for the N-th time it is reached, counting from 1), the process kills itself with
 * SIGKILL right there: no cleanup, no flush, exactly like a power cut. KLUIS_STOP_AT (same form)
 * stops the process there instead (SIGSTOP), so a test can act on it at a known moment, e.g.
 * kill its whole process group. Inert otherwise.
 *
 * Some points are reached inside worker threads (mid-acquire in the card reader, mid-seal in a
 * sanitize/seal worker). The hit counts are then shared by the whole process: the main thread
 * makes a SharedArrayBuffer (crashCounters) and every worker adopts it (useCrashCounters), so
 * `mid-seal:3` is the third file sealed, whichever worker sealed it. A signal sent from a worker
 * acts on the whole process.
 */
function parse(spec: string | undefined): [string | undefined, number] {
  return spec ? [spec.split(':')[0], Number(spec.split(':')[1] ?? '1')] : [undefined, 0];
}
const [crashName, crashNth] = parse(process.env.KLUIS_CRASH_AT);
const [stopName, stopNth] = parse(process.env.KLUIS_STOP_AT);

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
  if (crashName !== name && stopName !== name) return;
  const n = Atomics.add(counters, CRASH_POINTS.indexOf(name), 1) + 1;
  if (crashName === name && n === crashNth) process.kill(process.pid, 'SIGKILL');
  if (stopName === name && n === stopNth) process.kill(process.pid, 'SIGSTOP');
}
