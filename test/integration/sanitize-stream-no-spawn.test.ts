/**
 * Issue 14: no child process per file on the hot path. Once the persistent ExifTool runs,
 * sanitizeStream on real JPEGs and a TIFF starts no process at all (no ffmpeg decode, no one-shot
 * ExifTool): every spawn/execFile of node:child_process is counted.
 */
import * as cp from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, test, vi } from 'vitest';

vi.mock('node:child_process', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:child_process')>();
  return { ...real, spawn: vi.fn(real.spawn), execFile: vi.fn(real.execFile), spawnSync: vi.fn(real.spawnSync), execFileSync: vi.fn(real.execFileSync) };
});

const { sanitizeStream } = await import('../../src/sanitize/index.js');
const { exiftoolStayOpenPid } = await import('../../src/wrappers/exiftool.js');

const REAL = path.resolve('test/fixtures/real/image');
const scratch = mkdtempSync(path.join(tmpdir(), 'kluis-nospawn-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function run(name: string, format: 'jpeg' | 'tiff'): Promise<void> {
  const input = readFileSync(path.join(REAL, name));
  let bytes = 0;
  await sanitizeStream(
    { size: input.length, read: async (p, n) => input.subarray(p, p + n) },
    { write: async (c) => void (bytes += c.length) },
    { thermal: 'keep' },
    { format, scratchDir: scratch, thumbnail: { maxEdge: 320 } },
  );
  expect(bytes).toBeGreaterThan(0);
}

test('after the persistent ExifTool started, sanitizing pictures starts no process', async () => {
  await run('mavic3pro_xmp.jpg', 'jpeg'); // starts the persistent ExifTool
  const pid = exiftoolStayOpenPid();
  expect(pid).toBeGreaterThan(0);
  const spawned = [cp.spawn, cp.execFile, cp.spawnSync, cp.execFileSync] as unknown as Array<ReturnType<typeof vi.fn>>;
  // The count sees the wrapper's processes: starting the persistent ExifTool was one.
  expect(spawned[0]!.mock.calls.length).toBeGreaterThan(0);
  for (const f of spawned) f.mockClear();
  for (const [name, format] of [
    ['DJI_H20T.jpg', 'jpeg'],
    ['M30T_DJI_0001_R.JPG', 'jpeg'],
    ['mavic2pro_makernotes.jpg', 'jpeg'],
    ['xt2_radiometric.tiff', 'tiff'],
  ] as const) {
    await run(name, format);
  }
  expect(spawned.map((f) => f.mock.calls.length)).toEqual([0, 0, 0, 0]);
  expect(exiftoolStayOpenPid()).toBe(pid);
});
