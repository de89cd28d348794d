// The pieces of the MP4/MOV rewriter on their own: the proof's routing check (SampleDataProof),
// the copy plan's refusals and fallbacks (planCopy), the header's stco/co64 and mdat-size choice
// (writeHead, parsed back), and the sample-table consistency checks (readSampleTables).
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../src/errors.js';
import { BufferSource, walkBoxes, type BoxTree } from '../../src/sanitize/video/boxes.js';
import { trackCodec } from '../../src/sanitize/video/codecs.js';
import { SampleDataProof } from '../../src/sanitize/video/proof.js';
import { HeadSource, planCopy, writeHead, type CopyPlan, type KeptTrack } from '../../src/sanitize/video/rewrite.js';
import { readSampleTables, trackBoxes, trackIdentity, type SampleTables } from '../../src/sanitize/video/tables.js';

const fixture = path.resolve(__dirname, '..', 'fixtures', 'generated-video', 'xmp-text-data.mp4');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KluisError);
    return (err as KluisError).code;
  }
  return 'no error';
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KluisError);
    return (err as KluisError).code;
  }
  return 'no error';
}

describe('SampleDataProof', () => {
  const window = Buffer.from('vvvvvvaaaVVVVAA');
  const v1 = window.subarray(0, 6);
  const a1 = window.subarray(6, 9);
  const v2 = window.subarray(9, 13);
  const a2 = window.subarray(13, 15);

  it('gives each track the SHA-256 of its bytes in order when the output routes the same memory', () => {
    const p = new SampleDataProof(2);
    for (const [t, s] of [[0, v1], [1, a1], [0, v2], [1, a2]] as const) p.input(t, s);
    for (const [t, s] of [[0, v1], [1, a1], [0, v2], [1, a2]] as const) p.output(t, s);
    expect(p.digests().map((d) => d.toString('hex'))).toEqual([
      createHash('sha256').update('vvvvvvVVVV').digest('hex'),
      createHash('sha256').update('aaaAA').digest('hex'),
    ]);
    expect(p.outputBytes).toEqual([10, 5]);
  });

  it('refuses output bytes routed to the other track, cut elsewhere, copied, or missing', () => {
    const mk = (): SampleDataProof => {
      const p = new SampleDataProof(2);
      p.input(0, v1);
      p.input(1, a1);
      return p;
    };
    expect(code(() => mk().output(1, v1))).toBe('E_SANITIZE_ESSENCE');
    expect(code(() => mk().output(0, window.subarray(0, 5)))).toBe('E_SANITIZE_ESSENCE');
    expect(code(() => mk().output(0, Buffer.from(v1)))).toBe('E_SANITIZE_ESSENCE');
    expect(code(() => mk().output(2, v1))).toBe('E_SANITIZE_ESSENCE');
    const short = mk();
    short.output(0, v1);
    expect(short.settled()).toBe(false);
    expect(code(() => short.digests())).toBe('E_SANITIZE_ESSENCE');
  });
});

function fakeTrack(offsets: number[], bytes: number[], id = 1): KeptTrack {
  const tables = {
    chunkOffsets: Float64Array.from(offsets),
    chunkBytes: Float64Array.from(bytes),
  } as unknown as SampleTables;
  return { trackId: id, kind: 'video', codec: 'h264', boxes: undefined as never, tables };
}

describe('planCopy', () => {
  const mdat: Array<[number, number]> = [[100, 10_000]];

  it('orders the kept chunks of all tracks by input offset and packs them back to back', () => {
    const plan = planCopy([fakeTrack([100, 400], [50, 60]), fakeTrack([200, 900], [10, 20], 2)], 10_000, mdat, []) as CopyPlan;
    expect([...plan.orderTrack]).toEqual([0, 1, 0, 1]);
    expect([...plan.orderChunk]).toEqual([0, 0, 1, 1]);
    expect(plan.relOffsets.map((r) => [...r])).toEqual([[0, 60], [50, 120]]);
    expect(plan.payloadBytes).toBe(140);
  });

  it('refuses shared bytes, samples past the end or outside mdat; hands chunks out of file order to the fallback', () => {
    expect(code(() => planCopy([fakeTrack([100], [50]), fakeTrack([120], [10], 2)], 10_000, mdat, []))).toBe('E_SANITIZE_SAMPLE_OVERLAP');
    expect(code(() => planCopy([fakeTrack([100], [50])], 10_000, mdat, [[140, 160]]))).toBe('E_SANITIZE_SAMPLE_OVERLAP');
    expect(code(() => planCopy([fakeTrack([9_990], [50])], 10_000, [[100, 20_000]], []))).toBe('E_SANITIZE_TRUNCATED');
    // Samples in moov or another box would carry its bytes into the output's mdat.
    expect(code(() => planCopy([fakeTrack([50], [10])], 10_000, mdat, []))).toBe('E_SANITIZE_SAMPLE_RANGE');
    expect(code(() => planCopy([fakeTrack([9_995], [10])], 20_000, mdat, []))).toBe('E_SANITIZE_SAMPLE_RANGE');
    expect(planCopy([fakeTrack([400, 100], [10, 10])], 10_000, mdat, [])).toEqual({ fallback: expect.stringMatching(/out of file order/) });
    // A removed track right next to a kept chunk is fine.
    expect('fallback' in planCopy([fakeTrack([100], [50])], 10_000, mdat, [[150, 160], [90, 100]])).toBe(false);
  });
});

