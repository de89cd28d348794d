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
import { createHash, type Hash } from 'node:crypto';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { createAdler32, type IHasher } from 'hash-wasm';
import { KluisError } from '../errors.js';
import { asBackgroundWork } from './priority.js';

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
 * The same per-packet values as `packetHashes` (size and SHA-256 of the packet bytes, in demux
 * order per stream), with the SHA-256 done in node (OpenSSL) instead of ffmpeg's slower one. One
 * ffmpeg process stream-copies each mapped stream twice: to `framehash -hash adler32` (one flushed
 * line per packet: its size, Adler-32 and side data) and to the raw `data` muxer (the packet
 * payloads back to back). Node cuts the payload stream at the sizes, hashes each packet and
 * checks its Adler-32 against ffmpeg's, so a cut in the wrong place fails rather than passing.
 * A packet that carries side data (e.g. AAC priming, "skip samples") cannot be hashed here, as
 * ffmpeg only gives the side data's Adler-32: its stream is listed in the returned `sideData` (by
 * position in `maps`) and the caller must take that whole stream's values from `packetHashes`.
 * `onPacket` may already have been called for earlier packets of such a stream. Anything that
 * does not add up (a malformed line, bytes without a line, a line without bytes, a checksum mismatch)
 * throws E_SANITIZE_TOOL_OUTPUT. Memory: at most ~16 MiB of payload waits for its line.
 */
export async function packetHashesInNode(
  file: string,
  maps: readonly string[],
  onPacket: (p: { stream: number; size: number; sha256: string }) => void,
  opts: { timeoutMs?: number } = {},
): Promise<{ sideData: number[] }> {
  const args = ['-v', 'error', '-xerror', ...inputArgs(file)];
  // Per stream: the line output first, so ffmpeg writes (and flushes) a packet's line before its
  // bytes; node may then wait for a line with the bytes' pipe paused without deadlock.
  maps.forEach((m, i) => {
    args.push('-map', m, '-c', 'copy', '-flush_packets', '1', '-f', 'framehash', '-hash', 'adler32', `pipe:${3 + 2 * i}`);
    args.push('-map', m, '-c', 'copy', '-f', 'data', `pipe:${4 + 2 * i}`);
  });
  const cutters = await Promise.all(
    maps.map(
      async (_, i) =>
        new PacketCutter((p) => onPacket({ stream: i, size: p.size, sha256: p.sha256 }), `stream ${i}`, await createAdler32()),
    ),
  );
  const dataPipes: Array<Readable | null> = maps.map(() => null);
  await runFfmpeg(args, {
    timeoutMs: opts.timeoutMs,
    extraOutputs: 2 * maps.length,
    onExtra: (n, chunk, pipe) => {
      const i = n >> 1;
      const c = cutters[i];
      if (!c) throw new KluisError('E_SANITIZE_TOOL_OUTPUT', `ffmpeg wrote to unexpected pipe ${n}`);
      if (n % 2 === 0) c.lines(chunk);
      else {
        dataPipes[i] = pipe;
        c.data(chunk);
      }
      const dp = dataPipes[i];
      if (dp) {
        if (c.waiting >= PacketCutter.PAUSE_AT) dp.pause();
        else dp.resume();
      }
    },
  });
  const sideData: number[] = [];
  cutters.forEach((c, i) => {
    c.end();
    if (c.sideData) sideData.push(i);
  });
  return { sideData };
}

/**
 * Cuts one stream's packet payloads (the `data` muxer's output) at the sizes of its `framehash
 * -hash adler32` lines, hashes each packet with SHA-256 and checks its Adler-32. Exported for tests.
 * Once a packet with side data is seen, `sideData` is set and no more packets are reported (the
 * caller must take the stream from ffmpeg's own framehash). Throws E_SANITIZE_TOOL_OUTPUT on a
 * malformed line, a checksum mismatch, or (at `end`) bytes and lines that do not match up.
 */
