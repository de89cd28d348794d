/**
 * Named crash points for fault-injection tests. When KLUIS_CRASH_AT names a point (optionally
 * `name:N` for the N-th time it is reached, counting from 1), the process kills itself with
 * SIGKILL right there: no cleanup, no flush, exactly like a power cut. Inert otherwise.
 */
const spec = process.env.KLUIS_CRASH_AT;
const [crashName, crashNth] = spec ? [spec.split(':')[0], Number(spec.split(':')[1] ?? '1')] : [undefined, 0];
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
  if (crashName !== name) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === crashNth) process.kill(process.pid, 'SIGKILL');
}
