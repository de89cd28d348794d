/**
 * The one place in kluis that starts ffmpeg and ffprobe (see docs/adr/0001). Promises:
 * - arguments go to the binary as an argv array, never through a shell;
 * - stdout is streamed to the caller (chunks or lines) or ignored, never buffered without a cap;
 *   stderr keeps only its last few KiB, so memory stays bounded however long the child runs;
 * - a non-zero exit, a signal, a missing binary or the safety timeout becomes a KluisError
 *   (E_SANITIZE_TOOL_*) carrying the tail of stderr; the child is killed on timeout and on abort.
 * It never decides anything about the media: callers (the sanitize stage) hold the decisions.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { KluisError } from '../errors.js';
import { asBackgroundWork } from './priority.js';
import { runInSpawner } from './spawner.js';

export interface RunOptions {
  /** Which binary; default ffmpeg. */
  bin?: 'ffmpeg' | 'ffprobe';
  /** Called with every stdout chunk, in order. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with every complete stdout line (without the newline), in order. */
  onLine?: (line: string) => void;
  /** Collect stdout and return it; fails with E_SANITIZE_TOOL_OUTPUT past this many bytes. */
  collectStdout?: number;
  /** Safety net against a hung child, not a way to decide anything. Default 10 minutes. */
  timeoutMs?: number;
  /** Bytes of stderr kept for error messages (the tail). Default 8 KiB. */
  stderrTail?: number;
  /** Aborting kills the child and rejects. */
  signal?: AbortSignal;
  /** Extra output pipes opened as fds 3, 4, … (ffmpeg writes to them as `pipe:3`, …). */
  extraOutputs?: number;
  /**
   * Called with every chunk of extra output `n` (0 for fd 3), in order; `pipe` may be paused and
   * resumed by the caller for back-pressure. A throw kills the child and rejects.
   */
  onExtra?: (n: number, chunk: Buffer, pipe: Readable) => void;
}

export interface RunResult {
  /** The collected stdout when `collectStdout` was set, else an empty buffer. */
  stdout: Buffer;
  /** The last `stderrTail` bytes of stderr. */
  stderr: string;
}

const DEFAULT_TIMEOUT = 10 * 60_000;

const timeoutError = (bin: string, timeoutMs: number, args: readonly string[]): KluisError =>
  new KluisError('E_SANITIZE_TOOL_TIMEOUT', `${bin} did not finish within ${Math.round(timeoutMs / 1000)} s`, {
    hint: 'the file may be damaged or the disk very slow; check the file with ffprobe and try again',
    details: { args: [...args] },
  });

const abortedError = (bin: string): KluisError => new KluisError('E_SANITIZE_TOOL_ABORTED', `${bin} was stopped`, { hint: 'the run was cancelled' });

const tooMuchOutput = (bin: string, cap: number): KluisError =>
  new KluisError('E_SANITIZE_TOOL_OUTPUT', `${bin} printed more than ${cap} bytes`, {
    hint: 'the file carries far more structure than expected; it is refused to keep memory bounded',
  });

const startError = (bin: string, err: { code?: string | null; message: string; cause?: unknown }): KluisError =>
  err.code === 'ENOENT'
    ? new KluisError('E_SANITIZE_TOOL_MISSING', `${bin} is not installed (not found on PATH)`, { hint: 'install it: sudo apt-get install ffmpeg', cause: err.cause })
    : new KluisError('E_SANITIZE_TOOL_FAILED', `could not start ${bin}: ${err.message}`, { cause: err.cause });

function exitError(bin: string, code: number | null, sig: NodeJS.Signals | null, stderr: string, args: readonly string[]): KluisError {
  const tail = lastLines(stderr, 6);
  return new KluisError('E_SANITIZE_TOOL_FAILED', `${bin} failed (${sig ? `signal ${sig}` : `exit ${code}`})${tail ? `: ${tail}` : ''}`, {
    hint: 'the file is probably damaged or not a format kluis can read',
    details: { args: [...args], stderr: tail },
  });
}

