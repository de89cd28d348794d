/**
 * Memory stays bounded however large the video: a ~1 GB MP4 (a 4 s lossless-noise clip joined 30
 * times with stream copy) is sanitized while the test samples this process's RSS. If any step
 * held the file (or its packets) in memory, RSS would grow by about a gigabyte; the bound is
 * 200 MB. There is no time assertion.
 */
import { afterAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sanitizeVideo } from '../../src/sanitize/video/index.js';
import { scratch } from './sanitize-video-helpers.js';

const tmp = scratch('video-memory');
afterAll(() => tmp.done());

it('sanitizes a ~1 GB MP4 with bounded memory in this process', async () => {
  const clip = path.join(tmp.dir, 'clip.mp4');
  execFileSync('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', 'nullsrc=s=640x360:r=25:d=4,geq=random(1)*255:128:128',
    '-f', 'lavfi', '-i', 'sine=d=4',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-c:a', 'aac', '-f', 'mp4', clip,
  ]);
  const list = path.join(tmp.dir, 'list.txt');
  await fsp.writeFile(list, Array.from({ length: 30 }, () => `file '${clip}'\n`).join(''));
  const big = path.join(tmp.dir, 'big.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', '-f', 'mp4', big]);
  await fsp.rm(clip);
  const size = (await fsp.stat(big)).size;
  expect(size).toBeGreaterThan(1_000_000_000);

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const out = path.join(tmp.dir, 'out.mp4');
    const result = await sanitizeVideo(big, out, { thermal: 'keep' }, 'mp4');
    expect(result.essence).toHaveLength(2);
    for (const e of result.essence) expect(e.after).toBe(e.before);
    expect(result.size).toBeGreaterThan(1_000_000_000);
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  const growth = peak - baseline;
  expect(growth, `RSS grew by ${Math.round(growth / 1e6)} MB while sanitizing ${Math.round(size / 1e6)} MB`).toBeLessThan(200_000_000);
}, 180_000);
