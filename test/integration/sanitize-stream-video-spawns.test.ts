/**
 * Issue 14 for video: no child process reads the whole file. Once the persistent ExifTool runs,
 * sanitizeStream on an MP4 starts exactly one process, the ffmpeg decode of the first picture, and
 * it reads the output's prefix file in the scratch folder, which is a small part of the output; the
 * input is never handed to a child. The movie header is read in process (mp4box.js), not by a
 * child. Every spawn of node:child_process is counted.
 */
import * as cp from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, test, vi } from 'vitest';

vi.mock('node:child_process', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:child_process')>();
  return { ...real, spawn: vi.fn(real.spawn), execFile: vi.fn(real.execFile), spawnSync: vi.fn(real.spawnSync), execFileSync: vi.fn(real.execFileSync) };
});

const { sanitizeStream } = await import('../../src/sanitize/index.js');
const { exiftool, exiftoolStayOpenPid } = await import('../../src/wrappers/exiftool.js');

const dir = mkdtempSync(path.join(tmpdir(), 'kluis-video-spawns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('sanitizing an MP4 starts one ffmpeg decode, on the first bytes of the output only, and reads the header in process', async () => {
  const input = path.join(dir, 'in.mp4');
  // Random noise does not compress: about 8 MB, so the prefix (first keyframe, at least 1 MiB) is a small part.
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'nullsrc=s=320x240:r=25:d=4,geq=random(1)*255:128:128', '-f', 'lavfi', '-i', 'sine=d=4',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-g', '25', '-c:a', 'aac', input]);
  const bytes = readFileSync(input);
  expect(bytes.length).toBeGreaterThan(6_000_000);
  await exiftool(['-ver'], input); // the persistent ExifTool is up before counting
  const pid = exiftoolStayOpenPid();
  const spawn = cp.spawn as unknown as ReturnType<typeof vi.fn>;
  const others = [cp.execFile, cp.spawnSync, cp.execFileSync] as unknown as Array<ReturnType<typeof vi.fn>>;
  spawn.mockClear();
  for (const f of others) f.mockClear();

  // The size of the file each child is given, when it is given it.
  const real = await vi.importActual<typeof import('node:child_process')>('node:child_process');
  const prefixSizes: number[] = [];
  spawn.mockImplementation(((cmd: string, argv: string[], opts: cp.SpawnOptions) => {
    const f = argv.find((a) => a.startsWith('file:'));
    if (f) prefixSizes.push(statSync(f.slice('file:'.length)).size);
    return real.spawn(cmd, argv, opts);
  }) as never);
  let out = 0;
  const r = await sanitizeStream(
    { size: bytes.length, read: async (p, n) => bytes.subarray(p, p + n) },
    { write: async (c) => void (out += c.length) },
    { thermal: 'keep' },
    { format: 'mp4', scratchDir: dir, thumbnail: { maxEdge: 96 } },
  );
  expect(r.essence.map((e) => ('track' in e ? [e.method, e.track] : [e.method]))).toEqual([['mp4-samples-sha256', 1], ['mp4-samples-sha256', 2]]);
  expect(out).toBe(r.size);
  expect(r.thumbnail?.length).toBeGreaterThan(0);

  const calls = spawn.mock.calls as Array<[string, string[]]>;
  expect(calls.map((c) => c[0]).sort()).toEqual(['ffmpeg']);
  expect(r.checks.map((k) => [k.tool, k.found])).toEqual([['box-walker', []], ['exiftool', []], ['mp4box', []]]);
  for (const [, argv] of calls) {
    const inputs = argv.filter((a) => a.startsWith('file:'));
    expect(inputs).toHaveLength(1);
    expect(inputs[0]).toMatch(/\.prefix\.mp4$/);
    expect(inputs[0]).not.toContain('in.mp4');
  }
  expect(prefixSizes).toHaveLength(1);
  for (const n of prefixSizes) expect(n).toBeLessThan(out / 3);
  for (const f of others) expect(f.mock.calls.length).toBe(0);
  expect(exiftoolStayOpenPid()).toBe(pid);
});
