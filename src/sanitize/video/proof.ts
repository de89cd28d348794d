/**
 * The essence of an MP4/MOV track, method `mp4-samples-sha256` (the track by its track_ID): one SHA-256 over
 *
 *   "kluis mp4-samples-sha256 v1\n", then for each part in this fixed order its 4-letter tag and
 *   either 0x00 (absent) or 0x01 + SHA-256 of the part:
 *   hdlr  handler type (vide/soun)
 *   mvhd  movie header fields a player reads: timescale (of the edit list), rate, volume, matrix
 *   tkhd  track header fields a player reads: flags, layer, alternate group, volume, matrix,
 *         width, height
 *   elst  edit list
 *   mdhd  media header fields: timescale (of every timing table), language
 *   stsd  sample descriptions as kept (./normalize.ts: vendor and compressor name zeroed,
 *         children not on the allow-list left out)
 *   stts ctts cslg stss stps sdtp   timing, reordering, sync and dependency tables, each cut to
 *         its entry count
 *   grps  the kept sample groups (sgpd/sbgp of type roll, prol, sync, rap), in file order
 *   szrl  every sample's size, run-length coded (u32 size, u32 run), however stsz/stz2 wrote it
 *   sdrl  every sample's description index, run-length coded (u32 run, u32 index)
 *   cnts  sample count and total sample bytes (u64 each)
 *   data  the SHA-256 of all sample bytes concatenated in decode order (not a hash of a hash of
 *         it: the digest itself, after the 0x01)
 *
 * That is every byte a decoder reads for the track - the coded samples, where each begins, which
 * description decodes it, and when it is shown - and nothing about where the file keeps them
 * (stco/co64, stsc's chunking). Identical values mean identical coded picture or sound for any
 * conforming decoder. `describeTrack` computes all parts but `data`; `SampleDataProof` computes
 * `data` while the bytes pass; `trackDataDigest` reads them again from a file (for verify).
 */
import { createHash, type Hash } from 'node:crypto';
import { KluisError } from '../../errors.js';
import { readPayload, type Box, type ByteSource } from './boxes.js';
import { box, keptGrouping, normalStsd, normalTable, normalTimes } from './normalize.js';
import { MAX_LEAF, type TrackKind } from './rules.js';
import type { SampleTables, TrackBoxes } from './tables.js';

export const SAMPLES_METHOD_ID = 'mp4-samples-sha256';
const MAGIC = 'kluis mp4-samples-sha256 v1\n';
const TIMING = ['stts', 'ctts', 'cslg', 'stss', 'stps', 'sdtp'] as const;

/** The parts of a track's essence that its index gives (all but `data`), each as a digest or null. */
export interface TrackDescription {
  parts: Array<[tag: string, digest: Buffer | null]>;
  sampleCount: number;
  totalBytes: number;
}

/**
 * The header fields a player reads (./normalize.ts gives the payload at its standard length);
 * times, durations (sums of the tables) and next_track_ID are left out.
 */
function presentation(type: 'mvhd' | 'tkhd' | 'mdhd', p: Buffer): Buffer {
  const v1 = p[0] === 1;
  switch (type) {
    case 'mvhd':
      return v1
        ? Buffer.concat([p.subarray(20, 24), p.subarray(32, 38), p.subarray(48, 84)])
        : Buffer.concat([p.subarray(12, 16), p.subarray(20, 26), p.subarray(36, 72)]);
    case 'tkhd':
      return Buffer.concat([p.subarray(1, 4), v1 ? p.subarray(44, 96) : p.subarray(32, 84)]);
    case 'mdhd':
      return v1 ? Buffer.concat([p.subarray(20, 24), p.subarray(32, 34)]) : Buffer.concat([p.subarray(12, 16), p.subarray(20, 22)]);
  }
}

function sha(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest();
}

