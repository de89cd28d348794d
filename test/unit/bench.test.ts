// The benchmark's arithmetic and verdicts: MB/s, ratios per card (end to end and until the card is
// free), the goals of issue 14, the memory checks, the text table and the JSON writer. Synthetic
// RunResults only; nothing here is timed.
import { describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { computeRatios, goalCpuBudgetS, kluisPeakRss, memoryChecks, RATIOS, ratioChecks, ratioOf } from '../../src/bench/goals.js';
import { formatTable, makeDocument, resultFileName, rssBreakdown, writeResultFile } from '../../src/bench/report.js';
import { cpuPerGb, filesPerSecond, mbPerSecond, sizeText, type CardInfo, type RunResult } from '../../src/bench/result.js';

function run(id: string, bytes: number, wallMs: number, extra: Partial<RunResult> = {}): RunResult {
  return {
    id,
    label: id,
    group: 'baseline',
    card: 'photo-heavy',
    bytes,
    files: 10,
    wallMs,
    cpuUserMs: 1500,
    cpuSysMs: 500,
    peakRssBytes: 50e6,
    ok: true,
    ...extra,
  };
}

const machine = { host: 'test host/1', cores: 2, cpuModel: 'Test CPU', memTotalBytes: 8e9, os: 'Linux' };

function card(id: string, bytes: number, extra: Partial<CardInfo> = {}): CardInfo {
  return { id, path: `/tmp/${id}`, description: `${id} things`, bytes, files: 12, jpegs: 10, videos: 2, sidecars: 0, cached: false, ...extra };
}

// One card of 1000 MB: cp+sha256sum 4 s (250 MB/s, card free at its end), DIY 5 s (card free
// after its 2 s copy), kluis 10 s end to end with the card free after 5 s.
function photoRuns(card = 'photo-heavy', extra: Partial<RunResult> = {}): RunResult[] {
  return [
    run('cp+sha256sum', 1000e6, 4000, { card, cardFreeMs: 4000 }),
    run('diy', 1000e6, 5000, { card, cardFreeMs: 2000, phasesMs: { copy: 2000, exiftool: 1000, rclone: 2000 } }),
    run('rclone-crypt', 1000e6, 3000, { card }),
    run('kluis-ingest-fs', 1000e6, 10_000, { card, group: 'kluis', cardFreeMs: 5000, cpuUserMs: 15_000, cpuSysMs: 1000, ...extra }),
  ];
}

describe('bench figures', () => {
  it('MB/s counts 10^6 bytes per second, files/s files per second, CPU per GB of input', () => {
    expect(mbPerSecond({ bytes: 300e6, wallMs: 2000 })).toBe(150);
    expect(filesPerSecond({ files: 10, wallMs: 4000 })).toBe(2.5);
    expect(mbPerSecond({ bytes: 1, wallMs: 0 })).toBe(0);
    expect(cpuPerGb(run('x', 500e6, 1000))).toBe(4); // 2 CPU s over 0.5 GB
    expect(cpuPerGb(run('x', 500e6, 1000, { ok: false }))).toBeNull();
    expect(cpuPerGb(run('x', 0, 1000))).toBeNull();
    expect(sizeText(47e6)).toBe('47 MB');
    expect(sizeText(4e9)).toBe('4.0 GB');
  });

  it('end to end: kluis against cp+sha256sum and the do-it-yourself pipeline, judged against their goals', () => {
    const r = Object.fromEntries(computeRatios(photoRuns(), ['photo-heavy']).map((x) => [x.id, x]));
    expect(r['e2e-vs-cp']!.ratio).toBeCloseTo(0.4, 10); // 4 s / 10 s
    expect(r['e2e-vs-cp']!.pass).toBe(false);
    expect(r['e2e-vs-diy']!.ratio).toBeCloseTo(0.5, 10);
    expect(r['e2e-vs-diy']!.pass).toBe(false);
    const fast = Object.fromEntries(computeRatios(photoRuns('photo-heavy', { wallMs: 4000 }), ['photo-heavy']).map((x) => [x.id, x]));
    expect(fast['e2e-vs-cp']!.pass).toBe(true); // 1.0x
    expect(fast['e2e-vs-diy']!.ratio).toBeCloseTo(1.25, 10);
    expect(fast['e2e-vs-diy']!.pass).toBe(true);
  });

  it('card free: the time until each could let go of the card, not the whole run', () => {
    const r = Object.fromEntries(computeRatios(photoRuns(), ['photo-heavy']).map((x) => [x.id, x]));
    expect(r['free-vs-cp']!.ratio).toBeCloseTo(0.8, 10); // 4 s / 5 s
    expect(r['free-vs-cp']!.pass).toBe(false);
    expect(r['free-vs-diy']!.ratio).toBeCloseTo(0.4, 10); // 2 s / 5 s
    expect(r['free-vs-diy']!.pass).toBeNull(); // reported, no goal
    const sooner = computeRatios(photoRuns('photo-heavy', { cardFreeMs: 3200 }), ['photo-heavy']).find((x) => x.id === 'free-vs-cp')!;
    expect(sooner.ratio).toBeCloseTo(1.25, 10);
    expect(sooner.pass).toBe(true);
    // A kluis run whose journal gave no card-free time: no ratio, no verdict.
    const none = photoRuns();
    delete none[3]!.cardFreeMs;
    expect(ratioOf(none, RATIOS.find((s) => s.id === 'free-vs-cp')!, 'photo-heavy').ratio).toBeNull();
  });

  it('compares runs of the same card only', () => {
    const runs = [...photoRuns('photo-heavy'), run('cp+sha256sum', 500e6, 1000, { card: 'video-heavy' }), run('kluis-ingest-fs', 500e6, 4000, { card: 'video-heavy', group: 'kluis' })];
    const all = computeRatios(runs, ['photo-heavy', 'video-heavy']);
    const video = all.filter((x) => x.card === 'video-heavy');
    expect(video.find((x) => x.id === 'e2e-vs-cp')!.ratio).toBeCloseTo(0.25, 10);
    expect(video.find((x) => x.id === 'e2e-vs-diy')!.ratio).toBeNull(); // no DIY run on that card
    expect(video.find((x) => x.id === 'e2e-vs-diy')!.pass).toBeNull();
    expect(all.find((x) => x.card === 'photo-heavy' && x.id === 'e2e-vs-cp')!.ratio).toBeCloseTo(0.4, 10);
  });

  it('a failed run gives no ratio and no verdict', () => {
    const runs = photoRuns('photo-heavy', { ok: false, error: 'boom' });
    const r = computeRatios(runs, ['photo-heavy']).find((x) => x.id === 'e2e-vs-cp')!;
    expect(r.ratio).toBeNull();
    expect(r.pass).toBeNull();
  });

  it('the goals are those of issue 14: no goal against rclone crypt any more, rclone stays reported', () => {
    const goals = RATIOS.filter((s) => s.min !== undefined).map((s) => [s.id, s.subject, s.baseline, s.subjectTime ?? 'wall', s.min]);
    expect(goals).toEqual([
      ['e2e-vs-cp', 'kluis-ingest-fs', 'cp+sha256sum', 'wall', 0.5],
      ['e2e-vs-diy', 'kluis-ingest-fs', 'diy', 'wall', 1],
      ['free-vs-cp', 'kluis-ingest-fs', 'cp+sha256sum', 'cardFree', 1],
    ]);
    const ratios = computeRatios(photoRuns(), ['photo-heavy']);
    const rclone = ratios.find((x) => x.id === 'e2e-vs-rclone')!;
    expect(rclone.ratio).toBeCloseTo(0.3, 10);
    expect(rclone.pass).toBeNull();
  });

  it('goals are listed for every card even when unmeasured; reported-only ratios only where a run exists', () => {
    const ratios = computeRatios(photoRuns(), ['photo-heavy', 'video-heavy']);
    const video = ratios.filter((x) => x.card === 'video-heavy').map((x) => x.id);
    expect(video).toEqual(['e2e-vs-cp', 'e2e-vs-diy', 'free-vs-cp']);
    expect(ratios.some((x) => x.id === 'seal-vs-age')).toBe(false);
    const checks = ratioChecks(ratios);
    expect(checks.map((c) => [c.id, c.value, c.pass])).toEqual([
      ['photo-heavy:e2e-vs-cp', '0.40x', false],
      ['photo-heavy:e2e-vs-diy', '0.50x', false],
      ['photo-heavy:free-vs-cp', '0.80x', false],
      ['video-heavy:e2e-vs-cp', '-', null],
      ['video-heavy:e2e-vs-diy', '-', null],
      ['video-heavy:free-vs-cp', '-', null],
    ]);
    expect(checks[0]!.label).toBe('photo-heavy: kluis end to end / cp+sha256sum (goal >= 0.5x)');
  });

  it('the CPU a goal leaves for a card: card MB / (goal x baseline MB/s) x cores', () => {
    const cp = run('cp+sha256sum', 1000e6, 4000);
    expect(goalCpuBudgetS(1000e6, 0.5, cp, 2)).toBeCloseTo(16, 10);
    expect(goalCpuBudgetS(600e6, 0.5, cp, 3)).toBeCloseTo(14.4, 10);
    expect(goalCpuBudgetS(1000e6, 0.5, undefined, 2)).toBeNull();
    expect(goalCpuBudgetS(1000e6, 0.5, { ...cp, ok: false }, 2)).toBeNull();
    expect(goalCpuBudgetS(1000e6, 0.5, { ...cp, wallMs: 0 }, 2)).toBeNull();
  });
});

describe('bench memory goals', () => {
  const mem = (id: string, bytes: number, peak: number | undefined, extra: Partial<RunResult> = {}): RunResult => {
    const r = run(id, bytes, 10_000, { group: 'memory', rssByProcess: { MainThread: peak ?? 0, ffmpeg: 400e6 }, ...extra });
    delete r.card;
    if (peak !== undefined) r.commandPeakRssBytes = peak;
    return r;
  };

  it('the kluis peak is the run\'s own process, not ffmpeg, whatever Node calls it', () => {
    expect(kluisPeakRss(mem('memory-1g', 1e9, 120e6))).toBe(120e6);
    // Results written before commandPeakRssBytes: the process was named node.
    expect(kluisPeakRss(run('kluis-ingest-fs', 1e9, 1, { rssByProcess: { node: 90e6, ffmpeg: 400e6 } }))).toBe(90e6);
    expect(kluisPeakRss(mem('memory-1g', 1e9, undefined))).toBeNull(); // only names: not guessed
    expect(kluisPeakRss(mem('memory-1g', 1e9, 120e6, { ok: false }))).toBeNull();
  });

  it('judges each kluis run under 300 MB and the growth from the 1 GB to the 4 GB video', () => {
    const whole = run('kluis-ingest-fs', 1e9, 1, { group: 'kluis', commandPeakRssBytes: 250e6 });
    const c = Object.fromEntries(memoryChecks([whole, mem('memory-1g', 1e9, 120e6), mem('memory-4g', 4e9, 140e6)]).map((x) => [x.id, x]));
    expect(Object.keys(c)).toEqual(['photo-heavy:kluis-ingest-fs-rss', 'memory-1g-rss', 'memory-4g-rss', 'memory-growth']);
    expect(c['photo-heavy:kluis-ingest-fs-rss']!.pass).toBe(true);
    expect(c['photo-heavy:kluis-ingest-fs-rss']!.label).toBe('peak RSS of kluis, photo-heavy, fs store (goal < 300 MB)');
    expect(c['memory-1g-rss']!.value).toBe('120 MB (ffmpeg 400 MB)');
    expect(c['memory-4g-rss']!.label).toBe('peak RSS of kluis, one 4.0 GB video (goal < 300 MB)');
    expect(c['memory-growth']!.value).toBe('16.7% (120 MB -> 140 MB)');
    expect(c['memory-growth']!.pass).toBe(true);
    const d = Object.fromEntries(memoryChecks([mem('memory-1g', 1e9, 120e6), mem('memory-4g', 4e9, 310e6)]).map((x) => [x.id, x]));
    expect(d['memory-4g-rss']!.pass).toBe(false);
    expect(d['memory-growth']!.pass).toBe(false);
  });

  it('a failed or unsampled run is no verdict, and without both videos there is no growth line', () => {
    const c = memoryChecks([mem('memory-1g', 1e9, 120e6, { ok: false }), mem('memory-4g', 4e9, undefined)]);
    expect(c.map((x) => [x.id, x.value, x.pass])).toEqual([
      ['memory-1g-rss', 'run failed', null],
      ['memory-4g-rss', 'not sampled', null],
      ['memory-growth', '-', null],
    ]);
    expect(memoryChecks([mem('memory-1g', 1e9, 120e6)]).map((x) => x.id)).toEqual(['memory-1g-rss']);
  });
});

describe('bench document and table', () => {
  const doc = makeDocument({
    date: '2025-01-02T03:04:05.678Z',
    command: 'kluis bench --card-scale 0.1',
    machine,
    versions: { kluis: '0.1.0 (abc1234)', node: 'v24' },
    scale: 0.1,
    loadAverage: 1.5,
    cards: [card('photo-heavy', 1000e6, { cached: true })],
    runs: [
      ...photoRuns('photo-heavy', { commandPeakRssBytes: 90e6, rssByProcess: { MainThread: 90e6, ffmpeg: 30e6, bash: 1e6 } }),
      run('age-card', 0, 0, { ok: false, error: 'exit 1: age missing' }),
      { ...run('memory-1g', 1e9, 20_000, { group: 'memory', commandPeakRssBytes: 150e6 }), card: undefined },
    ],
    notes: ['a note'],
  });

  it('carries the ratios, the summary and every goal', () => {
    expect(doc.schema).toBe('kluis-bench/2');
    expect(doc.ratios.filter((r) => r.min !== undefined)).toHaveLength(3);
    expect(doc.summary.cards.map((c) => c.card)).toEqual(['photo-heavy']);
    expect(doc.summary.goals.map((g) => g.id)).toEqual([
      'photo-heavy:e2e-vs-cp',
      'photo-heavy:e2e-vs-diy',
      'photo-heavy:free-vs-cp',
      'photo-heavy:kluis-ingest-fs-rss',
      'memory-1g-rss',
    ]);
  });

  it('prints the machine, each card with its runs, the memory runs, the ratios, the notes and the summary last', () => {
    const text = formatTable(doc);
    expect(text).toContain('2 cores, Test CPU');
    expect(text).toContain('kluis 0.1.0 (abc1234) | node v24');
    expect(text).toContain('card photo-heavy: photo-heavy things; 1000 MB in 12 files, cached');
    expect(text).toMatch(/cp\+sha256sum\s+250\.0\s+2\.5\s+4\.00\s+2\.00\s+2\.0\s+50/);
    expect(text).toMatch(/diy\s+200\.0.*copy 2\.0 s, exiftool 1\.0 s, rclone 2\.0 s; card free after 2\.0 s/);
    expect(text).toContain('kluis 90 MB; MainThread 90 MB, ffmpeg 30 MB');
    expect(text).toMatch(/age-card\s+FAILED.*age missing/);
    expect(text).toMatch(/memory \(one video per run\)\n.*\n.*\nmemory-1g\s+50\.0/);
    expect(text).toMatch(/photo-heavy: kluis end to end \/ cp\+sha256sum\s+0\.40x\s+goal >= 0\.5x: FAIL/);
    expect(text).toMatch(/photo-heavy: kluis end to end \/ rclone crypt\s+0\.30x\n/);
    expect(text).toContain('note: a note');
    expect(text.indexOf('## Summary')).toBeGreaterThan(text.indexOf('note: a note'));
  });

  it('lists the kluis process first in the RSS note, then every process by name', () => {
    expect(rssBreakdown(run('kluis-ingest-fs', 1, 1, { group: 'kluis', rssByProcess: { ffmpeg: 30e6, node: 90e6 } }))).toBe('node 90 MB, ffmpeg 30 MB');
    expect(rssBreakdown(run('cp+sha256sum', 1, 1, { rssByProcess: { cp: 3e6 } }))).toBe('');
  });

  it('writes the JSON document under <date>-<host>.json and never overwrites one', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-test-'));
    try {
      expect(resultFileName(doc)).toBe('2025-01-02T030405Z-test_host_1.json');
      const a = await writeResultFile(dir, doc);
      const b = await writeResultFile(dir, doc);
      expect(path.basename(a)).toBe('2025-01-02T030405Z-test_host_1.json');
      expect(path.basename(b)).toBe('2025-01-02T030405Z-test_host_1-1.json');
      const back = JSON.parse(await fsp.readFile(a, 'utf8'));
      expect(back.schema).toBe('kluis-bench/2');
      expect(back.scale).toBe(0.1);
      expect(back.cards[0].id).toBe('photo-heavy');
      expect(back.runs.find((r: RunResult) => r.id === 'diy').phasesMs).toEqual({ copy: 2000, exiftool: 1000, rclone: 2000 });
      expect(back.summary.cards[0].e2eVsDiy).toBeCloseTo(0.5, 10);
      expect(back.summary.goals).toHaveLength(5);
      expect(back.machine.cores).toBe(2);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
