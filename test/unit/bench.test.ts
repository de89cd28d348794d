// The benchmark's arithmetic and output: MB/s and ratios, goals, memory checks, the table and the
// JSON writer. Synthetic RunResults only; nothing here is timed.
import { describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  cardFreeNotes,
  computeRatios,
  filesPerSecond,
  formatTable,
  makeDocument,
  mbPerSecond,
  memoryChecks,
  goalCpuBudgetS,
  proofBudgetChecks,
  resultFileName,
  writeResultFile,
  type RunResult,
} from '../../src/bench/report.js';
import { parseSize, planCard, jpegVariant } from '../../src/bench/card.js';
import { parseTimeOutput } from '../../src/bench/measure.js';
import { selector } from '../../src/bench/select.js';
import { cardFreeMs, ingestProblem } from '../../src/bench/runs.js';
import { Sqlite } from '../../src/util/sqlite.js';

function run(id: string, bytes: number, wallMs: number, extra: Partial<RunResult> = {}): RunResult {
  return {
    id,
    label: id,
    group: 'baseline',
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

describe('bench figures', () => {
  it('MB/s counts 10^6 bytes per second, files/s files per second', () => {
    expect(mbPerSecond({ bytes: 300e6, wallMs: 2000 })).toBe(150);
    expect(filesPerSecond({ files: 10, wallMs: 4000 })).toBe(2.5);
    expect(mbPerSecond({ bytes: 1, wallMs: 0 })).toBe(0);
  });

  it('ratios are subject MB/s over baseline MB/s, judged against each goal', () => {
    const runs = [
      run('cp+sha256sum', 1000e6, 4000), // 250 MB/s
      run('rclone-crypt', 1000e6, 10000), // 100 MB/s
      run('kluis-ingest-fs', 1000e6, 5000, { group: 'kluis' }), // 200 MB/s
      run('age-file', 500e6, 1000), // 500 MB/s
      run('seal-sodium', 500e6, 2500, { group: 'stage' }), // 200 MB/s
    ];
    const r = Object.fromEntries(computeRatios(runs).map((x) => [x.id, x]));
    expect(r['e2e-vs-cp']!.ratio).toBeCloseTo(0.8, 10);
    expect(r['e2e-vs-cp']!.pass).toBe(true);
    expect(r['e2e-vs-rclone']!.ratio).toBeCloseTo(2, 10);
    expect(r['e2e-vs-rclone']!.pass).toBe(true);
    expect(r['seal-vs-age']!.ratio).toBeCloseTo(0.4, 10);
    expect(r['seal-vs-age']!.pass).toBe(false); // 2.5x slower than age: outside "within 2x"
    expect(r['s3-vs-cp']!.ratio).toBeNull(); // no S3 run
    expect(r['s3-vs-cp']!.pass).toBeNull();
  });

  it('a failed run gives no ratio and no verdict', () => {
    const runs = [run('cp+sha256sum', 1e9, 4000), run('kluis-ingest-fs', 1e9, 1000, { ok: false, error: 'boom' })];
    const r = computeRatios(runs).find((x) => x.id === 'e2e-vs-cp')!;
    expect(r.ratio).toBeNull();
    expect(r.pass).toBeNull();
  });

  it('memory checks use the kluis (node) peak, not ffmpeg, and judge growth', () => {
    const small = run('memory-1g', 1e9, 10000, { group: 'memory', rssByProcess: { node: 120e6, ffmpeg: 400e6 } });
    const large = run('memory-4g', 4e9, 40000, { group: 'memory', rssByProcess: { node: 140e6, ffmpeg: 420e6 } });
    const c = Object.fromEntries(memoryChecks([small, large]).map((x) => [x.id, x]));
    expect(c['memory-1g-rss']!.pass).toBe(true);
    expect(c['memory-4g-rss']!.pass).toBe(true);
    expect(c['memory-growth']!.value).toBe('16.7%');
    expect(c['memory-growth']!.pass).toBe(true);
    const grown = run('memory-4g', 4e9, 40000, { group: 'memory', rssByProcess: { node: 310e6 } });
    const d = Object.fromEntries(memoryChecks([small, grown]).map((x) => [x.id, x]));
    expect(d['memory-4g-rss']!.pass).toBe(false);
    expect(d['memory-growth']!.pass).toBe(false);
  });

  it('the table shows every run, the ratios with their verdicts and the machine', () => {
    const doc = makeDocument({
      date: '2025-01-02T03:04:05.678Z',
      command: 'kluis bench --size 1G',
      machine,
      versions: { node: 'v20', age: '1.1.1' },
      card: { path: '/tmp/c', bytes: 1e9, files: 12, jpegs: 10, videos: 1, sidecars: 1, cached: true },
      runs: [
        run('cp+sha256sum', 1000e6, 4000),
        run('kluis-ingest-fs', 1000e6, 5000, { group: 'kluis', rssByProcess: { node: 90e6, ffmpeg: 30e6 } }),
        run('rclone-crypt', 0, 0, { ok: false, error: 'exit 1: rclone missing' }),
      ],
      notes: ['a note'],
    });
    const text = formatTable(doc);
    expect(text).toContain('2 cores, Test CPU');
    expect(text).toContain('node v20 | age 1.1.1');
    expect(text).toContain('card: 1000 MB in 12 files (1 videos, 10 JPEGs, 1 sidecars), cached');
    expect(text).toMatch(/cp\+sha256sum\s+250\.0\s+2\.5\s+4\.00\s+2\.00\s+50/);
    expect(text).toMatch(/kluis-ingest-fs\s+200\.0/);
    expect(text).toContain('kluis(node) 90 MB, ffmpeg 30 MB');
    expect(text).toMatch(/rclone-crypt\s+FAILED.*rclone missing/);
    expect(text).toMatch(/kluis ingest \(fs\) \/ cp\+sha256sum\s+0\.80x\s+goal >= 0\.5x: PASS/);
    expect(text).toMatch(/kluis ingest \(fs\) \/ rclone crypt\s+-\s+goal >= 2x: NOT MEASURED/);
    expect(text).toContain('note: a note');
  });

  it('writes the JSON document under <date>-<host>.json and never overwrites one', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-test-'));
    try {
      const doc = makeDocument({ date: '2025-01-02T03:04:05.678Z', command: 'x', machine, versions: {}, runs: [run('cp+sha256sum', 1e9, 4000)], notes: [] });
      expect(resultFileName(doc)).toBe('2025-01-02T030405Z-test_host_1.json');
      const a = await writeResultFile(dir, doc);
      const b = await writeResultFile(dir, doc);
      expect(path.basename(a)).toBe('2025-01-02T030405Z-test_host_1.json');
      expect(path.basename(b)).toBe('2025-01-02T030405Z-test_host_1-1.json');
      const back = JSON.parse(await fsp.readFile(a, 'utf8'));
      expect(back.schema).toBe('kluis-bench/1');
      expect(back.runs[0].id).toBe('cp+sha256sum');
      expect(back.ratios.find((r: { id: string }) => r.id === 'e2e-vs-cp').ratio).toBeNull();
      expect(back.machine.cores).toBe(2);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bench photo proof floor against the CPU budget of the goals', () => {
  // 1000 MB card; cp+sha256sum at 250 MB/s and rclone crypt at 100 MB/s. The 0.5x cp goal means
  // kluis at 125 MB/s: 8 s of wall, 16 CPU s on 2 cores. The 2x rclone goal means 200 MB/s: 5 s,
  // 10 CPU s. The floor needs 12 CPU s: inside the first budget, outside the second.
  const floor = run('stage-proof-floor', 500e6, 9000, { group: 'stage', cpuUserMs: 11000, cpuSysMs: 1000 });
  const cp = run('cp+sha256sum', 1000e6, 4000);
  const rclone = run('rclone-crypt', 1000e6, 10000);

  it('the budget is card MB / (goal x baseline MB/s) x cores', () => {
    expect(goalCpuBudgetS(1000e6, 0.5, cp, 2)).toBeCloseTo(16, 10);
    expect(goalCpuBudgetS(1000e6, 2, rclone, 2)).toBeCloseTo(10, 10);
    expect(goalCpuBudgetS(600e6, 0.5, cp, 3)).toBeCloseTo(14.4, 10); // 600 MB at 125 MB/s = 4.8 s, x3 cores
    expect(goalCpuBudgetS(1000e6, 0.5, undefined, 2)).toBeNull();
    expect(goalCpuBudgetS(1000e6, 0.5, { ...cp, ok: false }, 2)).toBeNull();
    expect(goalCpuBudgetS(1000e6, 0.5, { ...cp, wallMs: 0 }, 2)).toBeNull();
  });

  it('compares the floor CPU with each end-to-end goal and says it in one line', () => {
    const c = Object.fromEntries(proofBudgetChecks([cp, rclone, floor], 1000e6, 2).map((x) => [x.id, x]));
    expect(Object.keys(c).sort()).toEqual(['proof-floor-vs-e2e-vs-cp', 'proof-floor-vs-e2e-vs-rclone']);
    const vsCp = c['proof-floor-vs-e2e-vs-cp']!;
    expect(vsCp.value).toBe('photo decodes alone need 12.0 CPU s; the 0.5x cp+sha256sum goal allows 16.0 CPU s for the whole card on 2 cores');
    expect(vsCp.pass).toBe(true);
    expect(vsCp.figures).toEqual({ needCpuS: 12, budgetCpuS: 16, cardBytes: 1000e6, baselineMBps: 250, goal: 0.5, cores: 2 });
    const vsRclone = c['proof-floor-vs-e2e-vs-rclone']!;
    expect(vsRclone.value).toContain('the 2x rclone-crypt goal allows 10.0 CPU s');
    expect(vsRclone.pass).toBe(false);
  });

  it('a missing or failed row gives "-" and no verdict; no floor row, no line', () => {
    expect(proofBudgetChecks([cp, rclone], 1000e6, 2)).toEqual([]);
    const noRclone = proofBudgetChecks([cp, floor], 1000e6, 2).find((x) => x.id === 'proof-floor-vs-e2e-vs-rclone')!;
    expect(noRclone.value).toBe('photo decodes alone need 12.0 CPU s; the 2x rclone-crypt goal allows - (no rclone-crypt run) for the whole card on 2 cores');
    expect(noRclone.pass).toBeNull();
    expect(noRclone.figures?.budgetCpuS).toBeNull();
    expect(noRclone.figures?.baselineMBps).toBeNull();
    const failedCp = proofBudgetChecks([{ ...cp, ok: false }, floor], 1000e6, 2).find((x) => x.id === 'proof-floor-vs-e2e-vs-cp')!;
    expect(failedCp.value).toContain('allows - (cp+sha256sum run failed)');
    expect(failedCp.pass).toBeNull();
    const failedFloor = proofBudgetChecks([cp, rclone, { ...floor, ok: false }], 1000e6, 2).find((x) => x.id === 'proof-floor-vs-e2e-vs-cp')!;
    expect(failedFloor.value).toBe('photo decodes alone need - (the floor run failed); the 0.5x cp+sha256sum goal allows 16.0 CPU s for the whole card on 2 cores');
    expect(failedFloor.pass).toBeNull();
    expect(failedFloor.figures?.needCpuS).toBeNull();
    const noCard = proofBudgetChecks([cp, floor], null, 2).find((x) => x.id === 'proof-floor-vs-e2e-vs-cp')!;
    expect(noCard.value).toContain('allows - (no card)');
    expect(noCard.pass).toBeNull();
  });

  it('the document carries the lines in its checks, and the table prints them', () => {
    const doc = makeDocument({
      date: '2025-01-02T03:04:05.678Z',
      command: 'kluis bench',
      machine,
      versions: {},
      card: { path: '/tmp/c', bytes: 1000e6, files: 12, jpegs: 10, videos: 1, sidecars: 1, cached: false },
      runs: [cp, floor],
      notes: [],
    });
    expect(doc.checks.map((c) => c.id)).toEqual(['proof-floor-vs-e2e-vs-cp', 'proof-floor-vs-e2e-vs-rclone']);
    const text = formatTable(doc);
    expect(text).toMatch(/photo proof floor within the CPU the 0\.5x cp\+sha256sum goal allows\s+photo decodes alone need 12\.0 CPU s; .*allows 16\.0 CPU s .* PASS/);
    expect(text).toMatch(/the 2x rclone-crypt goal allows - \(no rclone-crypt run\) for the whole card on 2 cores\s+NOT MEASURED/);
  });
});

describe('bench inputs', () => {
  it('parses sizes in powers of ten, and binary with i', () => {
    expect(parseSize('2G')).toBe(2e9);
    expect(parseSize('1.5GB')).toBe(1.5e9);
    expect(parseSize('500m')).toBe(500e6);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('12345')).toBe(12345);
    expect(() => parseSize('lots')).toThrow(/cannot read the size/);
    expect(() => parseSize('0G')).toThrow(/more than 0/);
  });

  it('plans about half the bytes as JPEGs and the rest as whole clip repeats', () => {
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

  it('JPEG variants differ, keep SOI first and carry a well-formed COM segment', () => {
    const base = Buffer.from([0xff, 0xd8, 0xff, 0xdb, 0x00, 0x02, 0xff, 0xd9]);
    const a = jpegVariant(base, 1);
    const b = jpegVariant(base, 2);
    expect(a.equals(b)).toBe(false);
    expect([a[0], a[1], a[2], a[3]]).toEqual([0xff, 0xd8, 0xff, 0xfe]);
    const len = a.readUInt16BE(4);
    expect(a.subarray(4 + len, 4 + len + 2)).toEqual(Buffer.from([0xff, 0xdb])); // the rest follows intact
    expect(a.subarray(4 + len)).toEqual(base.subarray(2));
    expect(() => jpegVariant(Buffer.from([0, 1, 2]), 1)).toThrow(/SOI/);
  });

  it('reads GNU time output', () => {
    expect(parseTimeOutput('1.50 0.75 0.25 20480\n')).toEqual({ wallS: 1.5, userS: 0.75, sysS: 0.25, maxRssKb: 20480 });
    expect(parseTimeOutput('Command exited with non-zero status 1\n0.01 0.00 0.00 1000\n')?.maxRssKb).toBe(1000);
    expect(parseTimeOutput('garbage')).toBeNull();
  });

  it('--only names map to run ids; unknown names are refused', () => {
    const want = selector(['seal', 'cp']);
    expect(want('seal-sodium')).toBe(true);
    expect(want('age-file')).toBe(true);
    expect(want('cp+sha256sum')).toBe(true);
    expect(want('kluis-ingest-fs')).toBe(false);
    expect(selector(null)('anything')).toBe(true);
    expect(() => selector(['nope'])).toThrow(/unknown run 'nope'/);
  });

  it('an ingest counts only when the batch and every footage file are secured', () => {
    const ok = { status: 'secured', files: [{ path: 'a', class: 'footage', status: 'secured' }, { path: 'b.SRT', class: 'sidecar', status: 'withheld' }] };
    expect(ingestProblem(JSON.stringify(ok))).toBeNull();
    const bad = { status: 'partial', files: [{ path: 'a', class: 'footage', status: 'failed', error: { code: 'E_X', message: 'nope' } }] };
    expect(ingestProblem(JSON.stringify(bad))).toMatch(/batch partial; 1\/1 footage files not secured \(first: a E_X nope\)/);
    expect(ingestProblem('not json')).toBe('ingest printed no JSON');
  });
});

describe('card free after (what the operator waits for)', () => {
  it('gives the card-read rate of each kluis run, against cp+sha256sum when it ran', () => {
    const runs = [
      run('cp+sha256sum', 1000e6, 4000), // 250 MB/s
      run('kluis-ingest-fs', 1000e6, 50_000, { group: 'kluis', label: 'kluis fs', cardFreeMs: 8000 }), // card at 125 MB/s
      run('kluis-ingest-s3', 1000e6, 60_000, { group: 'kluis', label: 'kluis s3' }), // none recorded
    ];
    expect(cardFreeNotes(runs)).toEqual(['kluis fs: card free (safe to remove) after 8.0 s, read at 125.0 MB/s, 0.50x cp+sha256sum']);
    expect(cardFreeNotes(runs.slice(1))).toEqual(['kluis fs: card free (safe to remove) after 8.0 s, read at 125.0 MB/s']);
    expect(cardFreeNotes([run('kluis-ingest-fs', 1e9, 1, { group: 'kluis', cardFreeMs: 5, ok: false })])).toEqual([]);
    const doc = makeDocument({ date: '2025-01-02T03:04:05.678Z', command: 'x', machine, versions: {}, runs, notes: ['load'] });
    expect(doc.notes).toEqual([cardFreeNotes(runs)[0], 'load']);
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
