// What the bench reads: its command-line choices (sizes, card scale, cards, --only), the card
// plans, and the output of what it runs (GNU time, the do-it-yourself script's step marks,
// `kluis ingest --json`, a station's journal). Pure or on temp files; nothing here is timed.
import { describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jpegVariant, parseSize, planCard, planClipsCard, VIDEO_CARD } from '../../src/bench/card.js';
import { DIY_SCRIPT, DIY_STEPS, parseMarks, stepTimes } from '../../src/bench/diy.js';
import { parseTimeOutput } from '../../src/bench/measure.js';
import { cardFreeMs, ingestProblem } from '../../src/bench/runs.js';
import { parseCards, parseScale, selector } from '../../src/bench/select.js';
import { Sqlite } from '../../src/util/sqlite.js';

describe('bench command line', () => {
  it('parses sizes in powers of ten, and binary with i', () => {
    expect(parseSize('2G')).toBe(2e9);
    expect(parseSize('1.5GB')).toBe(1.5e9);
    expect(parseSize('500m')).toBe(500e6);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('12345')).toBe(12345);
    expect(() => parseSize('lots')).toThrow(/cannot read the size/);
    expect(() => parseSize('0G')).toThrow(/more than 0/);
  });

  it('--card-scale takes a number above 0', () => {
    expect(parseScale('0.1')).toBe(0.1);
    expect(parseScale('1')).toBe(1);
    for (const bad of ['0', '-1', 'small', '', 'Infinity']) expect(() => parseScale(bad)).toThrow(/--card-scale/);
  });

  it('--cards takes photo and video, each once, in order', () => {
    expect(parseCards('photo,video')).toEqual(['photo', 'video']);
    expect(parseCards(' video , photo,video')).toEqual(['video', 'photo']);
    expect(() => parseCards('photo,audio')).toThrow(/unknown card 'audio'/);
    expect(() => parseCards('toString')).toThrow(/unknown card/);
    expect(() => parseCards(',')).toThrow(/at least one card/);
  });

  it('--only names map to run ids; unknown names are refused', () => {
    const want = selector(['seal', 'cp', 'diy', 'memory']);
    expect(want('seal-sodium')).toBe(true);
    expect(want('age-file')).toBe(true);
    expect(want('cp+sha256sum')).toBe(true);
    expect(want('diy')).toBe(true);
    expect(want('memory-4g')).toBe(true);
    expect(want('kluis-ingest-fs')).toBe(false);
    expect(selector(['baselines'])('diy')).toBe(true);
    expect(selector(null)('anything')).toBe(true);
    expect(() => selector(['nope'])).toThrow(/unknown run 'nope'/);
  });
});

describe('bench card plans', () => {
  it('the photo-heavy card: about half the bytes as JPEGs and the rest as whole clip repeats', () => {
    const p = planCard(2e9, 47e6, 6e6);
    expect(p.jpegs.length).toBe(167);
    expect(p.videos.length).toBe(3);
    const videoBytes = p.videos.reduce((s, v) => s + (v.loops + 1) * 47e6, 0);
    const total = videoBytes + p.jpegs.length * 6e6;
    expect(Math.abs(total - 2e9) / 2e9).toBeLessThan(0.05);
    const names = [...p.videos.map((v) => v.name), ...p.jpegs];
    expect(new Set(names).size).toBe(names.length);
    expect(p.videos[0]!.srt).toBe('DJI_0001.SRT');
    const tiny = planCard(1e6, 2e6, 1e6);
    expect(tiny.videos).toHaveLength(1);
    expect(tiny.videos[0]!.loops).toBe(0);
    expect(tiny.jpegs).toHaveLength(2);
  });

  it('the video-heavy card: 58 clips of 20 s and 60 JPEGs, scaled by count, at least one of each', () => {
    const full = planClipsCard(VIDEO_CARD);
    expect(full.clips).toHaveLength(58);
    expect(full.jpegs).toHaveLength(60);
    expect(full.loops).toBe(9); // a 2 s base clip played 10 times: 20 s
    expect(full.clips[0]).toBe('DJI_0001.MP4');
    expect(full.jpegs[0]).toBe('DJI_0059.JPG');
    expect(new Set([...full.clips, ...full.jpegs]).size).toBe(118);
    const tenth = planClipsCard(VIDEO_CARD, 0.1);
    expect([tenth.clips.length, tenth.jpegs.length, tenth.loops]).toEqual([6, 6, 9]);
    const least = planClipsCard(VIDEO_CARD, 0.001);
    expect([least.clips.length, least.jpegs.length]).toEqual([1, 1]);
    expect(() => planClipsCard(VIDEO_CARD, 0)).toThrow(/scale must be more than 0/);
  });

  it('JPEG variants differ, keep SOI first and carry a well-formed COM segment', () => {
    const base = Buffer.from([0xff, 0xd8, 0xff, 0xdb, 0x00, 0x02, 0xff, 0xd9]);
    const a = jpegVariant(base, 1);
    const b = jpegVariant(base, 2);
    expect(a.equals(b)).toBe(false);
    expect([a[0], a[1], a[2], a[3]]).toEqual([0xff, 0xd8, 0xff, 0xfe]);
    const len = a.readUInt16BE(4);
    expect(a.subarray(4 + len)).toEqual(base.subarray(2));
    expect(() => jpegVariant(Buffer.from([0, 1, 2]), 1)).toThrow(/SOI/);
  });
});

