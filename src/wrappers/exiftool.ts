/**
 * The one place in kluis that starts ExifTool. Promises:
 * - `exiftool(options, file)` returns what `exiftool OPTIONS -- FILE` run on its own would print
 *   (stdout bytes, stderr tail, exit status): the same options, the same reader, the same JSON;
 * - the ExifTool is the one the npm package exiftool-vendored.pl ships (a current 13.x, pinned in
 *   package-lock.json, run by the system's perl), for the persistent process and the one-shot runs
 *   alike, with the same minimal environment (no HOME, so no user config file changes what it
 *   reports); Debian's older ExifTool on PATH is never used;
 * - one persistent ExifTool per kluis process (`-stay_open True -@ -`), managed by
 *   exiftool-vendored's process pool (batch-cluster): started on first use, serving one request at
 *   a time, started again after it died, recycled now and then, killed when node exits, and never
 *   keeping node alive while idle (pool, streams and timers are unref'd; on Linux it is also
 *   started under `setpriv --pdeathsig KILL`, so it goes with a node that is SIGKILLed);
 * - every ExifTool it starts runs at low CPU priority (wrappers/priority.ts);
 * - a file is handed to the persistent ExifTool only when it is an absolute path with no CR/LF
 *   (an argument file has one argument per line and ExifTool's `--` would also swallow the
 *   `-execute` that ends a request, so the path itself must be unable to read as an option or a
 *   second line); any other name, and every request after the persistent mode failed to start,
 *   runs as a one-shot `exiftool OPTIONS -- FILE` (said once on stderr when the mode is off);
 * - a request's end is found by markers with a random id per request (ExifTool's `-echo3`/`-echo4`,
 *   printed after the command's output, with its exit status), so no file content can end a
 *   request early or leak into the next; stdout is kept as bytes, never re-decoded;
 * - a request the persistent process dies under is answered by a one-shot run (ExifTool's own
 *   answer or error);
 * - a per-request timeout is a safety net: the child is killed (and restarted by the next request)
 *   and the request fails with E_SANITIZE_TOOL_TIMEOUT; stdout is capped (`truncated` says so);
 * - a failure is a KluisError (E_SANITIZE_TOOL_*), never an empty answer.
 * It never decides anything about what ExifTool reports: callers hold the decisions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { ExifTool, ExifToolTask } from 'exiftool-vendored';
import { KluisError } from '../errors.js';
import { asBackgroundWork } from './priority.js';
import { notice } from '../util/notices.js';

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
const INSTALL_HINT = 'install perl (apt-get install perl) and run `npm ci` (ExifTool comes with the npm package exiftool-vendored.pl); kluis needs it to re-read sanitized files';

function missing(what: string, cause?: unknown): KluisError {
  return new KluisError('E_SANITIZE_TOOL_MISSING', `exiftool cannot run: ${what}`, { hint: INSTALL_HINT, cause });
}

function timedOut(ms: number): KluisError {
  return new KluisError('E_SANITIZE_TOOL_TIMEOUT', `exiftool did not finish within ${Math.round(ms / 1000)} s`, {
    hint: 'the file could not be checked, so it is withheld',
  });
}

/** The ExifTool script exiftool-vendored.pl ships, or undefined when the package is absent. */
function vendoredScript(): string | undefined {
  try {
    const p = createRequire(import.meta.url)('exiftool-vendored.pl') as unknown;
    return typeof p === 'string' && existsSync(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

/** `perl` as an absolute path from PATH, or undefined. */
function findPerl(): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, 'perl');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const SCRIPT = vendoredScript();
const PERL = findPerl();
/** The environment every ExifTool gets: nothing that changes what it reports (no HOME, no config). */
const ENV: NodeJS.ProcessEnv = { LANG: 'C' };
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => process.platform === 'linux' && existsSync(p));

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
  if (!SCRIPT) return Promise.reject(missing('the package exiftool-vendored.pl is not installed'));
  if (!PERL) return Promise.reject(missing('perl is not installed (not found on PATH)'));
  return new Promise((resolve, reject) => {
    const child = spawn(PERL, [SCRIPT, ...options, '--', file], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
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
      reject(e.code === 'ENOENT' ? missing('perl could not be started', e) : new KluisError('E_SANITIZE_TOOL_FAILED', `could not start exiftool: ${e.message}`, { cause: e }));
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

/** The persistent process as exiftool-vendored starts it, under our own factory (priority, pdeathsig, env). */
function startStayOpen(): ChildProcess {
  const args = [PERL!, SCRIPT!, '-stay_open', 'True', '-@', '-'];
  const child = SETPRIV
    ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', ...args], { stdio: 'pipe', env: ENV })
    : spawn(args[0]!, args.slice(1), { stdio: 'pipe', env: ENV });
  asBackgroundWork(child);
  return child;
}

type RawTaskClass = new (lines: readonly string[], max: number, onStart: () => void) => ExifToolTask<ExiftoolOutput>;

/**
 * One request as an exiftool-vendored task. The pool's own "{ready}" detection would end a request
 * at any "{ready}" in a file's tags and decodes stdout chunk by chunk, so this task keeps the bytes
 * itself and tells the pool it is done only when both of its own markers have come: stdout ends
 * with `{kluis-end<id> <status>}` followed by ExifTool's `{ready}`, and stderr ends with
 * `{kluis-end<id>}` (the two pipes arrive in either order).
 */
function rawTaskClass(Base: typeof ExifToolTask): RawTaskClass {
  return class RawTask extends Base<ExiftoolOutput> {
    readonly #id: string;
    readonly #max: number;
    readonly #out: Buffer[] = [];
    #bytes = 0;
    #outTail = '';
    #err = Buffer.alloc(0);
    #status: number | undefined;
    #stderrDone = false;
    #told = false;
    readonly #started: () => void;

    constructor(lines: readonly string[], max: number, onStart: () => void) {
      const id = randomBytes(8).toString('hex');
      super([...lines, '-echo3', `{kluis-end${id} \${status}}`, '-echo4', `{kluis-end${id}}`]);
      this.#id = id;
      this.#max = max;
      this.#started = onStart;
    }

    /** The pool hands the request to ExifTool now (time spent waiting in its queue is not counted). */
    override onStart(...args: Parameters<ExifToolTask<ExiftoolOutput>['onStart']>): void {
      super.onStart(...args);
      this.#started();
    }

    override onStdout(buf: string | Buffer): void {
      const c = typeof buf === 'string' ? Buffer.from(buf, 'utf8') : buf;
      this.#bytes += c.length;
      if (this.#bytes <= this.#max + 128) this.#out.push(c); // + room for the end markers, cut off below
      this.#outTail = (this.#outTail + c.toString('latin1')).slice(-128);
      const m = new RegExp(`\\{kluis-end${this.#id} (\\d+)\\}\\n\\{ready\\}\\n$`).exec(this.#outTail);
      if (m) this.#status = Number(m[1]);
      this.#settle();
    }

    override onStderr(buf: string | Buffer): void {
      const c = typeof buf === 'string' ? Buffer.from(buf, 'utf8') : buf;
      this.#err = Buffer.concat([this.#err, c]);
      if (this.#err.length > STDERR_TAIL * 2) this.#err = this.#err.subarray(-STDERR_TAIL * 2);
      const marker = `{kluis-end${this.#id}}\n`;
      if (this.#err.subarray(-marker.length).toString('latin1') === marker) {
        this.#err = this.#err.subarray(0, this.#err.length - marker.length);
        this.#stderrDone = true;
      }
      this.#settle();
    }

    #settle(): void {
      if (this.#told || this.#status === undefined || !this.#stderrDone) return;
      this.#told = true;
      super.onStdout('{ready}'); // the pool's token: it now hands the task to parse()
    }

    protected parse(): ExiftoolOutput {
      const tail = Buffer.byteLength(this.#outTail.slice(this.#outTail.lastIndexOf(`{kluis-end${this.#id} `)), 'latin1');
      const bytes = this.#bytes - tail;
      const truncated = bytes > this.#max;
      const stdout = Buffer.concat(this.#out).subarray(0, truncated ? this.#max : bytes);
      const stderr = this.#err.toString('utf8').slice(-STDERR_TAIL);
      return { stdout, stdoutBytes: bytes, truncated, stderr, status: this.#status!, via: 'stay-open' };
    }
  };
}

interface Pool {
  et: ExifTool;
  Task: RawTaskClass;
}

let pool: Pool | null = null;
let mode: 'untried' | 'on' | 'off' = 'untried';
let probing: Promise<boolean> | null = null;
const inFlight = new Set<Promise<unknown>>();

async function getPool(): Promise<Pool> {
  if (pool && !pool.et.ended) return pool;
  const lib = await import('exiftool-vendored');
  if (pool && !pool.et.ended) return pool; // another request made it meanwhile
  const et = new lib.ExifTool({
    maxProcs: 1,
    taskRetries: 0, // a request it dies under is answered by a one-shot run instead (see exiftool())
    taskTimeoutMillis: 0, // our own per-request timeout (see request())
    checkPerl: false,
    processFactory: startStayOpen,
  });
  pool = { et, Task: rawTaskClass(lib.ExifToolTask) };
  return pool;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(timedOut(ms));
    }, ms);
    timer.unref();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** Starts the persistent process and checks it answers; false (said once) when it cannot. */
function ensureStayOpen(): Promise<boolean> {
  if (mode === 'on') return Promise.resolve(true);
  if (mode === 'off') return Promise.resolve(false);
  probing ??= (async () => {
    try {
      if (!SCRIPT || !PERL) throw new Error(!SCRIPT ? 'exiftool-vendored.pl is not installed' : 'perl is not on PATH');
      const { et } = await getPool();
      const ver = await withTimeout(et.version(), 60_000, () => void et.closeChildProcesses(false).catch(() => {}));
      if (!/^\d+\.\d+/.test(ver)) throw new Error(`unexpected answer: ${ver.slice(0, 80)}`);
      mode = 'on';
    } catch (err) {
      mode = 'off';
      const p = pool;
      pool = null;
      await p?.et.end(false).catch(() => {});
      notice('W_EXIFTOOL_PER_FILE', `exiftool batch mode (-stay_open) could not start (${(err as Error).message}); starting exiftool once per file instead`);
    }
    return mode === 'on';
  })();
  return probing;
}

async function request(options: readonly string[], file: string, limits: ExiftoolLimits): Promise<ExiftoolOutput> {
  const { et, Task } = await getPool();
  const max = limits.maxStdoutBytes ?? DEFAULT_MAX;
  const ms = limits.timeoutMs ?? DEFAULT_TIMEOUT;
  return new Promise<ExiftoolOutput>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    // The timeout counts from when ExifTool gets the request. When it fires, the child is killed
    // (the pool starts a new one for the next request) and this request fails.
    const started = (): void => {
      timer = setTimeout(() => {
        reject(timedOut(ms));
        void et.closeChildProcesses(false).catch(() => {});
      }, ms);
      timer.unref();
    };
    et.enqueueTask(() => new Task([...options, file], max, started), false).then(
      (out) => {
        clearTimeout(timer);
        resolve(out);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
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
      return await request(options, file, limits);
    } catch (err) {
      // It died under this request (killed, crashed, ended, or dead before the request reached it):
      // the request is answered by a one-shot run, so its answer or error is ExifTool's own; the
      // next request starts a new persistent process. A timeout is not run again.
      if (err instanceof KluisError && err.code === 'E_SANITIZE_TOOL_TIMEOUT') throw err;
      return exiftoolOneShot(options, file, limits);
    }
  };
  const result = run();
  const settled = result.catch(() => {});
  inFlight.add(settled);
  void settled.then(() => inFlight.delete(settled));
  return result;
}

/** The persistent process's pid, if one runs (for tests and diagnostics). */
export function exiftoolStayOpenPid(): number | undefined {
  return pool && !pool.et.ended ? pool.et.pids[0] : undefined;
}

/** Ends the persistent process (it starts again on the next request). */
export async function closeExiftool(): Promise<void> {
  await Promise.all([...inFlight]);
  const p = pool;
  pool = null;
  if (p) await p.et.end(true);
}
