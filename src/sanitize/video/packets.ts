/**
 * The per-packet hashes the video essence proof compares (ffmpeg-copy.ts): size and SHA-256 of
 * every packet of the chosen streams, in demux order, exactly as ffmpeg demuxes them (stream copy,
 * never a decode). Two ways to the same values: `packetHashes` takes ffmpeg's own `framehash`
 * SHA-256; `packetHashesInNode` has ffmpeg hand over the packet bytes and their Adler-32 and does
 * the SHA-256 in node (faster), failing rather than passing when the two outputs do not add up.
 * test/integration/packet-hash.test.ts holds them equal.
 *
 * ffmpeg is started through the wrapper (src/wrappers/ffmpeg.ts); what its output means, and
 * when it does not add up, is decided here. Every such failure is E_SANITIZE_TOOL_OUTPUT.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createAdler32, type IHasher } from 'hash-wasm';
import { KluisError } from '../../errors.js';
import { inputArgs, runFfmpeg } from '../../wrappers/ffmpeg.js';

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
