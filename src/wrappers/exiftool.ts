/**
 * The one place in kluis that starts ExifTool. Promises:
 * - `exiftool(options, file)` returns what `exiftool OPTIONS -- FILE` run on its own would print
 *   (stdout bytes, stderr tail, exit status): the same options, the same reader, the same JSON;
 * - one persistent ExifTool per kluis process (`-stay_open True -@ -`, ExifTool's documented batch
 *   mode), started on first use, serving one request at a time (a queue), started again on the
 *   next request when it died, killed when the process exits and never keeping node alive while
 *   idle (on Linux it is also started under `setpriv --pdeathsig KILL`, because a stay-open ExifTool
 *   whose stdin is closed polls forever instead of exiting);
 * - a file is handed to the persistent ExifTool only when it is an absolute path with no CR/LF
 *   (an argument file has one argument per line and ExifTool's `--` would also swallow the
 *   `-execute` that ends a request, so the path itself must be unable to read as an option or a
 *   second line); any other name, and every request after the persistent mode failed to start,
 *   runs as a one-shot `exiftool OPTIONS -- FILE` (said once on stderr when the mode is off);
 * - a per-request timeout is a safety net: the child is killed (and restarted by the next request)
 *   and the request fails with E_SANITIZE_TOOL_TIMEOUT; stdout is capped (`truncated` says so);
 * - a failure is a KluisError (E_SANITIZE_TOOL_*), never an empty answer.
 * It never decides anything about what ExifTool reports: callers hold the decisions.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import { asBackgroundWork } from './priority.js';

export interface ExiftoolOutput {
  /** Stdout as ExifTool printed it (the first `maxStdoutBytes` bytes when `truncated`). */
  stdout: Buffer;
  /** All stdout bytes ExifTool printed for this request. */
  stdoutBytes: number;
  truncated: boolean;
  /** The tail of stderr (at most 8 KiB). */
  stderr: string;
  /** ExifTool's exit status for this command (0 = success). */
  status: number;
  /** How it ran: the persistent process or a one-shot spawn. */
  via: 'stay-open' | 'one-shot';
}

export interface ExiftoolLimits {
  /** Stdout kept past this many bytes is dropped and `truncated` set. Default 64 MiB. */
  maxStdoutBytes?: number;
  /** Safety net against a hung ExifTool. Default 5 minutes. */
  timeoutMs?: number;
}

const DEFAULT_MAX = 64 << 20;
const DEFAULT_TIMEOUT = 5 * 60_000;
const STDERR_TAIL = 8192;
const INSTALL_HINT = 'install ExifTool (apt-get install libimage-exiftool-perl); kluis needs it to re-read sanitized files';

function missing(cause: unknown): KluisError {
  return new KluisError('E_SANITIZE_TOOL_MISSING', 'exiftool is not installed (not found on PATH)', { hint: INSTALL_HINT, cause });
}

function timedOut(ms: number): KluisError {
  return new KluisError('E_SANITIZE_TOOL_TIMEOUT', `exiftool did not finish within ${Math.round(ms / 1000)} s`, {
    hint: 'the file could not be checked, so it is withheld',
  });
}

