/**
 * Short-lived tools (ffprobe, ffmpeg) started from a small spawner process instead of from kluis.
 * Why: starting a program forks the process that starts it. Forking kluis, a few hundred MB with
 * its worker threads, copies its page tables and write-protects every page, so each of its
 * threads then takes a page fault on the first write to every page it touches again; with one or
 * two tools per video clip that slowed the card read beside it. The spawner is forked once per
 * thread, while it is small, and forks the tools from there.
 *
 * Promises: `runInSpawner(bin, argv, opts)` starts `bin argv` in this thread's spawner
 * (spawner-child.ts: no shell, background priority, stdin closed) and answers with what it
 * collected, or `null` when no spawner can be used here: kluis run from its TypeScript sources
 * (no compiled spawner), or the spawner could not start or has died; the caller then starts the
 * tool itself. A request under way when the spawner dies also answers `null`. Aborting `signal`
 * kills the tool. The spawner never keeps node alive while nothing runs in it, and it ends with
 * its kluis process, killing what it still runs (spawner-child.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type SpawnRequest =
  | { t: 'run'; id: number; bin: string; argv: string[]; collectStdout: number; stderrTail: number; timeoutMs: number }
  | { t: 'kill'; id: number };

export interface SpawnReply {
  t: 'done';
  id: number;
  /** exit: it ran to its end (see code/signal); timeout/output/killed: killed for that; spawn: never started. */
  outcome: 'exit' | 'timeout' | 'output' | 'killed' | 'spawn';
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  errno?: string | null;
  message?: string;
}

const script = new URL('./spawner-child.js', import.meta.url);

/** This thread's spawner: undefined until first asked for, null when it cannot be used. */
let spawner: ChildProcess | null | undefined;
/** Requests under way, by id, with the spawner each went to. */
const waiting = new Map<number, { child: ChildProcess; done: (r: SpawnReply | null) => void }>();
const inFlight = new Set<Promise<SpawnReply | null>>();
let nextId = 1;

function start(): ChildProcess | null {
  if (spawner !== undefined) return spawner;
  spawner = null;
  if (!import.meta.url.endsWith('.js') || !existsSync(fileURLToPath(script))) return null;
  let child: ChildProcess;
  try {
    child = fork(fileURLToPath(script), [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'ignore', 'ipc'], execArgv: [] });
  } catch {
    return null;
  }
  child.on('message', (m: SpawnReply) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    idle();
    w.done(m);
  });
  const gone = (): void => {
    if (spawner === child) spawner = null; // not started again in this thread: callers spawn themselves
    for (const [id, w] of waiting) {
      if (w.child !== child) continue;
      waiting.delete(id);
      w.done(null);
    }
  };
  child.on('error', gone);
  child.on('exit', gone);
  spawner = child;
  idle();
  return child;
}

/** Holds node open only while a request is under way. */
function idle(): void {
  if (!spawner) return;
  if (![...waiting.values()].some((w) => w.child === spawner)) {
    spawner.unref();
    spawner.channel?.unref();
  } else {
    spawner.ref();
    spawner.channel?.ref();
  }
}

export function runInSpawner(
  bin: string,
  argv: string[],
  opts: { collectStdout: number; stderrTail: number; timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<SpawnReply | null> {
  const child = start();
  if (!child) return Promise.resolve(null);
  const id = nextId++;
  const p = new Promise<SpawnReply | null>((resolve) => {
    const onAbort = (): void => {
      if (waiting.has(id)) child.send({ t: 'kill', id } satisfies SpawnRequest, () => undefined);
    };
    waiting.set(id, {
      child,
      done: (r) => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve(r);
      },
    });
    idle();
    const request: SpawnRequest = { t: 'run', id, bin, argv, collectStdout: opts.collectStdout, stderrTail: opts.stderrTail, timeoutMs: opts.timeoutMs };
    child.send(request, (err) => {
      if (!err) return;
      // The spawner is going away: the caller starts the tool itself.
      const w = waiting.get(id);
      waiting.delete(id);
      idle();
      w?.done(null);
    });
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  inFlight.add(p);
  void p.finally(() => inFlight.delete(p));
  return p;
}

/**
 * Ends this thread's spawner once what runs in it has ended, and waits until it has gone, so the
 * CPU time of the tools it ran is counted with this process (a worker thread's 'close', the
 * bench). The next request starts a new one.
 */
export async function closeSpawner(): Promise<void> {
  const child = spawner;
  spawner = undefined;
  if (!child) return;
  await Promise.allSettled([...inFlight]);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.ref();
  child.disconnect();
  await gone;
}

/** The spawner's pid, when this thread has one running (tests). */
export function spawnerPid(): number | null {
  return spawner?.pid ?? null;
}
