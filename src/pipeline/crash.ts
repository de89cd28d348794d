/**
 * Named crash points for fault-injection tests. When KLUIS_CRASH_AT names a point (optionally
 * `name:N` for the N-th time it is reached, counting from 1), the process kills itself with
 * SIGKILL right there: no cleanup, no flush, exactly like a power cut. KLUIS_STOP_AT (same form)
 * stops the process there instead (SIGSTOP), so a test can act on it at a known moment, e.g.
 * kill its whole process group. Inert otherwise.
 */
function parse(spec: string | undefined): [string | undefined, number] {
  return spec ? [spec.split(':')[0], Number(spec.split(':')[1] ?? '1')] : [undefined, 0];
}
const [crashName, crashNth] = parse(process.env.KLUIS_CRASH_AT);
const [stopName, stopNth] = parse(process.env.KLUIS_STOP_AT);
const hits = new Map<string, number>();

export const CRASH_POINTS = [
  'after-inventory',
  'mid-acquire',
  'after-acquire',
  'after-sanitize',
  'mid-seal',
  'after-seal',
  'before-put',
  'after-put',
  'after-delivered',
  'after-verify',
  'before-manifest',
  'after-manifest',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export function crashPoint(name: CrashPoint): void {
  if (crashName !== name && stopName !== name) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (crashName === name && n === crashNth) process.kill(process.pid, 'SIGKILL');
  if (stopName === name && n === stopNth) process.kill(process.pid, 'SIGSTOP');
}
