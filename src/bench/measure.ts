/**
 * How the benchmark measures: wall time with a monotonic clock, CPU time (user + system, children
 * included) and peak resident memory, for a child command or for work done in this process.
 *
 * - child commands run under GNU `/usr/bin/time` (its wait4 rusage gives CPU of the whole tree and
 *   the largest max-RSS of any one process in it); while they run, /proc is sampled to record the
 *   peak RSS (VmHWM) per process name (ffmpeg, exiftool, …) and of the command's own process (the
 *   kluis process, whatever its name: Node 24 names its main thread, and with it the process,
 *   "MainThread").
 * - in-process work: CPU from /proc/self/stat (utime+stime plus cutime+cstime, so tools spawned
 *   and reaped meanwhile count); peak RSS by resetting the high-water mark (clear_refs 5) before
 *   and reading VmHWM after, falling back to sampling process.memoryUsage().rss.
 *
 * Linux only. Never kills anything it did not start; never asserts a time.
 */
import { spawn } from 'node:child_process';
import { promises as fsp, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError } from '../errors.js';

const TICK_MS = 10; // USER_HZ is 100 on Linux

export interface Measured {
  wallMs: number;
  cpuUserMs: number;
  cpuSysMs: number;
  peakRssBytes: number | null;
  rssMethod: string;
  rssByProcess: Record<string, number>;
  /** Peak RSS of the command's own process (not its children); null where not sampled. */
  commandPeakRssBytes: number | null;
}

export interface CommandResult extends Measured {
  exitCode: number;
  stdout: string;
  stderrTail: string;
}

/** Reads a /proc status field in kB and returns bytes, or null. */
function statusField(pid: number | 'self', field: string): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
    } catch {
      // the task ended meanwhile
    }
  }
  return out;
}

/**
 * Samples the peak RSS (VmHWM) of every process below `root`, keyed by process name, and apart
 * from that of the command itself: the direct children of `root` (the measuring wrapper).
 */
export class TreeSampler {
  readonly peaks: Record<string, number> = {};
  /** Peak of the direct children of `root`, null until one was seen. */
  commandPeak: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly root: number,
    private readonly everyMs = 100,
    /** Names not to record (the measuring wrapper itself). */
    private readonly ignore: ReadonlySet<string> = new Set(['time']),
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  stop(): Record<string, number> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.peaks;
  }

  sample(): void {
    const todo = [this.root];
    const seen = new Set<number>();
    const direct = new Set(childrenOf(this.root));
    while (todo.length > 0) {
      const pid = todo.pop()!;
      if (seen.has(pid)) continue;
      seen.add(pid);
      const comm = commOf(pid);
      const hwm = statusField(pid, 'VmHWM');
      if (comm && hwm !== null && !this.ignore.has(comm)) this.peaks[comm] = Math.max(this.peaks[comm] ?? 0, hwm);
      if (hwm !== null && direct.has(pid)) this.commandPeak = Math.max(this.commandPeak ?? 0, hwm);
      todo.push(...childrenOf(pid));
    }
  }
}

/** Parses GNU time's `-f '%e %U %S %M'` output (seconds, seconds, seconds, kB). */
export function parseTimeOutput(text: string): { wallS: number; userS: number; sysS: number; maxRssKb: number } | null {
  const lines = text.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const m = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)$/.exec(last.trim());
  if (!m) return null;
  return { wallS: Number(m[1]), userS: Number(m[2]), sysS: Number(m[3]), maxRssKb: Number(m[4]) };
}

export interface CommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep at most this much stdout (bytes); the rest is dropped. */
  maxStdout?: number;
  /** Stop the run (SIGTERM to its process group, SIGKILL 10 s later) after this long. */
  timeoutMs?: number;
}

/** Runs `cmd args` under /usr/bin/time and samples its process tree. Never throws on a non-zero exit. */
export async function runCommand(cmd: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const timeFile = path.join(os.tmpdir(), `kluis-bench-time-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const maxOut = opts.maxStdout ?? 4 * 1024 * 1024;
  const t0 = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a run that hangs can be stopped with everything it started.
    detached: true,
  });
  let timedOut = false;
  const stopGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  // Interrupting the bench stops the run too (it is in its own process group).
  const onSignal = (signal: NodeJS.Signals): void => {
    stopGroup('SIGTERM');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const timers: NodeJS.Timeout[] = [];
  if (opts.timeoutMs !== undefined) {
    timers.push(
      setTimeout(() => {
        timedOut = true;
        stopGroup('SIGTERM');
        timers.push(setTimeout(() => stopGroup('SIGKILL'), 10_000));
      }, opts.timeoutMs),
    );
  }
  const sampler = new TreeSampler(child.pid ?? -1).start();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (stdout.length < maxOut) stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', (err) =>
      reject(new KluisError('E_BENCH_TOOL', `cannot start ${cmd}: ${err.message}`, { hint: 'install GNU time (apt-get install time)', cause: err })),
    );
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  for (const t of timers) clearTimeout(t);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const peaks = sampler.stop();
  if (timedOut) stderr += `\nstopped by the bench after ${Math.round((opts.timeoutMs ?? 0) / 1000)} s (timed out)`;
  const timeText = await fsp.readFile(timeFile, 'utf8').catch(() => '');
  await fsp.rm(timeFile, { force: true });
  const t = parseTimeOutput(timeText);
  return {
    exitCode,
    stdout,
    stderrTail: stderr,
    wallMs,
    cpuUserMs: t ? t.userS * 1000 : 0,
    cpuSysMs: t ? t.sysS * 1000 : 0,
    peakRssBytes: t ? t.maxRssKb * 1024 : null,
    rssMethod: 'GNU time: largest max-RSS of any one process in the run',
    rssByProcess: peaks,
    commandPeakRssBytes: sampler.commandPeak,
  };
}

/** CPU ticks of this process: own user/sys and reaped children's user/sys. */
function selfCpuMs(): { user: number; sys: number } {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields after the command name start at field 3 (state): utime is 14, stime 15, cutime 16, cstime 17.
  const f = (n: number): number => Number(rest[n - 3] ?? 0);
  return { user: (f(14) + f(16)) * TICK_MS, sys: (f(15) + f(17)) * TICK_MS };
}

function resetHighWaterMark(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Measures `fn` run in this process (children it spawns and reaps count toward CPU). */
export async function measureInProcess<T>(fn: () => Promise<T>): Promise<{ value: T; m: Measured }> {
  const canReset = resetHighWaterMark();
  let sampled = process.memoryUsage().rss;
  const timer = setInterval(() => {
    sampled = Math.max(sampled, process.memoryUsage().rss);
  }, 50);
  timer.unref();
  const c0 = selfCpuMs();
  const t0 = process.hrtime.bigint();
  try {
    const value = await fn();
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const c1 = selfCpuMs();
    sampled = Math.max(sampled, process.memoryUsage().rss);
    const hwm = canReset ? statusField('self', 'VmHWM') : null;
    const peak = hwm ?? sampled;
    return {
      value,
      m: {
        wallMs,
        cpuUserMs: c1.user - c0.user,
        cpuSysMs: c1.sys - c0.sys,
        peakRssBytes: peak,
        rssMethod: hwm !== null ? 'VmHWM of the bench process (reset before the stage)' : 'sampled rss of the bench process',
        rssByProcess: { node: peak },
        commandPeakRssBytes: peak,
      },
    };
  } finally {
    clearInterval(timer);
  }
}

/** Free bytes on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const st = await fsp.statfs(dir);
  return Number(st.bavail) * Number(st.bsize);
}
