// Terminal progress of `kluis ingest`: live bars when stderr is a terminal (run in a real tmux
// pane and read back with capture-pane), plain lines when it is a pipe, nothing with --quiet,
// and stdout stays one JSON document with --json in every case.
// Needs the build (`npx tsc -p .`) and tmux. KLUIS_TEST_ACQUIRE_DELAY_MS (src/cli/seams.ts)
// pauses before each card file so the reading phase lasts long enough to be seen.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kluisBin, makeStation, runKluis, type TestStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { fitWidth, formatEta, plainProgress, renderBar, ttyProgress } from '../../src/cli/progress.js';

const socket = `kluis-progress-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const WIDTH = 100;
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kluis-progress-'));
});

afterAll(() => {
  try {
    tmux('kill-server');
  } catch {
    /* no server left */
  }
  rmSync(tmp, { recursive: true, force: true });
});

function cleanCard(dir: string): string {
  return makeCard(dir, [
    { kind: 'big', name: 'DJI_0001.JPG' },
    { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 3 },
    { kind: 'jpeg', name: 'DJI_0003.JPG' },
  ]);
}

function cardWithProblem(dir: string): string {
  cleanCard(dir);
  writeFileSync(path.join(dir, 'DCIM', '100MEDIA', 'DJI_0009.JPG'), ''); // an empty picture: rejected, batch partial
  return dir;
}

async function poll<T>(fn: () => T | undefined, what: string, tries = 1200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

// ESC, and the visible leftovers of escape codes a broken redraw would leave on screen.
const GARBAGE = /\x1b|\[2K|\[J|\^\[|\[\d+A/;

describe('kluis ingest in a terminal (tmux)', () => {
  let st: TestStation;
  const frames: string[] = [];
  let final = '';
  let outFile = '';

  beforeAll(async () => {
    st = makeStation(path.join(tmp, 'tty-station'));
    const card = cleanCard(path.join(tmp, 'tty-card'));
    outFile = path.join(tmp, 'tty-out.json');
    const cmd =
      `cd ${JSON.stringify(tmp)} && KLUIS_TEST_ACQUIRE_DELAY_MS=700 ${JSON.stringify(process.execPath)} ${JSON.stringify(kluisBin)} ` +
      `ingest ${JSON.stringify(card)} --config ${JSON.stringify(st.config)} --json > ${JSON.stringify(outFile)}; echo "KLUIS-DONE-$?"; exec sleep 600`;
    tmux('new-session', '-d', '-s', 'ingest', '-x', String(WIDTH), '-y', '50', `env -u NO_COLOR -u KLUIS_PROGRESS TERM=xterm-256color bash -c ${JSON.stringify(cmd)}`);
    final = await poll(() => {
      // -J joins lines the terminal wrapped (long error messages), so they read as written.
      const screen = tmux('capture-pane', '-p', '-J', '-t', 'ingest');
      if (screen.includes('  total [')) frames.push(screen);
      return screen.includes('KLUIS-DONE-') ? screen : undefined;
    }, 'the ingest to finish');
  }, 180_000);

  it('draws total and per-file bars with bytes, files, rate and time left while reading', () => {
    expect(frames.length).toBeGreaterThan(0);
    const withFile = frames.find((f) => f.includes('  file  ['));
    expect(withFile, 'a frame with the per-file bar').toBeDefined();
    const lines = withFile!.split('\n');
    const total = lines.find((l) => l.startsWith('  total ['))!;
    expect(total).toMatch(/^ {2}total \[[#-]{10,30}\] +\d{1,3}% [\d.]+ (B|kB|MB|GB)\/[\d.]+ (B|kB|MB|GB) {2}\d+\/\d+ files {2}([\d.]+ (B|kB|MB|GB)|--( MB)?)\/s {2}ETA (--:--|\d+:\d\d(:\d\d)?)$/);
    expect(lines.find((l) => l.startsWith('  file  ['))).toMatch(/^ {2}file {2}\[[#-]{10,30}\] +(\d{1,3}|\?)% DCIM\/100MEDIA\/DJI_000\d\.(JPG|MP4)$/);
    expect(lines.some((l) => /^card .*: reading - do NOT remove$/.test(l))).toBe(true);
    for (const f of frames) {
      expect(f).not.toMatch(GARBAGE);
      // Bar lines are cut to the width: a wrapped bar would break the in-place redraw.
      for (const l of f.split('\n')) if (l.startsWith('  ') || l.startsWith('card ')) expect(l.length).toBeLessThan(WIDTH);
      // Exactly one bar block on screen at a time: no stale copies left behind by a redraw.
      expect(f.split('\n').filter((l) => l.startsWith('  total [')).length).toBe(1);
    }
  });

  it('ends clean: no garbage, no bars left, safe-to-remove once, the last line says SECURED', () => {
    expect(final).not.toMatch(GARBAGE);
    expect(final).toContain('KLUIS-DONE-0');
    const lines = final.split('\n').filter((l) => l.trim() !== '');
    expect(lines.filter((l) => l.includes('SAFE TO REMOVE')).length).toBe(1);
    expect(final).not.toContain('  total [');
    const done = lines.findIndex((l) => l.startsWith('KLUIS-DONE-'));
    expect(lines[done - 1]).toMatch(/^kluis: batch [0-9a-f]+: SECURED/);
  });

  it('keeps stdout to the one JSON document', () => {
    const out = readFileSync(outFile, 'utf8');
    expect(out).not.toMatch(/\x1b/);
    const doc = JSON.parse(out) as { status: string; files: Array<{ path: string; status: string }> };
    expect(doc.status).toBe('secured');
    expect(doc.files.map((f) => f.status)).toEqual(['secured', 'secured', 'secured']);
  });
});

describe('kluis ingest without a terminal', () => {
  it('writes plain lines on stderr (no escape codes, errors included) and only JSON on stdout', () => {
    const st = makeStation(path.join(tmp, 'plain-station'));
    const card = cardWithProblem(path.join(tmp, 'plain-card'));
    const r = runKluis(['ingest', card, '--config', st.config, '--json'], { KLUIS_PROGRESS: '' });
    expect(r.code).toBe(3);
    expect((JSON.parse(r.stdout) as { status: string }).status).toBe('partial');
    expect(r.stderr).not.toMatch(/\x1b|\r/);
    const lines = r.stderr.trim().split('\n');
    for (const l of lines) expect(l).toMatch(/^kluis: /);
    expect(lines.some((l) => /^kluis: reading 100%: 3\/3 files, /.test(l))).toBe(true);
    expect(lines.filter((l) => l.includes('SAFE TO REMOVE')).length).toBe(1);
    expect(lines.some((l) => /^kluis: error: DCIM\/100MEDIA\/DJI_0009\.JPG: .*\[E_INPUT_EMPTY\]$/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^kluis: batch [0-9a-f]+: PARTIAL/);
  });

  it('--quiet leaves out progress (errors still show), stdout is still the JSON', () => {
    const st = makeStation(path.join(tmp, 'quiet-station'));
    const card = cardWithProblem(path.join(tmp, 'quiet-card'));
    const r = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(r.code).toBe(3);
    expect((JSON.parse(r.stdout) as { status: string }).status).toBe('partial');
    expect(r.stderr).not.toMatch(/reading|SAFE TO REMOVE|PARTIAL/);
    expect(r.stderr).toContain('E_INPUT_EMPTY');
  });
});

describe('renderer pieces', () => {
  it('bars, times and widths are plain ASCII and bounded', () => {
    expect(renderBar(0, 10)).toBe('[----------]');
    expect(renderBar(0.5, 10)).toBe('[#####-----]');
    expect(renderBar(2, 4)).toBe('[####]');
    expect(renderBar(Number.NaN, 4)).toBe('[----]');
    expect(formatEta(null)).toBe('--:--');
    expect(formatEta(65)).toBe('1:05');
    expect(formatEta(3725)).toBe('1:02:05');
    expect(fitWidth('x'.repeat(200), 80).length).toBe(79);
  });

  it('redraws in place: each frame moves up over exactly the lines it drew before', () => {
    let out = '';
    let clock = 0;
    const stream = Object.assign(new (class {
      write(s: string): boolean {
        out += s;
        return true;
      }
    })(), { isTTY: true, columns: 80 }) as unknown as NodeJS.WriteStream;
    const p = ttyProgress(stream, {}, { now: () => clock, frameMs: 0, color: false, interceptStderr: true });
    p({ type: 'card-seen', batchId: 'b1', card: '/nonexistent/card', files: 2, bytes: 2000 });
    clock += 1000;
    p({ type: 'acquire-progress', batchId: 'b1', path: 'DCIM/A.JPG', bytesDone: 1000, bytesTotal: 2000, filesDone: 1, filesTotal: 2 });
    // Someone else writes to the same stream while the bars are shown (an error from a stage).
    stream.write('kluis: error: DCIM/X.JPG: broken [E_TEST]\n');
    const middle = replay(out).filter((l) => l !== '');
    expect(middle[0]).toBe('kluis: card /nonexistent/card: 2 files, 2 kB (batch b1)');
    expect(middle[1]).toBe('kluis: error: DCIM/X.JPG: broken [E_TEST]');
    expect(middle[2]).toBe('card /nonexistent/card: reading - do NOT remove');
    expect(middle[3]).toMatch(/^ {2}total \[#{10}-{10}\] +50% 1 kB\/2 kB {2}1\/2 files/);
    expect(middle).toHaveLength(5);
    clock += 1000;
    p({ type: 'acquire-progress', batchId: 'b1', path: 'DCIM/B.JPG', bytesDone: 1500, bytesTotal: 2000, filesDone: 1, filesTotal: 2 });
    p({ type: 'safe-to-remove', batchId: 'b1', card: '/nonexistent/card' });
    p({ type: 'batch-status', batchId: 'b1', status: 'secured' });
    p.finish();
    // Replay the byte stream on a tiny screen model to check what a terminal would show.
    const screen = replay(out);
    expect(screen.filter((l) => l !== '')).toEqual([
      'kluis: card /nonexistent/card: 2 files, 2 kB (batch b1)',
      'kluis: error: DCIM/X.JPG: broken [E_TEST]',
      'kluis: SAFE TO REMOVE the card /nonexistent/card: every file is read and every footage file sealed',
      'kluis: batch b1: SECURED (0 verified deliveries)',
    ]);
  });

  it('plain lines report reading in 25 % steps with rate and time left', () => {
    let out = '';
    let clock = 0;
    const p = plainProgress({ write: (s: string) => ((out += s), true) }, {}, () => clock);
    p({ type: 'card-seen', batchId: 'b1', card: '/c', files: 4, bytes: 4e6 });
    for (let i = 1; i <= 8; i++) {
      clock += 500;
      p({ type: 'acquire-progress', batchId: 'b1', path: 'x', bytesDone: i * 5e5, bytesTotal: 4e6, filesDone: Math.floor(i / 2), filesTotal: 4 });
    }
    const reading = out.split('\n').filter((l) => l.startsWith('kluis: reading'));
    expect(reading.map((l) => l.split(':')[1])).toEqual([' reading 25%', ' reading 50%', ' reading 75%', ' reading 100%']);
    expect(reading[1]).toMatch(/1\.0 MB\/s, 0:02 left$/);
  });
});

/** A minimal terminal: handles \n, \r, ESC[nA (up), ESC[2K (clear line), ESC[J (clear below). */
function replay(stream: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  for (let i = 0; i < stream.length; i++) {
    const ch = stream[i]!;
    if (ch === '\x1b') {
      const m = /^\x1b\[(\d*)([AKJ])/.exec(stream.slice(i));
      if (!m) throw new Error(`unexpected escape at ${i}: ${JSON.stringify(stream.slice(i, i + 8))}`);
      const n = m[1] ? Number(m[1]) : 0;
      if (m[2] === 'A') row = Math.max(0, row - (n || 1));
      if (m[2] === 'K') lines[row] = '';
      if (m[2] === 'J') lines.length = row + 1, (lines[row] = lines[row]!.slice(0, col));
      i += m[0].length - 1;
      continue;
    }
    if (ch === '\r') col = 0;
    else if (ch === '\n') {
      row++;
      col = 0;
      if (lines.length <= row) lines.push('');
    } else {
      const l = lines[row] ?? '';
      lines[row] = l.slice(0, col) + ch + l.slice(col + 1);
      col++;
    }
  }
  return lines;
}

