/**
 * The spawner (wrappers/spawner.ts). In compiled kluis, an ffprobe or ffmpeg run that only collects
 * its output is started from a small spawner process, so kluis itself is not forked once per tool.
 * These tests load the compiled modules (dist/, built by `npm test`); kluis run from its TypeScript
 * sources, as here through src/, never uses the spawner, which makes src/ the reference:
 * - the tool runs as a child of the spawner, not of this process;
 * - runFfmpeg answers the same through the spawner as when it starts the tool itself: the output,
 *   and each failure's code and message (exit status, timeout, output cap, abort);
 * - a spawner that dies (a run under way, and every later run) leaves kluis to start the tool;
 * - the spawner does not keep node alive, and it goes, with the tool it runs, when its kluis
 *   process is killed with SIGKILL.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KluisError } from '../../src/errors.js';
import * as here from '../../src/wrappers/ffmpeg.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const distFfmpeg = path.join(root, 'dist/wrappers/ffmpeg.js');
const distSpawner = path.join(root, 'dist/wrappers/spawner.js');
type Ffmpeg = typeof import('../../src/wrappers/ffmpeg.js');
type Spawner = typeof import('../../src/wrappers/spawner.js');
let viaSpawner: Ffmpeg;
let spawner: Spawner;

const dir = mkdtempSync(path.join(tmpdir(), 'kluis-spawner-'));
const clip = path.join(dir, 'clip.mp4');

beforeAll(async () => {
  expect(existsSync(distFfmpeg), 'dist/ is built by `npm test` (npm run build)').toBe(true);
  viaSpawner = (await import(pathToFileURL(distFfmpeg).href)) as Ffmpeg;
  spawner = (await import(pathToFileURL(distSpawner).href)) as Spawner;
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10:duration=1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', clip]);
});
afterAll(async () => {
  await spawner?.closeSpawner();
  rmSync(dir, { recursive: true, force: true });
});

/** The failure a run ends in, as code and message. */
async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    const e = err as KluisError;
    return { code: e.code, message: e.message };
  }
  throw new Error('the run did not fail');
}

describe('through the spawner', () => {
  it('runs the tool as a child of the spawner, not of this process', async () => {
    const r = await spawner.runInSpawner('sh', ['-c', 'echo $PPID'], { collectStdout: 1024, stderrTail: 1024, timeoutMs: 10_000 });
    expect(r?.outcome).toBe('exit');
    const pid = spawner.spawnerPid();
    expect(pid).not.toBeNull();
    expect(pid).not.toBe(process.pid);
    expect(Number(r!.stdout.toString().trim())).toBe(pid);
  });

  it('answers what starting the tool here answers: ffprobe JSON and a decoded picture', async () => {
    expect(await viaSpawner.ffprobeJson(clip)).toEqual(await here.ffprobeJson(clip));
    const args = ['-v', 'error', ...here.inputArgs(clip), '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', 'pipe:1'];
    const a = await viaSpawner.runFfmpeg(args, { collectStdout: 1 << 20 });
    const b = await here.runFfmpeg(args, { collectStdout: 1 << 20 });
    expect(a.stdout.subarray(1, 4).toString()).toBe('PNG');
    expect(a.stdout.equals(b.stdout)).toBe(true);
  });

  it('fails as starting the tool here fails: exit status with the stderr tail, timeout, output cap, abort', async () => {
    const missing = ['-v', 'error', ...here.inputArgs(path.join(dir, 'none.mp4')), '-f', 'null', '-'];
    const endless = ['-v', 'error', '-f', 'lavfi', '-i', 'nullsrc=s=64x64', '-f', 'null', '-'];
    const chatty = ['-v', 'error', '-f', 'lavfi', '-i', 'nullsrc=s=64x64:d=2', '-f', 'rawvideo', 'pipe:1'];
    const cases: Array<[string, (f: Ffmpeg) => Promise<unknown>]> = [
      ['exit', (f) => f.runFfmpeg(missing, { collectStdout: 1024 })],
      ['timeout', (f) => f.runFfmpeg(endless, { collectStdout: 1024, timeoutMs: 400 })],
      ['output', (f) => f.runFfmpeg(chatty, { collectStdout: 1000 })],
      ['abort', (f) => f.runFfmpeg(endless, { collectStdout: 1024, signal: AbortSignal.timeout(400) })],
    ];
    for (const [name, run] of cases) {
      const a = await failure(run(viaSpawner));
      const b = await failure(run(here));
      expect({ name, ...a }).toEqual({ name, ...b });
    }
    const exit = await failure(viaSpawner.runFfmpeg(missing, { collectStdout: 1024 }));
    expect(exit.code).toBe('E_SANITIZE_TOOL_FAILED');
    expect(exit.message).toContain('No such file');
  });
});

describe('when the spawner dies', () => {
  it('a run under way is started here instead, and so is every later run in this thread', async () => {
    await viaSpawner.runFfmpeg(['-version'], { collectStdout: 1 << 16 });
    const pid = spawner.spawnerPid();
    expect(pid).not.toBeNull();
    const run = viaSpawner.runFfmpeg(['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=s=64x48:d=0.2', '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', 'pipe:1'], {
      collectStdout: 1 << 20,
    });
    process.kill(pid!, 'SIGKILL');
    const r = await run;
    expect(r.stdout.subarray(1, 4).toString()).toBe('PNG');
    expect(spawner.spawnerPid()).toBeNull();
    expect((await viaSpawner.ffprobeJson(clip)).streams).toHaveLength(1);
    expect(spawner.spawnerPid()).toBeNull();
  });
});

describe('the spawner and its kluis process', () => {
  const script = path.join(dir, 'owner.mjs');
  beforeAll(() => {
    writeFileSync(
      script,
      [
        `const { runFfmpeg } = await import(${JSON.stringify(pathToFileURL(distFfmpeg).href)});`,
        `const { spawnerPid } = await import(${JSON.stringify(pathToFileURL(distSpawner).href)});`,
        `const args = ['-v', 'error', '-f', 'lavfi', '-i', 'nullsrc=s=64x64' + (process.argv[2] === 'short' ? ':d=1' : ''), '-f', 'null', '-'];`,
        `const run = runFfmpeg(args, { collectStdout: 1024, timeoutMs: 60_000 });`,
        `setTimeout(() => console.log(JSON.stringify({ spawner: spawnerPid() })), 300).unref();`,
        `await run;`,
      ].join('\n'),
    );
  });

  /** Gone, or a zombie no one has reaped yet: it runs no more. */
  const running = (pid: number): boolean => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  const childrenOf = (pid: number): number[] =>
    readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

  it('does not keep node alive once its tool has ended', async () => {
    const owner = spawn(process.execPath, [script, 'short'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const code = await new Promise<number | null>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the owner did not end by itself')), 20_000);
      owner.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code).toBe(0);
  });

  it('goes, with the tool it runs, when its owner is killed with SIGKILL', async () => {
    const owner = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => owner.stdout!.once('data', (d: Buffer) => resolve(d.toString())));
    const pid = (JSON.parse(line) as { spawner: number }).spawner;
    expect(running(pid)).toBe(true);
    const tools = childrenOf(pid);
    expect(tools).toHaveLength(1);
    expect(readFileSync(`/proc/${tools[0]}/comm`, 'utf8').trim()).toBe('ffmpeg');
    owner.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while ((running(pid) || running(tools[0]!)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect([running(pid), running(tools[0]!)]).toEqual([false, false]);
  });
});
