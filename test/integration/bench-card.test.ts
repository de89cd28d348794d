// The bench harness on a tiny synthetic card made with the real tools (ffmpeg, exiftool, cp,
// sha256sum, age): the card carries the telemetry the sanitizer must remove, every file is
// distinct, the cache is reused, and a measured baseline run reports the card's bytes and files
// and leaves no scratch data behind. Nothing here is timed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildCard, treeSize, TELEMETRY } from '../../src/bench/card.js';
import { runCommand } from '../../src/bench/measure.js';
import { runAgeCard, runCpSha256, type RunContext } from '../../src/bench/runs.js';
import type { CardInfo } from '../../src/bench/report.js';

const tiny = {
  clip: { width: 320, height: 240, seconds: 1, fps: 10 },
  jpeg: { width: 320, height: 240, noise: 30 },
};

let root: string;
let card: CardInfo;

beforeAll(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-card-test-'));
  card = await buildCard(600_000, { ...tiny, cacheDir: path.join(root, 'cache') });
});

afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

describe('synthetic bench card', () => {
  it('has DCIM/100MEDIA with videos, SRT sidecars and JPEGs, all distinct, as counted', async () => {
    const media = path.join(card.path, 'DCIM', '100MEDIA');
    const names = (await fsp.readdir(media)).sort();
    expect(names.filter((n) => n.endsWith('.MP4'))).toHaveLength(card.videos);
    expect(names.filter((n) => n.endsWith('.SRT'))).toHaveLength(card.sidecars);
    expect(names.filter((n) => n.endsWith('.JPG'))).toHaveLength(card.jpegs);
    expect(card.jpegs).toBeGreaterThanOrEqual(2);
    expect(card.files).toBe(names.length);
    expect(await treeSize(card.path)).toEqual({ bytes: card.bytes, files: card.files });
    const hashes = new Set<string>();
    for (const n of names) hashes.add(createHash('sha256').update(await fsp.readFile(path.join(media, n))).digest('hex'));
    expect(hashes.size).toBe(names.length);
  });

  it('carries DJI-like telemetry: udta location in the video, GPS and serial in the JPEG', () => {
    const media = path.join(card.path, 'DCIM', '100MEDIA');
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', path.join(media, 'DJI_0001.MP4')], { encoding: 'utf8' }));
    expect(probe.format.tags.location).toBe(TELEMETRY.location);
    expect(probe.streams.map((s: { codec_name: string }) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    const jpeg = (execFileSync('ls', [media], { encoding: 'utf8' }).split('\n').find((n) => n.endsWith('.JPG')))!;
    const tags = JSON.parse(execFileSync('exiftool', ['-j', '-n', '-Make', '-SerialNumber', '-GPSLatitude', '-Comment', path.join(media, jpeg)], { encoding: 'utf8' }))[0];
    expect(tags.Make).toBe('DJI');
    expect(tags.SerialNumber).toBe(TELEMETRY.serial);
    expect(tags.GPSLatitude).toBeCloseTo(52.3676, 3);
    expect(tags.Comment).toMatch(/^kluis bench variant \d+/);
  });

  it('is reused from the cache on the next build', async () => {
    const again = await buildCard(600_000, { ...tiny, cacheDir: path.join(root, 'cache') });
    expect(again.cached).toBe(true);
    expect(again.path).toBe(card.path);
    expect(again.bytes).toBe(card.bytes);
  });
});

describe('measured runs', () => {
  it('runCommand reports the exit code, CPU and a peak RSS of a real child', async () => {
    const r = await runCommand('bash', ['-c', 'head -c 3000000 /dev/zero | sha256sum; exit 3']);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^[0-9a-f]{64} {2}-/);
    expect(r.peakRssBytes).toBeGreaterThan(0);
    expect(r.cpuUserMs + r.cpuSysMs).toBeGreaterThanOrEqual(0);
    expect(r.wallMs).toBeGreaterThan(0);
  });

  it('runCommand stops a run that outlives its timeout, with everything it started', async () => {
    const r = await runCommand('bash', ['-c', 'sleep 60 & sleep 60; echo never'], { timeoutMs: 500 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain('never');
    expect(r.stderrTail).toMatch(/timed out/);
  });

  it('cp+sha256sum and age over the card count its bytes and files and clean up after themselves', async () => {
    const work = path.join(root, 'work');
    await fsp.mkdir(work, { recursive: true });
    const ctx: RunContext = { card, work, keep: false, log: () => undefined };
    const cp = await runCpSha256(ctx);
    expect(cp.ok).toBe(true);
    expect(cp.error).toBeUndefined();
    expect(cp.bytes).toBe(card.bytes);
    expect(cp.files).toBe(card.files);
    expect(cp.peakRssBytes).toBeGreaterThan(0);
    const age = await runAgeCard(ctx);
    expect(age.ok).toBe(true);
    expect(age.files).toBe(card.files);
    expect(await fsp.readdir(work)).toEqual([]);
  });
});