describe('bench run output', () => {
  it('reads GNU time output', () => {
    expect(parseTimeOutput('1.50 0.75 0.25 20480\n')).toEqual({ wallS: 1.5, userS: 0.75, sysS: 0.25, maxRssKb: 20480 });
    expect(parseTimeOutput('Command exited with non-zero status 1\n0.01 0.00 0.00 1000\n')?.maxRssKb).toBe(1000);
    expect(parseTimeOutput('garbage')).toBeNull();
  });

  it('reads the do-it-yourself steps from the marks its script prints', () => {
    const out = [
      'kluis-bench-mark start 1000000000000',
      'some tool output',
      'kluis-bench-mark copied 1002500000000',
      '    1 image files updated',
      'kluis-bench-mark stripped 1003000000000',
      'kluis-bench-mark delivered 1007250000000',
      '',
    ].join('\n');
    const marks = parseMarks(out);
    expect(marks.map((m) => m.name)).toEqual(['start', 'copied', 'stripped', 'delivered']);
    expect(stepTimes(marks)).toEqual({ copy: 2500, exiftool: 500, rclone: 4250 });
  });

  it('a missing, repeated, reordered or backwards mark gives no step times', () => {
    const m = (name: string, s: number): { name: string; ns: bigint } => ({ name, ns: BigInt(s) * 1_000_000_000n });
    expect(stepTimes([m('start', 1), m('copied', 2), m('stripped', 3)])).toBeNull(); // stopped before rclone
    expect(stepTimes([m('start', 1), m('stripped', 2), m('copied', 3), m('delivered', 4)])).toBeNull();
    expect(stepTimes([m('start', 1), m('copied', 2), m('copied', 3), m('stripped', 3), m('delivered', 4)])).toBeNull();
    expect(stepTimes([m('start', 5), m('copied', 2), m('stripped', 3), m('delivered', 4)])).toBeNull();
    expect(stepTimes(parseMarks(''))).toBeNull();
  });

  it('the script prints one mark per step, around the commands issue 14 names', () => {
    const marks = [...DIY_SCRIPT.matchAll(/^mark (\S+)$/gm)].map((x) => x[1]);
    expect(marks).toEqual(['start', ...DIY_STEPS.map((s) => s.mark)]);
    const line = (cmd: string): number => DIY_SCRIPT.split('\n').findIndex((l) => l.startsWith(cmd));
    expect(line('cp -r ')).toBeLessThan(line('mark copied'));
    expect(line('exiftool -q -all= -overwrite_original -r ')).toBeGreaterThan(line('mark copied'));
    expect(line('exiftool ')).toBeLessThan(line('mark stripped'));
    expect(line('rclone --config ')).toBeGreaterThan(line('mark stripped'));
    expect(DIY_SCRIPT.split('\n')[0]).toBe('set -e'); // a failing step fails the run
  });

  it('an ingest counts only when the batch and every footage file are secured', () => {
    const ok = { status: 'secured', files: [{ path: 'a', class: 'footage', status: 'secured' }, { path: 'b.SRT', class: 'sidecar', status: 'withheld' }] };
    expect(ingestProblem(JSON.stringify(ok))).toBeNull();
    const bad = { status: 'partial', files: [{ path: 'a', class: 'footage', status: 'failed', error: { code: 'E_X', message: 'nope' } }] };
    expect(ingestProblem(JSON.stringify(bad))).toMatch(/batch partial; 1\/1 footage files not secured \(first: a E_X nope\)/);
    expect(ingestProblem('not json')).toBe('ingest printed no JSON');
  });

  it('reads the time to safe-to-remove from a journal with one batch, and null otherwise', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-journal-'));
    try {
      const file = path.join(dir, 'journal.db');
      expect(cardFreeMs(file)).toBeNull();
      const db = new Sqlite(file);
      db.exec('CREATE TABLE batches (id TEXT, created_at TEXT NOT NULL, safe_to_remove_at TEXT)');
      db.prepare('INSERT INTO batches VALUES (?, ?, ?)').run('a', '2026-11-30T10:00:00.000Z', null);
      expect(cardFreeMs(file)).toBeNull(); // card never fully read
      db.prepare("UPDATE batches SET safe_to_remove_at = '2026-11-30T10:00:15.250Z'").run();
      expect(cardFreeMs(file)).toBe(15_250);
      db.prepare('INSERT INTO batches VALUES (?, ?, ?)').run('b', '2026-11-30T11:00:00.000Z', '2026-11-30T11:00:01.000Z');
      expect(cardFreeMs(file)).toBeNull(); // which batch? none is guessed
      db.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