/**
 * Runs ffmpeg (or ffprobe) with `args` and streams its output as asked. A run that only collects
 * its stdout (the proofs of every video file) goes through the thread's spawner process
 * (spawner.ts) where there is one.
 */
export async function runFfmpeg(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const bin = opts.bin ?? 'ffmpeg';
  const argv = bin === 'ffmpeg' ? ['-nostdin', '-hide_banner', ...args] : ['-hide_banner', ...args];
  const tailMax = opts.stderrTail ?? 8192;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT;
  if (opts.collectStdout !== undefined && !opts.onStdout && !opts.onLine && !opts.extraOutputs && !opts.signal?.aborted) {
    const r = await runInSpawner(bin, argv, { collectStdout: opts.collectStdout, stderrTail: tailMax, timeoutMs, signal: opts.signal });
    if (r) {
      switch (r.outcome) {
        case 'exit':
          if (r.code === 0) return { stdout: r.stdout, stderr: r.stderr };
          throw exitError(bin, r.code, r.signal, r.stderr, args);
        case 'timeout':
          throw timeoutError(bin, timeoutMs, args);
        case 'output':
          throw tooMuchOutput(bin, opts.collectStdout);
        case 'killed':
          throw abortedError(bin);
        case 'spawn':
          throw startError(bin, { code: r.errno ?? null, message: r.message ?? 'unknown error' });
      }
    }
  }
  return runHere(bin, argv, args, opts, tailMax, timeoutMs);
}

/** runFfmpeg, with the tool started by this process. */
function runHere(bin: string, argv: string[], args: readonly string[], opts: RunOptions, tailMax: number, timeoutMs: number): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    let settled = false;
    let stderrTail = Buffer.alloc(0);
    const collected: Buffer[] = [];
    let collectedBytes = 0;
    let pendingLine = '';
    let failure: KluisError | null = null;

    const extra = opts.extraOutputs ?? 0;
    const child = spawn(bin, argv, {
      stdio: ['ignore', 'pipe', 'pipe', ...Array.from({ length: extra }, () => 'pipe' as const)],
      windowsHide: true,
    });
    asBackgroundWork(child);

    const extraPipes = (): Readable[] =>
      Array.from({ length: extra }, (_, n) => child.stdio[3 + n] as Readable | null | undefined).filter(
        (p): p is Readable => p != null,
      );
    const kill = (why: KluisError): void => {
      if (failure === null) failure = why;
      child.kill('SIGKILL');
      // A pipe paused by the caller would never end, and 'close' would never come.
      for (const p of extraPipes()) p.resume();
    };

    const timer = setTimeout(() => kill(timeoutError(bin, timeoutMs, args)), timeoutMs);
    timer.unref();

    const onAbort = (): void => kill(abortedError(bin));
    if (opts.signal) {
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener('abort', onAbort, { once: true });
    }

    (child.stdout as Readable).on('data', (chunk: Buffer) => {
      if (failure) return;
      try {
        opts.onStdout?.(chunk);
        if (opts.onLine) {
          const text = pendingLine + chunk.toString('utf8');
          const lines = text.split('\n');
          pendingLine = lines.pop() ?? '';
          if (pendingLine.length > 1 << 20) throw new KluisError('E_SANITIZE_TOOL_OUTPUT', `${bin} printed a line longer than 1 MiB`);
          for (const l of lines) opts.onLine(l.endsWith('\r') ? l.slice(0, -1) : l);
        }
        if (opts.collectStdout !== undefined) {
          collectedBytes += chunk.length;
          if (collectedBytes > opts.collectStdout) throw tooMuchOutput(bin, opts.collectStdout);
          collected.push(chunk);
        }
      } catch (err) {
        kill(
          err instanceof KluisError
            ? err
            : new KluisError('E_SANITIZE_TOOL_OUTPUT', `could not read ${bin} output: ${String(err)}`, { cause: err }),
        );
      }
    });

    // Once the child has exited nothing more can unblock a paused pipe: drain what is left
    // through the caller, who decides whether it adds up.
    let exited = false;
    child.on('exit', () => {
      exited = true;
      for (const p of extraPipes()) p.resume();
    });
    for (let n = 0; n < extra; n++) {
      const pipe = child.stdio[3 + n] as Readable | null | undefined;
      if (!pipe) continue;
      pipe.on('data', (chunk: Buffer) => {
        if (failure) return;
        try {
          opts.onExtra?.(n, chunk, pipe);
          if (exited) pipe.resume();
        } catch (err) {
          kill(
            err instanceof KluisError
              ? err
              : new KluisError('E_SANITIZE_TOOL_OUTPUT', `could not read ${bin} output: ${String(err)}`, { cause: err }),
          );
        }
      });
      // A read error on an extra pipe is reported through the child's exit; never left unhandled.
      pipe.on('error', (err) => kill(new KluisError('E_SANITIZE_TOOL_OUTPUT', `could not read ${bin} output: ${err.message}`, { cause: err })));
    }

    (child.stderr as Readable).on('data', (chunk: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, chunk]);
      if (stderrTail.length > tailMax) stderrTail = stderrTail.subarray(stderrTail.length - tailMax);
    });

    const finish = (err: KluisError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve({ stdout: Buffer.concat(collected), stderr: stderrTail.toString('utf8') });
    };

    child.on('error', (err: NodeJS.ErrnoException) => finish(startError(bin, { code: err.code ?? null, message: err.message, cause: err })));

    child.on('close', (code, sig) => {
      if (failure) return finish(failure);
      if (opts.onLine && pendingLine.length > 0) {
        try {
          opts.onLine(pendingLine);
        } catch (err) {
          return finish(
            err instanceof KluisError ? err : new KluisError('E_SANITIZE_TOOL_OUTPUT', String(err), { cause: err }),
          );
        }
      }
      if (code === 0) return finish(null);
      finish(exitError(bin, code, sig, stderrTail.toString('utf8'), args));
    });
  });
}

