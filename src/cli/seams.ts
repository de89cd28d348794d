/**
 * The test seams a test sets in the environment of a `kluis` process, read here at the command
 * line's edge and armed for the flow (pipeline/seams.ts); production never sets them:
 *
 *   KLUIS_CRASH_AT=name[:N]          SIGKILL the N-th time the crash point is reached (default 1)
 *   KLUIS_STOP_AT=name[:N]           SIGSTOP there instead
 *   KLUIS_TEST_ACQUIRE_DELAY_MS=ms   pause before each card file is opened
 *   KLUIS_RETRY_BASE_MS=ms           the first retry delay of a delivery (default 2000)
 *
 * The point names are CRASH_POINTS in pipeline/crash.ts; docs/durability.md says what each does.
 */
import { armSeams, type PointAt, type Seams } from '../pipeline/seams.js';

function pointAt(spec: string | undefined): PointAt | undefined {
  if (!spec) return undefined;
  const [point, nth] = spec.split(':');
  return { point: point!, nth: Number(nth ?? '1') };
}

function ms(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

export function seamsFromEnv(env: NodeJS.ProcessEnv): Seams {
  const crashAt = pointAt(env.KLUIS_CRASH_AT);
  const stopAt = pointAt(env.KLUIS_STOP_AT);
  const acquireDelayMs = ms(env.KLUIS_TEST_ACQUIRE_DELAY_MS);
  const retryBaseMs = ms(env.KLUIS_RETRY_BASE_MS);
  return {
    ...(crashAt ? { crashAt } : {}),
    ...(stopAt ? { stopAt } : {}),
    ...(acquireDelayMs !== undefined && acquireDelayMs > 0 ? { acquireDelayMs } : {}),
    ...(retryBaseMs !== undefined ? { retryBaseMs } : {}),
  };
}

/** Arms the seams `env` asks for (`kluis` calls this once, before it parses its arguments). */
export function armSeamsFromEnv(env: NodeJS.ProcessEnv = process.env): void {
  armSeams(seamsFromEnv(env));
}
