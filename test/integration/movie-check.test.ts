/**
 * The in-process independent reader of a sanitized video's movie header (mp4box.js through
 * src/wrappers/mp4box.ts, judged by src/sanitize/video/movie-check.ts). A clean output of a real
 * DJI file passes; the card file itself, and that clean output with one thing changed at a time
 * (a track, a codec, a handler name, a box, a broken size, a cut header), each give a finding or a
 * tool error. The changes are made on the output's bytes, so our own walker has no say in them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sanitizeVideo } from '../../src/sanitize/video/index.js';
import { walkFile } from '../../src/sanitize/video/boxes.js';
import { movieFindings } from '../../src/sanitize/video/movie-check.js';
import { DEFAULT_NEEDLES, type TrackKind } from '../../src/sanitize/video/rules.js';
import { readMovieHeader } from '../../src/wrappers/mp4box.js';
import { KluisError } from '../../src/errors.js';
import { realVideo, scratch } from './sanitize-video-helpers.js';

const CARD = realVideo('DJI_20250723102139_0001_D.MP4');
const KEPT: Array<{ kind: TrackKind; codec: string }> = [{ kind: 'video', codec: 'h264' }];
const work = scratch('kluis-movie-check-');
afterAll(() => work.done());

let head: Buffer;

beforeAll(async () => {
  const out = path.join(work.dir, 'out.mp4');
  await sanitizeVideo(CARD, out, { thermal: 'keep' }, 'mp4');
  const tree = await walkFile(out);
  const mdat = tree.boxes.find((b) => b.type === 'mdat')!;
  head = (await fsp.readFile(out)).subarray(0, mdat.offset + mdat.headerSize);
});

/** The clean head with `from` (latin1, first occurrence) replaced by `to` of the same length. */
function patched(from: string, to: string): Buffer {
  const copy = Buffer.from(head);
  const at = copy.indexOf(from, 0, 'latin1');
  expect(at, from).toBeGreaterThan(0);
  copy.write(to, at, 'latin1');
  return copy;
}

const findings = (bytes: Uint8Array, kept = KEPT): string[] => movieFindings(readMovieHeader(bytes), kept, DEFAULT_NEEDLES);

describe('mp4box reads the movie header of a sanitized file', () => {
  it('finds nothing in the clean output of a real DJI file', () => {
    const view = readMovieHeader(head);
    expect(view.tracks.map((t) => [t.handlerType, t.entries.map((e) => e.type)])).toEqual([['vide', ['avc1']]]);
    expect(findings(head)).toEqual([]);
  });

  it('finds the card file\'s udta, meta and ilst', async () => {
    const f = findings(await fsp.readFile(CARD));
    expect(f).toContain('box moov/udta');
  });

  it('finds a track other than the kept ones: count, kind and codec', () => {
    expect(findings(head, [...KEPT, { kind: 'audio', codec: 'aac' }])).toContain('1 tracks where 2 were kept');
    expect(findings(head, [{ kind: 'audio', codec: 'aac' }]).join('\n')).toMatch(/track 1 is video, not the kept audio/);
    expect(findings(head, [{ kind: 'video', codec: 'hevc' }]).join('\n')).toMatch(/sample entry avc1 is h264, not the kept hevc/);
  });

  it('finds a handler name that is not neutral', () => {
    expect(findings(patched('VideoHandler', 'DJI.AVC-Hndl')).join('\n')).toMatch(/handler name "DJI.AVC-Hndl"/);
  });

  it('finds a box outside the allow-list, where our walker was told nothing', () => {
    expect(findings(patched('colr', 'udta'))).toContain('box moov/trak/mdia/minf/stbl/stsd/avc1/udta');
  });

  it('finds a brand carrying a needle', () => {
    const f = findings(patched('isom', 'DJI '));
    expect(f.join('\n')).toMatch(/brand "DJI " contains "DJI"/);
  });

  it('a broken box size is a parser complaint or a tool error, never a pass', () => {
    const outcome = (bytes: Uint8Array): string[] => {
      try {
        return findings(bytes);
      } catch (err) {
        return [`error ${(err as KluisError).code}`];
      }
    };
    for (const inner of ['tkhd', 'stsd', 'avcC']) {
      const copy = Buffer.from(head);
      copy.writeUInt32BE(0x7fff0000, copy.indexOf(inner, 0, 'latin1') - 4);
      const f = outcome(copy);
      expect(f.some((x) => x.startsWith('parser: ') || x === 'error E_SANITIZE_TOOL_OUTPUT'), `${inner}: ${f.join('; ')}`).toBe(true);
    }
  });

  it('a header cut before its end is a tool error, never an empty list', () => {
    const moov = head.indexOf('moov', 0, 'latin1');
    let err: unknown;
    try {
      findings(head.subarray(0, moov + 200));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KluisError);
    expect((err as KluisError).code).toBe('E_SANITIZE_TOOL_OUTPUT');
  });
});
