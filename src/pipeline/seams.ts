/**
 * The flow's test seams, all inert unless armed: named crash and stop points (crash.ts), a pause
 * before each card file is read (so a test can pull the card or fill the disk between two files),
 * and a shorter retry backoff (retry.ts). Only the command line arms them, once, from what a test
 * put in its environment (cli/seams.ts); no stage reads the environment for them. Worker threads
 * get the armed seams with their workerData (workers.ts → worker.ts), so a seam inside a worker
 * acts as on the main thread.
 */

/** A named point and which time it is reached (1: the first). */
export interface PointAt {
  point: string;
  nth: number;
}

export interface Seams {
  /** Kill the process (SIGKILL) there: no cleanup, no flush, like a power cut. */
  crashAt?: PointAt;
  /** Stop the process (SIGSTOP) there, so a test can act on it at a known moment. */
  stopAt?: PointAt;
  /** Pause before each card file is opened (ms). */
  acquireDelayMs?: number;
  /** The first retry delay of a delivery (ms); the production value is 2000. */
  retryBaseMs?: number;
}

let armed: Readonly<Seams> = Object.freeze({});

/** Arms `s` for this thread (the CLI at start; a worker thread from its workerData). */
export function armSeams(s: Seams): void {
  armed = Object.freeze({ ...s });
}

/** What is armed in this thread: `{}` unless a test asked for something. */
export function seams(): Readonly<Seams> {
  return armed;
}
