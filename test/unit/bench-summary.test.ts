// The bench summary: per card the baselines, kluis end to end and until the card is free with
// their ratios and CPU seconds; CPU seconds per GB per stage; the Markdown a reader pastes into a
// closing note. Synthetic RunResults only; nothing here is timed.
import { describe, expect, it } from 'vitest';
import { cardSummary, cpuTable, formatSummary, type Summary } from '../../src/bench/summary.js';
import { memoryChecks, ratioChecks, computeRatios } from '../../src/bench/goals.js';
import type { CardInfo, RunResult } from '../../src/bench/result.js';

function run(id: string, card: string, bytes: number, wallMs: number, cpuMs: number, extra: Partial<RunResult> = {}): RunResult {
  return { id, label: id, group: 'baseline', card, bytes, files: 10, wallMs, cpuUserMs: cpuMs, cpuSysMs: 0, peakRssBytes: null, ok: true, ...extra };
}

const photo: CardInfo = { id: 'photo-heavy', path: '/c/p', description: '162 JPEGs + 3 videos', bytes: 2000e6, files: 168, jpegs: 162, videos: 3, sidecars: 3, cached: true };
const video: CardInfo = { id: 'video-heavy', path: '/c/v', description: '58 clips + 60 JPEGs', bytes: 1500e6, files: 118, jpegs: 60, videos: 58, sidecars: 0, cached: true };

const runs: RunResult[] = [
  run('cp+sha256sum', 'photo-heavy', 2000e6, 10_000, 8000, { cardFreeMs: 10_000 }),
  run('diy', 'photo-heavy', 2000e6, 16_000, 14_000, { cardFreeMs: 4000 }),
  run('kluis-ingest-fs', 'photo-heavy', 2000e6, 40_000, 70_000, { group: 'kluis', cardFreeMs: 8000 }),
  run('stage-card-read', 'photo-heavy', 2000e6, 8000, 9000, { group: 'stage' }),
  run('stage-acquire', 'photo-heavy', 2000e6, 7000, 6000, { group: 'stage' }),
  run('stage-sanitize-image', 'photo-heavy', 1000e6, 50_000, 45_000, { group: 'stage' }),
  run('stage-sanitize-video', 'photo-heavy', 1000e6, 9000, 10_000, { group: 'stage' }),
  run('stage-seal', 'photo-heavy', 1900e6, 6000, 5700, { group: 'stage' }),
  run('cp+sha256sum', 'video-heavy', 1500e6, 6000, 6000, { cardFreeMs: 6000 }),
  run('diy', 'video-heavy', 1500e6, 10_000, 9000, { ok: false, error: 'exit 1' }),
  run('kluis-ingest-fs', 'video-heavy', 1500e6, 10_000, 20_000, { group: 'kluis', cardFreeMs: 5000 }),
  run('stage-sanitize-video', 'video-heavy', 1200e6, 9000, 24_000, { group: 'stage', ok: false }),
];

describe('bench summary per card', () => {
  it('gives the baselines, kluis, card free, the four ratios and the CPU the 0.5x goal allows', () => {
    const s = cardSummary(runs, photo, 2);
    expect(s).toEqual({
      card: 'photo-heavy',
      description: '162 JPEGs + 3 videos',
      bytes: 2000e6,
      files: 168,
      cp: { wallS: 10, cpuS: 8 },
      diy: { wallS: 16, cpuS: 14 },
      kluis: { wallS: 40, cpuS: 70 },
      kluisCardFreeS: 8,
      diyCardFreeS: 4,
      e2eVsCp: 0.25,
      e2eVsDiy: 0.4,
      freeVsCp: 1.25,
      freeVsDiy: 0.5,
      budgetCpuS: 40, // 2000 MB at 0.5 x 200 MB/s = 20 s, on 2 cores
      cardReadS: 8,
      cardReadVsCp: 1.25, // cp+sha256sum 10 s over the card read alone 8 s
    });
  });

  it('a failed baseline shows as failed and takes its ratios with it; a missing run is null', () => {
    const s = cardSummary(runs, video, 2);
    expect(s.diy).toBe('failed');
    expect(s.e2eVsDiy).toBeNull();
    expect(s.freeVsDiy).toBeNull();
    expect(s.diyCardFreeS).toBeNull();
    expect(s.e2eVsCp).toBeCloseTo(0.6, 10);
    const empty = cardSummary([], video, 2);
    expect([empty.cp, empty.diy, empty.kluis, empty.e2eVsCp, empty.kluisCardFreeS, empty.budgetCpuS, empty.cardReadS, empty.cardReadVsCp]).toEqual([null, null, null, null, null, null, null, null]);
    expect(s.cardReadS).toBeNull(); // not run on this card
  });
});

