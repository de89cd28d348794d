/**
 * The outside readers of a sanitized MP4/MOV that kluis's rewriter wrote. None of them reads the
 * whole output. While the output streams out, the first bytes (ftyp, moov, and the mdat up to just
 * past the first video keyframe) are written to a "prefix" file in the scratch folder. Then:
 * - ExifTool (the persistent process) reads the prefix: the same boxes, header and first samples
 *   as the real output, so it sees every tag the real file carries. Its one warning that the
 *   mdat runs on past the end by exactly the bytes not in the prefix is expected, and only that
 *   one (./exiftool.ts). (A full-size copy with a zero-filled hole gave the same tags, but with
 *   -ee ExifTool then walked every sample of the hole: about a CPU second per 20 MB clip.)
 * - mp4box.js (GPAC's parser, in this thread) reads the movie header the output starts with:
 *   tracks, codecs, handler names and every box, against what was kept (./movie-check.ts). It
 *   took ffprobe's place here: the same questions without a child process per file.
 * - ffmpeg decodes the first picture of the prefix (the first sound for a file without picture):
 *   the one reduced-scale decode that shows the output decodes at all, and the thumbnail.
 * A finding is returned; a tool that fails is a KluisError, never a pass. The scratch files are
 * deleted by `dispose`, whatever happened.
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import sharp from 'sharp';
import { KluisError } from '../../errors.js';
import { inputArgs, runFfmpeg } from '../../wrappers/ffmpeg.js';
import { readMovieHeader } from '../../wrappers/mp4box.js';
import { exiftoolFindings } from './exiftool.js';
import { movieFindings } from './movie-check.js';
import type { TrackKind } from './rules.js';

// Every preview is of a different file: libvips's operation cache would only hold memory.
sharp.cache(false);

export interface ToolFindings {
  exiftool: string[];
  mp4box: string[];
  /** The decoded first picture as a JPEG (longest side `maxEdge`), null for a file without picture. */
  thumbnail: Buffer | null;
}

export interface OutputReadersOptions {
  scratchDir: string;
  format: 'mp4' | 'mov';
  /** The whole output's size. */
  size: number;
  /** Where the output's mdat payload starts. */
  mdatPayloadStart: number;
  /** The output's bytes before the mdat payload (ftyp, moov, the mdat header). */
  head: Uint8Array;
  /** How many leading output bytes the prefix holds (ends on a chunk boundary). */
  prefixEnd: number;
  kept: ReadonlyArray<{ kind: TrackKind; codec: string }>;
  needles: readonly string[];
  maxEdge: number;
}

/**
 * Collects the output's first bytes as they stream (`write`), then runs the three readers
 * (`start`, called once the prefix is complete, which `write` does itself) while the rest streams.
 */
export class OutputReaders {
  private readonly prefixPath: string;
  private fh: fsp.FileHandle | undefined;
  private written = 0;
  private running: Promise<ToolFindings> | undefined;

  constructor(private readonly o: OutputReadersOptions) {
    const id = `kluis-${process.pid}-${randomBytes(6).toString('hex')}`;
    // Absolute, so the persistent ExifTool takes it (it refuses relative names).
    this.prefixPath = path.resolve(o.scratchDir, `${id}.prefix.${o.format}`);
  }

  /** Takes output bytes at `position` (in order); keeps those below prefixEnd. */
  async write(position: number, bytes: Uint8Array): Promise<void> {
    if (this.running || position >= this.o.prefixEnd) return;
    if (position !== this.written) throw new KluisError('E_INTERNAL', `output bytes came out of order (${position}, expected ${this.written})`);
    this.fh ??= await fsp.open(this.prefixPath, 'wx', 0o600);
    const n = Math.min(bytes.length, this.o.prefixEnd - position);
    let done = 0;
    while (done < n) done += (await this.fh.write(bytes, done, n - done, position + done)).bytesWritten;
    this.written += n;
    if (this.written === this.o.prefixEnd) this.begin();
  }

  private begin(): void {
    const run = async (): Promise<ToolFindings> => {
      await this.fh?.close();
      this.fh = undefined;
      // In this thread and quick: before the two tools start, so a failure here starts neither.
      const movie = movieFindings(readMovieHeader(this.o.head), this.o.kept, this.o.needles);
      const [exiftool, thumbnail] = await Promise.all([
        exiftoolFindings(this.prefixPath, this.o.needles, { missingBytes: this.o.size - this.o.prefixEnd, mdatPayloadStart: this.o.mdatPayloadStart }),
        this.decodeFirst(),
      ]);
      return { exiftool, mp4box: movie, thumbnail };
    };
    this.running = run();
    this.running.catch(() => undefined); // awaited in `result`; never an unhandled rejection
  }

  /** The readers' findings; starts them if the prefix is the whole output. */
  result(): Promise<ToolFindings> {
    if (!this.running) {
      if (this.written !== this.o.prefixEnd) {
        return Promise.reject(new KluisError('E_INTERNAL', `the output prefix for the checks is ${this.written} of ${this.o.prefixEnd} bytes`));
      }
      this.begin();
    }
    return this.running!;
  }

  private async decodeFirst(): Promise<Buffer | null> {
    const video = this.o.kept.some((k) => k.kind === 'video');
    const e = this.o.maxEdge;
    const args = video
      ? ['-v', 'error', '-threads', '1', ...inputArgs(this.prefixPath), '-map', '0:v:0', '-frames:v', '1',
        '-vf', `scale=${e}:${e}:force_original_aspect_ratio=decrease`, '-f', 'image2pipe', '-c:v', 'png', 'pipe:1']
      : ['-v', 'error', '-threads', '1', ...inputArgs(this.prefixPath), '-map', '0:a:0', '-t', '0.5', '-ac', '1', '-f', 's16le', 'pipe:1'];
    const { stdout } = await runFfmpeg(args, { collectStdout: 16 << 20, timeoutMs: 120_000 });
    if (stdout.length === 0) {
      throw new KluisError('E_SANITIZE_DECODE', `the sanitized file's first ${video ? 'picture' : 'sound'} does not decode`, {
        hint: 'the output would not play; the file is not stored (the original is kept sealed)',
      });
    }
    if (!video) return null;
    return sharp(stdout).jpeg({ quality: 75 }).toBuffer();
  }

  /** Removes the scratch files (after the readers finished, whatever their outcome). */
  async dispose(): Promise<void> {
    if (this.running) await this.running.catch(() => undefined);
    await this.fh?.close().catch(() => undefined);
    await fsp.rm(this.prefixPath, { force: true });
  }
}