/** An argument the argument-file reader gives back unchanged (see FilterArgfileLine in exiftool). */
function lineSafe(arg: string): boolean {
  return arg.length > 0 && !/[\r\n\0]/.test(arg) && !/^[\s#]/.test(arg) && !/\s$/.test(arg);
}

/** Options that would change the batch protocol itself if a caller passed them. */
const PROTOCOL_OPTION = /^-(-|execute\d*|stay_open|@|echo\d*|common_args|config|q+)$/i;

/** Whether `exiftool(options, file)` can go to the persistent process. */
export function stayOpenEligible(options: readonly string[], file: string): boolean {
  return (
    path.isAbsolute(file) && lineSafe(file) && file.startsWith('/') &&
    options.every((o) => lineSafe(o) && !PROTOCOL_OPTION.test(o))
  );
}

/** `exiftool OPTIONS -- FILE` as its own process. */
export function exiftoolOneShot(options: readonly string[], file: string, limits: ExiftoolLimits = {}): Promise<ExiftoolOutput> {
  const max = limits.maxStdoutBytes ?? DEFAULT_MAX;
  const timeoutMs = limits.timeoutMs ?? DEFAULT_TIMEOUT;
  return new Promise((resolve, reject) => {
    const child = spawn('exiftool', [...options, '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    asBackgroundWork(child);
    const out: Buffer[] = [];
    let bytes = 0;
    let stderr = '';
    let failed: KluisError | null = null;
    const timer = setTimeout(() => {
      failed = timedOut(timeoutMs);
      child.kill('SIGKILL');
    }, timeoutMs);
    timer.unref();
    child.stdout.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes <= max) out.push(c);
      else child.kill('SIGKILL'); // nothing more is needed: the caller only learns it was too much
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-STDERR_TAIL);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? missing(e) : new KluisError('E_SANITIZE_TOOL_FAILED', `could not start exiftool: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (failed) return reject(failed);
      const truncated = bytes > max;
      if (signal && !truncated) {
        return reject(new KluisError('E_SANITIZE_TOOL_FAILED', `exiftool was stopped by ${signal}: ${stderr.trim().slice(-300)}`));
      }
      resolve({ stdout: Buffer.concat(out), stdoutBytes: bytes, truncated, stderr, status: code ?? 1, via: 'one-shot' });
    });
  });
}

interface Pending {
  id: number;
  max: number;
  out: Buffer[];
  bytes: number;
  /** Last bytes of stdout, to find the `{readyN}` line that ends this request. */
  outTail: string;
  stderr: string;
  status: number | undefined;
  ready: boolean;
  resolve: (o: ExiftoolOutput) => void;
  reject: (e: unknown) => void;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => process.platform === 'linux' && existsSync(p));

/** One running `exiftool -stay_open True -@ -` and the request it is serving. */
class StayOpen {
  private child: ChildProcessWithoutNullStreams | null = null;
  private pending: Pending | null = null;
  private nextId = randomInt(1, 1_000_000) * 1000;
  private exitHook = false;

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    for (const s of [c.stdin, c.stdout, c.stderr] as unknown as Array<{ ref?: () => void; unref?: () => void }>) {
      if (on) s.ref?.();
      else s.unref?.();
    }
    if (on) c.ref();
    else c.unref();
  }

  private start(): ChildProcessWithoutNullStreams {
    const args = ['-stay_open', 'True', '-@', '-'];
    const child = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', 'exiftool', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('exiftool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    asBackgroundWork(child);
    child.stdout.on('data', (c: Buffer) => this.onStdout(child, c));
    child.stderr.on('data', (c: Buffer) => this.onStderr(child, c));
    child.stdin.on('error', () => {}); // EPIPE when it died: reported through 'close' below
    const died = (why: KluisError): void => {
      if (this.child !== child) return;
      this.child = null;
      const p = this.pending;
      this.pending = null;
      p?.reject(why);
    };
    child.on('error', (e: NodeJS.ErrnoException) =>
      died(e.code === 'ENOENT' ? missing(e) : new KluisError('E_SANITIZE_TOOL_FAILED', `could not start exiftool: ${e.message}`, { cause: e })),
    );
    child.on('close', (code, signal) =>
      died(new KluisError('E_SANITIZE_TOOL_DIED', `the persistent exiftool stopped (${signal ?? `exit ${code}`})`)),
    );
    if (!this.exitHook) {
      this.exitHook = true;
      process.once('exit', () => this.child?.kill('SIGKILL'));
    }
    return child;
  }

  private onStdout(child: ChildProcessWithoutNullStreams, c: Buffer): void {
    const p = this.pending;
    if (this.child !== child || !p) return; // nothing is asked: ExifTool prints only after -execute
    p.bytes += c.length;
    if (p.bytes <= p.max + 64) p.out.push(c); // + room for the {readyN} line, cut off below
    p.outTail = (p.outTail + c.toString('latin1')).slice(-64);
    const marker = `{ready${p.id}}\n`;
    if (p.outTail.endsWith(marker) && (p.bytes === marker.length || p.outTail.endsWith(`\n${marker}`))) p.ready = true;
    this.settle(p);
  }

  private onStderr(child: ChildProcessWithoutNullStreams, c: Buffer): void {
    const p = this.pending;
    if (this.child !== child || !p) return;
    p.stderr = (p.stderr + c.toString('utf8')).slice(-STDERR_TAIL);
    const m = new RegExp(`(?:^|\\n)\\{kluis-done${p.id} (\\d+)\\}\\n$`).exec(p.stderr);
    if (m) {
      p.status = Number(m[1]);
      p.stderr = p.stderr.slice(0, m.index + (m[0].startsWith('\n') ? 1 : 0));
    }
    this.settle(p);
  }

  private settle(p: Pending): void {
    if (!p.ready || p.status === undefined) return;
    this.pending = null;
    this.setRef(false);
    const marker = Buffer.byteLength(`{ready${p.id}}\n`);
    const truncated = p.bytes - marker > p.max;
    const stdout = Buffer.concat(p.out).subarray(0, truncated ? p.max : p.bytes - marker);
    p.resolve({ stdout, stdoutBytes: p.bytes - marker, truncated, stderr: p.stderr, status: p.status, via: 'stay-open' });
  }

  /** One request; the caller makes sure only one is in flight. */
  request(lines: readonly string[], limits: ExiftoolLimits): Promise<ExiftoolOutput> {
    const max = limits.maxStdoutBytes ?? DEFAULT_MAX;
    const timeoutMs = limits.timeoutMs ?? DEFAULT_TIMEOUT;
    const child = this.child ?? this.start();
    const id = ++this.nextId;
    return new Promise<ExiftoolOutput>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending?.id !== id) return;
        this.pending = null;
        this.child = null;
        child.kill('SIGKILL');
        reject(timedOut(timeoutMs));
      }, timeoutMs);
      timer.unref();
      this.pending = {
        id, max, out: [], bytes: 0, outTail: '', stderr: '', status: undefined, ready: false,
        resolve: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
        reject: (e) => {
          clearTimeout(timer);
          this.setRef(false);
          reject(e);
        },
      };
      this.setRef(true);
      // -echo4 prints after the command, on stderr, with the command's exit status.
      child.stdin.write([...lines, '-echo4', `{kluis-done${id} \${status}}`, `-execute${id}`, ''].join('\n'));
    });
  }

  /** Asks ExifTool to finish; resolves when it has gone. */
  close(): Promise<void> {
    const child = this.child;
    if (!child) return Promise.resolve();
    this.setRef(true); // whoever awaits this is kept waiting until it has gone
    this.child = null;
    return new Promise((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      t.unref();
      child.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      child.stdin.end('-stay_open\nFalse\n');
    });
  }
}

const stayOpen = new StayOpen();
let mode: 'untried' | 'on' | 'off' = 'untried';
let queue: Promise<unknown> = Promise.resolve();

/** Starts the persistent process and checks it answers; false (said once) when it cannot. */
async function ensureStayOpen(): Promise<boolean> {
  if (mode === 'on') return true;
  if (mode === 'off') return false;
  try {
    const r = await stayOpen.request(['-ver'], { timeoutMs: 60_000 });
    if (r.status !== 0 || !/^\d+\.\d+/.test(r.stdout.toString('utf8'))) throw new Error(`unexpected answer: ${r.stdout.toString('utf8').slice(0, 80)}`);
    mode = 'on';
  } catch (err) {
    mode = 'off';
    await stayOpen.close().catch(() => {});
    process.stderr.write(`kluis: exiftool batch mode (-stay_open) could not start (${(err as Error).message}); starting exiftool once per file instead\n`);
  }
  return mode === 'on';
}

/**
 * `exiftool OPTIONS -- FILE`: through the persistent process when the file and options allow it
 * (see the module comment), otherwise as its own process. Requests are served one at a time.
 */
export function exiftool(options: readonly string[], file: string, limits: ExiftoolLimits = {}): Promise<ExiftoolOutput> {
  if (!stayOpenEligible(options, file)) return exiftoolOneShot(options, file, limits);
  const run = async (): Promise<ExiftoolOutput> => {
    if (!(await ensureStayOpen())) return exiftoolOneShot(options, file, limits);
    try {
      return await stayOpen.request([...options, file], limits);
    } catch (err) {
      // It died under this request (killed, crashed, or dead before the request reached it): the
      // request is answered by a one-shot run, so its answer or error is ExifTool's own; the next
      // request starts a new persistent process. A timeout is not run again.
      if (err instanceof KluisError && err.code === 'E_SANITIZE_TOOL_DIED') return exiftoolOneShot(options, file, limits);
      throw err;
    }
  };
  const result = queue.then(run, run);
  queue = result.catch(() => {});
  return result;
}

/** The persistent process's pid, if one runs (for tests and diagnostics). */
export function exiftoolStayOpenPid(): number | undefined {
  return stayOpen.pid;
}

/** Ends the persistent process (it starts again on the next request). */
export async function closeExiftool(): Promise<void> {
  await queue;
  await stayOpen.close();
}