function runsOfSizes(t: SampleTables): Buffer {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(8 * 4096);
  let n = 0;
  const push = (size: number, run: number): void => {
    buf.writeUInt32BE(size, n * 8);
    buf.writeUInt32BE(run, n * 8 + 4);
    if (++n === 4096) {
      h.update(buf);
      n = 0;
    }
  };
  if (t.sizes === null) {
    if (t.sampleCount > 0) push(t.fixedSize, t.sampleCount);
  } else {
    let i = 0;
    while (i < t.sizes.length) {
      const s = t.sizes[i]!;
      let j = i + 1;
      while (j < t.sizes.length && t.sizes[j] === s) j++;
      push(s, j - i);
      i = j;
    }
  }
  h.update(buf.subarray(0, n * 8));
  return h.digest();
}

function runsOfDescriptions(t: SampleTables): Buffer {
  const h = createHash('sha256');
  const pair = Buffer.alloc(8);
  let run = 0;
  let sdi = 0;
  for (let c = 0; c < t.chunkSdi.length; c++) {
    const s = t.chunkSdi[c]!;
    if (s !== sdi && run > 0) {
      pair.writeUInt32BE(run, 0);
      pair.writeUInt32BE(sdi, 4);
      h.update(pair);
      run = 0;
    }
    sdi = s;
    run += t.chunkSamples[c]!;
  }
  if (run > 0) {
    pair.writeUInt32BE(run, 0);
    pair.writeUInt32BE(sdi, 4);
    h.update(pair);
  }
  return h.digest();
}

/** Every part of the track's essence but `data`, from the file's own boxes and tables. */
export async function describeTrack(
  src: ByteSource,
  mvhd: Box,
  tb: TrackBoxes,
  tables: SampleTables,
  kind: TrackKind,
): Promise<TrackDescription> {
  const parts: TrackDescription['parts'] = [];
  parts.push(['hdlr', sha(Buffer.from(kind === 'video' ? 'vide' : 'soun', 'latin1'))]);
  parts.push(['mvhd', sha(presentation('mvhd', await normalTimes(src, mvhd)))]);
  parts.push(['tkhd', sha(presentation('tkhd', await normalTimes(src, tb.tkhd)))]);
  parts.push(['elst', tb.elst ? sha(await normalTable(src, tb.elst, tables.sampleCount)) : null]);
  parts.push(['mdhd', sha(presentation('mdhd', await normalTimes(src, tb.mdhd)))]);
  parts.push(['stsd', sha(await normalStsd(src, tb.stsd, kind))]);
  for (const t of TIMING) {
    const b = tb.tables.get(t);
    parts.push([t, b ? sha(await normalTable(src, b, tables.sampleCount)) : null]);
  }
  const groups: Buffer[] = [];
  for (const g of tb.groupings) if (await keptGrouping(src, g)) groups.push(box(g.type, await readPayload(src, g, MAX_LEAF)));
  parts.push(['grps', groups.length > 0 ? sha(Buffer.concat(groups)) : null]);
  parts.push(['szrl', runsOfSizes(tables)]);
  parts.push(['sdrl', runsOfDescriptions(tables)]);
  const cnts = Buffer.alloc(16);
  cnts.writeBigUInt64BE(BigInt(tables.sampleCount), 0);
  cnts.writeBigUInt64BE(BigInt(tables.totalBytes), 8);
  parts.push(['cnts', sha(cnts)]);
  return { parts, sampleCount: tables.sampleCount, totalBytes: tables.totalBytes };
}

/** The essence value (hex) of a described track whose sample bytes hash to `data`. */
export function essenceValue(d: TrackDescription, data: Buffer): string {
  const h = createHash('sha256').update(MAGIC, 'latin1');
  for (const [tag, digest] of d.parts) {
    h.update(tag, 'latin1');
    if (digest === null) h.update(Buffer.from([0]));
    else h.update(Buffer.concat([Buffer.from([1]), digest]));
  }
  h.update('data', 'latin1');
  h.update(Buffer.concat([Buffer.from([1]), data]));
  return h.digest('hex');
}