async function keptOf(buf: Buffer): Promise<{ src: BufferSource; tree: BoxTree; kept: KeptTrack[] }> {
  const src = new BufferSource(buf);
  const tree = await walkBoxes(src);
  const moov = tree.boxes.find((b) => b.type === 'moov')!;
  const kept: KeptTrack[] = [];
  for (const trak of moov.children!.filter((b) => b.type === 'trak')) {
    const { id, handler } = await trackIdentity(src, trak);
    if (handler !== 'vide' && handler !== 'soun') continue;
    const kind = handler === 'vide' ? 'video' : 'audio';
    const boxes = trackBoxes(trak);
    kept.push({ trackId: id, kind, codec: await trackCodec(src, boxes.stsd, kind, 'mp4', id), boxes, tables: await readSampleTables(src, boxes) });
  }
  return { src, tree, kept };
}

describe('writeHead', () => {
  it('writes stco and an 8-byte mdat header below 4 GiB, co64 and a 64-bit one above, with the offsets it was given', async () => {
    const { src, tree, kept } = await keptOf(readFileSync(fixture));
    for (const payload of [10_000, 5 * 2 ** 30]) {
      // Spread the chunks over `payload` bytes, in order.
      let at = 0;
      const step = Math.floor(payload / kept.reduce((a, k) => a + k.tables.chunkOffsets.length, 0));
      const relOffsets = kept.map((k) => Float64Array.from(k.tables.chunkOffsets, () => (at += step) - step));
      const plan: CopyPlan = { orderTrack: new Uint32Array(0), orderChunk: new Uint32Array(0), relOffsets, payloadBytes: payload };
      const head = await writeHead(src, tree, 'mp4', kept, plan);
      expect(head.size).toBe(head.bytes.length + payload);
      const out = new HeadSource(head.bytes, head.size);
      const outTree = await walkBoxes(out);
      expect(outTree.boxes.map((b) => b.type)).toEqual(['ftyp', 'moov', 'mdat']);
      const mdat = outTree.boxes[2]!;
      expect(mdat.headerSize).toBe(payload > 2 ** 32 ? 16 : 8);
      expect(mdat.size).toBe(mdat.headerSize + payload);
      expect(mdat.offset + mdat.headerSize).toBe(head.mdatPayloadStart);
      const traks = outTree.boxes[1]!.children!.filter((b) => b.type === 'trak');
      for (const [i, trak] of traks.entries()) {
        const tb = trackBoxes(trak);
        expect(tb.tables.has(payload > 2 ** 32 ? 'co64' : 'stco')).toBe(true);
        const t = await readSampleTables(out, tb);
        expect([...t.chunkOffsets]).toEqual([...relOffsets[i]!].map((r) => head.mdatPayloadStart + r));
      }
    }
  });
});

describe('readSampleTables refuses tables that disagree (E_SANITIZE_SAMPLE_TABLE)', () => {
  async function firstTrack(edit: (b: Buffer, stsc: number, stsz: number) => void): Promise<string> {
    const buf = Buffer.from(readFileSync(fixture));
    const trakOf = async (b: Buffer) => (await walkBoxes(new BufferSource(b))).boxes.find((x) => x.type === 'moov')!.children!.find((x) => x.type === 'trak')!;
    const tb = trackBoxes(await trakOf(buf));
    const payload = (t: string): number => tb.tables.get(t)!.offset + tb.tables.get(t)!.headerSize;
    edit(buf, payload('stsc'), payload('stsz'));
    const src = new BufferSource(buf);
    return codeOf(readSampleTables(src, trackBoxes(await trakOf(buf))));
  }

  it('accepts the file as written', async () => {
    expect(await firstTrack(() => undefined)).toBe('no error');
  });
  it('stsc not starting at chunk 1', async () => {
    expect(await firstTrack((b, stsc) => b.writeUInt32BE(2, stsc + 8))).toBe('E_SANITIZE_SAMPLE_TABLE');
  });
  it('a sample description index stsd does not have', async () => {
    expect(await firstTrack((b, stsc) => b.writeUInt32BE(7, stsc + 16))).toBe('E_SANITIZE_SAMPLE_TABLE');
  });
  it('fewer samples in stsz than the chunks hold', async () => {
    expect(await firstTrack((b, _stsc, stsz) => b.writeUInt32BE(b.readUInt32BE(stsz + 8) - 1, stsz + 8))).toBe('E_SANITIZE_SAMPLE_TABLE');
  });
  it('a size count larger than the table (never allocated)', async () => {
    expect(await firstTrack((b, _stsc, stsz) => b.writeUInt32BE(0x7fffffff, stsz + 8))).toBe('E_SANITIZE_SAMPLE_TABLE');
  });
});
