/**
 * The output side of the sample proof: the output's own sample tables (parsed back from the
 * written moov) cut the output mdat into chunks, and each byte handed to the sink goes to the
 * proof of the track those tables give it. Throws E_SANITIZE_ESSENCE when the tables leave a
 * byte of the mdat to no sample or give it to two, or when the bytes run past the last sample.
 */
import { KluisError } from '../../errors.js';
import type { SampleDataProof } from './proof.js';
import type { SampleTables } from './tables.js';

/** The output's tables, cut at the positions its own chunk offsets say, for the output side of the proof. */
export class OutputRouter {
  private readonly track: Uint32Array;
  private readonly start: Float64Array;
  private readonly length: Float64Array;
  private i = 0;
  private pos: number;

  constructor(
    tables: readonly SampleTables[],
    private readonly mdatStart: number,
    private readonly end: number,
    private readonly proof: SampleDataProof,
  ) {
    const n = tables.reduce((a, t) => a + t.chunkBytes.filter((b) => b > 0).length, 0);
    this.track = new Uint32Array(n);
    this.start = new Float64Array(n);
    this.length = new Float64Array(n);
    const cursor = tables.map(() => 0);
    const next = (ti: number): void => {
      const t = tables[ti]!;
      while (cursor[ti]! < t.chunkOffsets.length && t.chunkBytes[cursor[ti]!] === 0) cursor[ti]! += 1;
    };
    tables.forEach((_, ti) => next(ti));
    let at = mdatStart;
    for (let k = 0; k < n; k++) {
      let best = -1;
      for (let ti = 0; ti < tables.length; ti++) {
        const c = cursor[ti]!;
        if (c < tables[ti]!.chunkOffsets.length && (best < 0 || tables[ti]!.chunkOffsets[c]! < tables[best]!.chunkOffsets[cursor[best]!]!)) best = ti;
      }
      const t = tables[best]!;
      const c = cursor[best]!;
      if (t.chunkOffsets[c] !== at) {
        throw new KluisError('E_SANITIZE_ESSENCE', `the output's tables leave bytes of its mdat to no sample, or give bytes to two (at ${at})`, {
          hint: 'the rewrite is inconsistent; the file is not stored (this is a bug in kluis, please report it)',
        });
      }
      this.track[k] = best;
      this.start[k] = at;
      this.length[k] = t.chunkBytes[c]!;
      at += t.chunkBytes[c]!;
      cursor[best]! += 1;
      next(best);
    }
    if (at !== end) {
      throw new KluisError('E_SANITIZE_ESSENCE', `the output's samples end at ${at}, its mdat at ${end}`, {
        hint: 'the rewrite is inconsistent; the file is not stored (this is a bug in kluis, please report it)',
      });
    }
    this.pos = mdatStart;
  }

  /** Output mdat bytes at `position`, in order: each chunk's part goes to its track on the output side of the proof. */
  feed(position: number, bytes: Uint8Array): void {
    if (position !== this.pos) throw new KluisError('E_INTERNAL', `output bytes at ${position}, expected ${this.pos}`);
    let done = 0;
    while (done < bytes.length) {
      if (this.i >= this.track.length) throw new KluisError('E_SANITIZE_ESSENCE', 'the output carries bytes past its last sample', { hint: 'the file is not stored' });
      const chunkEnd = this.start[this.i]! + this.length[this.i]!;
      const n = Math.min(bytes.length - done, chunkEnd - (this.pos + done));
      this.proof.output(this.track[this.i]!, bytes.subarray(done, done + n));
      done += n;
      if (this.pos + done === chunkEnd) this.i += 1;
    }
    this.pos += bytes.length;
  }

  complete(): boolean {
    return this.pos === this.end && this.i === this.track.length && this.mdatStart <= this.end;
  }
}