/** The tags of the parts in which two descriptions differ (empty when equal). */
export function differingParts(a: TrackDescription, b: TrackDescription): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.parts.length, b.parts.length); i++) {
    const x = a.parts[i];
    const y = b.parts[i];
    if (!x || !y || x[0] !== y[0] || (x[1] === null) !== (y[1] === null) || (x[1] && y[1] && !x[1].equals(y[1]))) out.push(x?.[0] ?? y?.[0] ?? '?');
  }
  return out;
}

function essenceError(message: string): KluisError {
  return new KluisError('E_SANITIZE_ESSENCE', message, {
    hint: 'the picture or sound would not be bit-exact; the file is not stored (this is a bug in kluis, please report it)',
  });
}

/**
 * The `data` part of every kept track, computed while the bytes pass, in one SHA-256 per track.
 * The input side (`input`) is fed the sample bytes as the INPUT's tables cut them from what was
 * read; the output side (`output`) is fed the bytes handed to the sink as the OUTPUT's tables cut
 * them. SHA-256 of the same bytes in the same order is the same value, so the output side does
 * not hash again what is the very same memory: it checks, slice by slice, that its tables route
 * to each track exactly the memory the input side hashed for that track, in the same order, and
 * fails (E_SANITIZE_ESSENCE) at the first slice that is not. What the output side proves is the
 * routing, which is where a rewriter can go wrong; its `data` is then the input side's digest.
 */
export class SampleDataProof {
  private readonly hashes: Hash[];
  private readonly pending: Uint8Array[][];
  readonly inputBytes: number[];
  readonly outputBytes: number[];

  constructor(tracks: number) {
    this.hashes = Array.from({ length: tracks }, () => createHash('sha256'));
    this.pending = Array.from({ length: tracks }, () => []);
    this.inputBytes = new Array<number>(tracks).fill(0);
    this.outputBytes = new Array<number>(tracks).fill(0);
  }

  input(track: number, slice: Uint8Array): void {
    const h = this.hashes[track];
    if (!h) throw essenceError(`the input tables name track ${track}, which is not kept`);
    h.update(slice);
    this.pending[track]!.push(slice);
    this.inputBytes[track] = this.inputBytes[track]! + slice.length;
  }

  output(track: number, slice: Uint8Array): void {
    const queue = this.pending[track];
    if (!queue) throw essenceError(`the output tables name track ${track}, which was not kept`);
    const e = queue.shift();
    if (!e || e.buffer !== slice.buffer || e.byteOffset !== slice.byteOffset || e.length !== slice.length) {
      throw essenceError(
        `the output's own tables give track ${track} bytes other than the input's tables gave it, after ${this.outputBytes[track]} bytes`,
      );
    }
    this.outputBytes[track] = this.outputBytes[track]! + slice.length;
  }

  /** Every slice the input side hashed was also routed by the output side. */
  settled(): boolean {
    return this.pending.every((q) => q.length === 0);
  }

  digests(): Buffer[] {
    if (!this.settled()) throw essenceError('the output carries fewer sample bytes than the input side hashed');
    return this.hashes.map((h) => h.digest());
  }
}

/** The `data` part of one track of a file, read chunk by chunk in decode order (for verify). */
export async function trackDataDigest(
  read: (position: number, length: number) => Promise<Uint8Array>,
  t: SampleTables,
  piece = 1 << 20,
): Promise<Buffer> {
  const h = createHash('sha256');
  for (let c = 0; c < t.chunkOffsets.length; c++) {
    const start = t.chunkOffsets[c]!;
    const len = t.chunkBytes[c]!;
    for (let done = 0; done < len; done += piece) {
      const n = Math.min(piece, len - done);
      const b = await read(start + done, n);
      if (b.length !== n) {
        throw new KluisError('E_SANITIZE_TRUNCATED', `the file ends before the samples its index lists (chunk ${c + 1} at ${start})`, {
          hint: 'the file was cut short; it cannot be rechecked',
        });
      }
      h.update(b);
    }
  }
  return h.digest();
}
