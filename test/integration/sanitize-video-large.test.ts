/**
 * A multi-GB output through the rewriter with memory that does not grow with the size: a sparse
 * input whose video track lists 17 samples of 256 MiB of zeros after a real first second
 * (./video-layouts.ts appendZeroSamples), so the output passes 4 GiB (co64, a 64-bit mdat header)
 * and every one of its 4.3 GB is read, hashed on both sides of the proof and handed to a sink,
 * while this process's RSS is sampled. The sink hashes what it gets, independently of the
 * sanitizer. No time assertion.
 */
import { afterAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { openFileSource } from '../../src/sanitize/stream-io.js';
import { sanitizeVideoStream } from '../../src/sanitize/video/index.js';
import { scratch } from './sanitize-video-helpers.js';
import { appendZeroSamples, headFacts } from './video-layouts.js';

const tmp = scratch('video-large');
afterAll(() => tmp.done());

it('sanitizes a 4.3 GB output (co64, 64-bit mdat) with bounded memory in this process', async () => {
  const clip = path.join(tmp.dir, 'clip.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=640x360:r=25:d=1',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-pix_fmt', 'yuv420p', clip]);
  const big = path.join(tmp.dir, 'big.mp4');
  const size = await appendZeroSamples(clip, big, 17, 256 << 20);
  expect(size).toBeGreaterThan(2 ** 32);
  const scratchDir = path.join(tmp.dir, 'scratch');
  await fsp.mkdir(scratchDir);

  const sinkHash = createHash('sha256');
  let written = 0;
  const head: Buffer[] = [];
  let headBytes = 0;
  const sink = {
    write: async (b: Buffer): Promise<void> => {
      sinkHash.update(b);
      written += b.length;
      if (headBytes < 1 << 20) {
        head.push(Buffer.from(b.subarray(0, (1 << 20) - headBytes)));
        headBytes += Math.min(b.length, (1 << 20) - headBytes);
      }
    },
  };

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const src = await openFileSource(big);
  try {
    const result = await sanitizeVideoStream(src, sink, { thermal: 'keep' }, { format: 'mp4', scratchDir });
    expect(result.size).toBe(written);
    expect(result.size).toBeGreaterThan(2 ** 32);
    expect(result.sha256).toBe(sinkHash.digest('hex'));
    expect(result.essence).toHaveLength(1);
    expect(result.essence[0]!.after).toBe(result.essence[0]!.before);
    expect(result.essence[0]).toMatchObject({ method: 'mp4-samples-sha256', track: 1, about: { kind: 'video', codec: 'h264', samples: 42 } });
  } finally {
    clearInterval(timer);
    await src.close();
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  const facts = headFacts(Buffer.concat(head));
  expect(facts.offsets).toEqual(['co64']);
  expect(facts.mdatHeader).toBe(16);
  expect(facts.mdatSize).toBeGreaterThan(2 ** 32);
  expect(await fsp.readdir(scratchDir)).toEqual([]);
  const growth = peak - baseline;
  console.log(`RSS grew by ${Math.round(growth / 1e6)} MB while sanitizing ${Math.round(written / 1e6)} MB`);
  expect(growth, `RSS grew by ${Math.round(growth / 1e6)} MB while sanitizing ${Math.round(written / 1e6)} MB`).toBeLessThan(64_000_000);
}, 600_000);
