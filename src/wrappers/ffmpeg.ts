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
import { KluisError } from '../errors.js';

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
}

export interface RunResult {
  /** The collected stdout when `collectStdout` was set, else an empty buffer. */
  stdout: Buffer;
  /** The last `stderrTail` bytes of stderr. */
  stderr: string;
}

const DEFAULT_TIMEOUT = 10 * 60_000;

/** Runs ffmpeg (or ffprobe) with `args` and streams its output as asked. */
export function runFfmpeg(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const bin = opts.bin ?? 'ffmpeg';
  const tailMax = opts.stderrTail ?? 8192;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT;
  return new Promise<RunResult>((resolve, reject) => {
    let settled = false;
    let stderrTail = Buffer.alloc(0);
    const collected: Buffer[] = [];
    let collectedBytes = 0;
    let pendingLine = '';
    let failure: KluisError | null = null;

    const argv = bin === 'ffmpeg' ? ['-nostdin', '-hide_banner', ...args] : ['-hide_banner', ...args];
    const child = spawn(bin, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });

    const kill = (why: KluisError): void => {
      if (failure === null) failure = why;
      child.kill('SIGKILL');
    };

    const timer = setTimeout(() => {
      kill(
        new KluisError('E_SANITIZE_TOOL_TIMEOUT', `${bin} did not finish within ${Math.round(timeoutMs / 1000)} s`, {
          hint: 'the file may be damaged or the disk very slow; check the file with ffprobe and try again',
          details: { args: [...args] },
        }),
      );
    }, timeoutMs);
    timer.unref();

    const onAbort = (): void =>
      kill(new KluisError('E_SANITIZE_TOOL_ABORTED', `${bin} was stopped`, { hint: 'the run was cancelled' }));
    if (opts.signal) {
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener('abort', onAbort, { once: true });
    }

    child.stdout.on('data', (chunk: Buffer) => {
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
          if (collectedBytes > opts.collectStdout) {
            throw new KluisError('E_SANITIZE_TOOL_OUTPUT', `${bin} printed more than ${opts.collectStdout} bytes`, {
              hint: 'the file carries far more structure than expected; it is refused to keep memory bounded',
            });
          }
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

    child.stderr.on('data', (chunk: Buffer) => {
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

    child.on('error', (err: NodeJS.ErrnoException) => {
      finish(
        err.code === 'ENOENT'
          ? new KluisError('E_SANITIZE_TOOL_MISSING', `${bin} is not installed (not found on PATH)`, {
              hint: 'install it: sudo apt-get install ffmpeg',
              cause: err,
            })
          : new KluisError('E_SANITIZE_TOOL_FAILED', `could not start ${bin}: ${err.message}`, { cause: err }),
      );
    });

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
      const tail = lastLines(stderrTail.toString('utf8'), 6);
      finish(
        new KluisError(
          'E_SANITIZE_TOOL_FAILED',
          `${bin} failed (${sig ? `signal ${sig}` : `exit ${code}`})${tail ? `: ${tail}` : ''}`,
          { hint: 'the file is probably damaged or not a format kluis can read', details: { args: [...args], stderr: tail } },
        ),
      );
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

/**
 * Per-packet hashes of the chosen input streams, exactly as ffmpeg demuxes them (stream copy, no
 * decode): `framehash` lines "stream, dts, pts, duration, size, sha256[, side data…]"
 * (side data such as AAC priming "S=1, size, hash" is passed on as text). Each line is handed to
 * `onPacket`; nothing is buffered. `maps` are ffmpeg -map specifiers such as "0:3".
 */
export async function packetHashes(
  file: string,
  maps: readonly string[],
  onPacket: (p: { stream: number; size: number; sha256: string; sideData: string }) => void,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const args = ['-v', 'error', '-xerror', ...inputArgs(file)];
  for (const m of maps) args.push('-map', m);
  args.push('-c', 'copy', '-f', 'framehash', '-hash', 'sha256', '-');
  await runFfmpeg(args, {
    timeoutMs: opts.timeoutMs,
    onLine: (line) => {
      if (line.length === 0 || line.startsWith('#')) return;
      const cols = line.split(',').map((c) => c.trim());
      const stream = Number(cols[0]);
      const size = Number(cols[4]);
      const hash = cols[5] ?? '';
      if (cols.length < 6 || !Number.isInteger(stream) || !Number.isInteger(size) || !/^[0-9a-f]{64}$/.test(hash)) {
        throw new KluisError('E_SANITIZE_TOOL_OUTPUT', `unexpected framehash line from ffmpeg: ${line.slice(0, 120)}`);
      }
      onPacket({ stream, size, sha256: hash, sideData: cols.slice(6).join(',') });
    },
  });
}

/**
 * Decoded-frame hash of one image or video stream: sha256 over ffmpeg's `-f hash` of the decoded
 * pixels in their native pixel format. Useful to prove that picture content is unchanged where
 * the container bytes change (e.g. JPEG segment removal).
 */
export async function decodedHash(file: string, opts: { map?: string; timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await runFfmpeg(
    ['-v', 'error', '-xerror', ...inputArgs(file), '-map', opts.map ?? '0:v:0', '-f', 'hash', '-hash', 'sha256', '-'],
    { collectStdout: 4096, timeoutMs: opts.timeoutMs },
  );
  const m = /SHA256=([0-9a-f]{64})/.exec(stdout.toString('utf8'));
  if (!m || !m[1]) throw new KluisError('E_SANITIZE_TOOL_OUTPUT', 'ffmpeg printed no SHA256 hash');
  return m[1];
}