describe('bench CPU seconds per GB', () => {
  it('gives every stage and whole run per card, per GB of its own input; failed or absent is null', () => {
    const rows = Object.fromEntries(cpuTable(runs, ['photo-heavy', 'video-heavy']).map((r) => [r.id, r]));
    expect(Object.keys(rows)).toEqual(['stage-card-read', 'stage-acquire', 'stage-sanitize-image', 'stage-sanitize-video', 'stage-seal', 'kluis-ingest-fs', 'cp+sha256sum', 'diy']);
    expect(rows['stage-acquire']!.perGb).toEqual({ 'photo-heavy': 3, 'video-heavy': null });
    expect(rows['stage-card-read']!.perGb).toEqual({ 'photo-heavy': 4.5, 'video-heavy': null });
    expect(rows['stage-sanitize-image']!.perGb['photo-heavy']).toBe(45);
    expect(rows['stage-seal']!.perGb['photo-heavy']).toBeCloseTo(3, 10); // 5.7 CPU s over 1.9 GB of sanitized bytes
    expect(rows['stage-seal']!.gb['photo-heavy']).toBeCloseTo(1.9, 10);
    expect(rows['stage-sanitize-video']!.perGb).toEqual({ 'photo-heavy': 10, 'video-heavy': null }); // the video card's run failed
    expect(rows['kluis-ingest-fs']!.perGb['video-heavy']).toBeCloseTo(13.33, 2);
    expect(rows['diy']!.perGb['video-heavy']).toBeNull();
  });
});

describe('bench summary text', () => {
  const ratios = computeRatios(runs, ['photo-heavy', 'video-heavy']);
  const summary: Summary = {
    cards: [cardSummary(runs, photo, 2), cardSummary(runs, video, 2)],
    cpuPerGb: cpuTable(runs, ['photo-heavy', 'video-heavy']),
    goals: [...ratioChecks(ratios), ...memoryChecks([{ ...run('memory-1g', '', 1e9, 10_000, 1), group: 'memory', commandPeakRssBytes: 150e6 }])],
  };
  const ctx = {
    date: '2026-12-06T10:00:00.000Z',
    command: 'kluis bench',
    machine: { host: 'vm', cores: 2, cpuModel: 'AMD EPYC', memTotalBytes: 25e9, os: 'Linux' },
    versions: { kluis: '0.1.0 (abc1234)' },
    scale: 1,
    loadAverage: 0.42,
  };

  it('is a Markdown table a reader can paste, ratios below their goal in bold', () => {
    const text = formatSummary(summary, ctx);
    expect(text).toContain('One run of `kluis bench` on 2026-12-06, kluis 0.1.0 (abc1234), 2 cores (AMD EPYC), load average 0.42 at the start.');
    expect(text).not.toContain('scale');
    expect(text).toContain(
      '| card | cp+sha256sum | DIY | kluis | kluis / cp+sha256sum | kluis / DIY | card free | card free / cp+sha256sum | card free / DIY | CPU s cp / DIY / kluis |',
    );
    expect(text).toContain(
      '| photo-heavy: 162 JPEGs + 3 videos (2.00 GB, 168 files) | 10.0 s | 16.0 s | 40.0 s | **0.25x** | **0.40x** | 8.0 s | 1.25x | 0.50x | 8.0 / 14.0 / 70.0 |',
    );
    expect(text).toContain('| video-heavy: 58 clips + 60 JPEGs (1.50 GB, 118 files) | 6.0 s | failed | 10.0 s | 0.60x | - | 5.0 s | 1.20x | - | 6.0 / failed / 20.0 |');
    expect(text).toContain('its card is free after the copy (photo-heavy 4.0 s, video-heavy -)');
    expect(text).toContain('The 0.5x cp+sha256sum goal leaves kluis 40.0 CPU s for photo-heavy, 24.0 CPU s for video-heavy on 2 cores.');
    // only the card that has the row is named
    expect(text).toContain('the floor under card free: photo-heavy 8.0 s (1.25x cp+sha256sum).');
  });

  it('has the CPU-per-GB table and every goal with its verdict', () => {
    const text = formatSummary(summary, ctx);
    expect(text).toContain('| CPU s per GB | photo-heavy | video-heavy |');
    expect(text).toContain('| acquire (read, SHA-256 + xxh128, spool) | 3.0 | - |');
    expect(text).toContain('| sanitize video (with proofs) | 10.0 | - |');
    expect(text).toContain('| photo-heavy: kluis end to end / cp+sha256sum (goal >= 0.5x) | 0.25x | FAIL |');
    expect(text).toContain('| photo-heavy: kluis card free / cp+sha256sum (goal >= 1x) | 1.25x | PASS |');
    expect(text).toContain('| video-heavy: kluis end to end / do-it-yourself (goal >= 1x) | - | NOT MEASURED |');
    expect(text).toContain('| peak RSS of kluis, one 1.0 GB video (goal < 300 MB) | 150 MB (ffmpeg -) | PASS |');
    expect(text.split('\n').filter((l) => l.includes('(goal')).some((l) => l.includes('rclone'))).toBe(false);
  });

  it('says when the cards were scaled down', () => {
    expect(formatSummary(summary, { ...ctx, scale: 0.1, loadAverage: null })).toContain('Cards at scale 0.1: these are not the card sizes of issue 14.');
    expect(formatSummary(summary, { ...ctx, loadAverage: null })).not.toContain('load average');
  });
});