/**
 * The input arguments for a local file: only the file protocol is allowed (a name like
 * "http://…" or "concat:…" is never interpreted as a protocol), and the name is absolute.
 */
export function inputArgs(file: string): string[] {
  return ['-protocol_whitelist', 'file', '-i', `file:${path.resolve(file)}`];
}

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-n)
    .join(' | ');
}

export interface ProbeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  codec_tag_string?: string;
  disposition?: Record<string, number>;
  tags?: Record<string, string>;
  [k: string]: unknown;
}

export interface ProbeResult {
  streams: ProbeStream[];
  format?: { format_name?: string; tags?: Record<string, string>; [k: string]: unknown };
  chapters?: unknown[];
  [k: string]: unknown;
}

/** ffprobe's JSON description of `file` (streams, format, chapters). Output capped at 16 MiB. */
export async function ffprobeJson(file: string, opts: { timeoutMs?: number } = {}): Promise<ProbeResult> {
  const { stdout } = await runFfmpeg(
    ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', '-show_chapters', ...inputArgs(file)],
    { bin: 'ffprobe', collectStdout: 16 << 20, timeoutMs: opts.timeoutMs ?? 120_000 },
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout.toString('utf8'));
  } catch (err) {
    throw new KluisError('E_SANITIZE_TOOL_OUTPUT', 'ffprobe printed something that is not JSON', { cause: err });
  }
  const p = parsed as ProbeResult;
  if (!p || typeof p !== 'object' || !Array.isArray(p.streams)) {
    throw new KluisError('E_SANITIZE_TOOL_OUTPUT', 'ffprobe found no stream list in the file', {
      hint: 'the file is probably not a video kluis can read',
    });
  }
  return p;
}

/** The ffmpeg version line (e.g. "ffmpeg version 5.1.9-0+deb12u1"), for audit records. */
export async function ffmpegVersion(): Promise<string> {
  const { stdout } = await runFfmpeg(['-version'], { collectStdout: 1 << 16, timeoutMs: 30_000 });
  return stdout.toString('utf8').split('\n')[0]?.trim() ?? 'unknown';
}