export class PacketCutter {
  /** Bytes waiting for their line above which the caller should pause the payload pipe. */
  static readonly PAUSE_AT = 16 << 20;
  private static readonly MAX_LINES = 1 << 20;
  private pendingText = '';
  private readonly queue: Array<{ size: number; sum: string; side: boolean }> = [];
  private readonly chunks: Buffer[] = [];
  private cur: { size: number; sum: string; left: number; sha: Hash | null } | null = null;
  /** Payload bytes received whose packet line has not come yet. */
  waiting = 0;
  sideData = false;

  constructor(
    private readonly onPacket: (p: { size: number; sha256: string }) => void,
    private readonly name: string,
    /** An Adler-32 hasher (hash-wasm), reused packet after packet: ffmpeg's cheapest framehash. */
    private readonly adler: IHasher,
  ) {}

  /** A chunk of the framehash text output. */
  lines(chunk: Buffer): void {
    const text = this.pendingText + chunk.toString('latin1');
    const lines = text.split('\n');
    this.pendingText = lines.pop() ?? '';
    if (this.pendingText.length > 1 << 16) throw this.bad('a framehash line longer than 64 KiB');
    for (const l of lines) this.line(l);
    this.pump();
  }

  /** A chunk of the payload output. */
  data(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.waiting += chunk.length;
    this.pump();
  }

  /** Both outputs have ended: everything must have matched up. */
  end(): void {
    if (this.pendingText.length > 0) this.line(this.pendingText);
    this.pendingText = '';
    this.pump();
    if (this.cur !== null || this.queue.length > 0) throw this.bad('ffmpeg listed packets whose bytes never came');
    if (this.waiting > 0) throw this.bad(`${this.waiting} bytes came that no packet line accounts for`);
  }

  private bad(what: string): KluisError {
    return new KluisError('E_SANITIZE_TOOL_OUTPUT', `the packet streams from ffmpeg do not add up (${this.name}): ${what}`, {
      hint: 'the file is not stored; report it so the packet reader can be reviewed',
    });
  }

  private line(line: string): void {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length === 0 || line.startsWith('#')) return;
    // "stream, dts, pts, duration, size, adler32[, S=n, size, adler32…]"; one stream per output.
    const cols = line.split(',').map((c) => c.trim());
    const size = Number(cols[4]);
    const sum = cols[5] ?? '';
    const side = cols.length > 6;
    if (
      cols.length < 6 || cols[0] !== '0' || !/^[0-9]+$/.test(cols[4] ?? '') || !Number.isSafeInteger(size) ||
      !/^[0-9a-f]{8}$/.test(sum) || (side && (!/^S=[1-9][0-9]*$/.test(cols[6] ?? '') || cols.length % 2 !== 1))
    ) {
      throw this.bad(`unexpected framehash line: ${line.slice(0, 120)}`);
    }
    if (this.queue.length >= PacketCutter.MAX_LINES) throw this.bad(`over ${PacketCutter.MAX_LINES} packet lines without their bytes`);
    this.queue.push({ size, sum, side });
  }

  private pump(): void {
    for (;;) {
      if (this.cur === null) {
        const l = this.queue.shift();
        if (!l) return;
        if (l.side) this.sideData = true;
        this.cur = { size: l.size, sum: l.sum, left: l.size, sha: this.sideData ? null : createHash('sha256') };
        this.adler.init();
      }
      const cur = this.cur;
      while (cur.left > 0) {
        const chunk = this.chunks[0];
        if (!chunk) return;
        const take = Math.min(cur.left, chunk.length);
        const part = take === chunk.length ? chunk : chunk.subarray(0, take);
        cur.sha?.update(part);
        this.adler.update(part);
        cur.left -= take;
        this.waiting -= take;
        if (take === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(take);
      }
      const hex = this.adler.digest('hex');
      if (hex !== cur.sum) throw this.bad(`a packet of ${cur.size} bytes has Adler-32 ${hex}, ffmpeg says ${cur.sum}`);
      this.cur = null;
      if (cur.sha) this.onPacket({ size: cur.size, sha256: cur.sha.digest('hex') });
    }
  }
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
