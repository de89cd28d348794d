// The bench harness on tiny synthetic cards made with the real tools (ffmpeg, exiftool, cp,
// sha256sum, age, rclone): the cards carry the telemetry the sanitizer must remove, every file is
// distinct, the cache is reused, and the measured baseline runs (the do-it-yourself pipeline
// included) report the card's bytes and files, their steps, and leave no scratch data behind.
// Nothing here is timed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildCard, buildClipsCard, treeSize, TELEMETRY } from '../../src/bench/card.js';
import { runDiy } from '../../src/bench/diy.js';
import { runCommand } from '../../src/bench/measure.js';
import { runAgeCard, runCpSha256, type RunContext } from '../../src/bench/runs.js';
import type { CardInfo } from '../../src/bench/result.js';

const tiny = {
  clip: { width: 320, height: 240, seconds: 1, fps: 10 },
  jpeg: { width: 320, height: 240, noise: 30 },
  clips: { clips: 3, clipSeconds: 2, jpegs: 2, base: { width: 320, height: 240, seconds: 1, fps: 10, videoKbps: 300 } },
};

let root: string;
let card: CardInfo;

beforeAll(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-card-test-'));
  card = await buildCard('photo-heavy', 600_000, { ...tiny, cacheDir: path.join(root, 'cache') });
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
    const again = await buildCard('photo-heavy', 600_000, { ...tiny, cacheDir: path.join(root, 'cache') });
    expect(again.cached).toBe(true);
    expect(again.path).toBe(card.path);
    expect(again.bytes).toBe(card.bytes);
    expect(again.description).toBe(card.description);
  });
});

describe('synthetic video-heavy card', () => {
  it('has the planned clips of the clip length and the JPEGs, every file its own, telemetry in udta', async () => {
    const clips = await buildClipsCard('video-heavy', 1, { ...tiny, cacheDir: path.join(root, 'cache') });
    expect([clips.id, clips.videos, clips.jpegs, clips.sidecars, clips.files]).toEqual(['video-heavy', 3, 2, 0, 5]);
    expect(clips.description).toBe('3 clips of 2 s 320x240 H.264/AAC + 2 JPEGs of 320x240 with GPS and a serial');
    const media = path.join(clips.path, 'DCIM', '100MEDIA');
    const names = (await fsp.readdir(media)).sort();
    expect(names).toEqual(['DJI_0001.MP4', 'DJI_0002.MP4', 'DJI_0003.MP4', 'DJI_0004.JPG', 'DJI_0005.JPG']);
    const hashes = new Set<string>();
    for (const n of names) hashes.add(createHash('sha256').update(await fsp.readFile(path.join(media, n))).digest('hex'));
    expect(hashes.size).toBe(names.length);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_format', '-of', 'json', path.join(media, 'DJI_0002.MP4')], { encoding: 'utf8' }));
    expect(Number(probe.format.duration)).toBeGreaterThan(1.9);
    expect(probe.format.tags.location).toBe(TELEMETRY.location);
    expect(probe.format.tags.title).toBe('DJI_0002');
    const again = await buildClipsCard('video-heavy', 1, { ...tiny, cacheDir: path.join(root, 'cache') });
    expect(again.cached).toBe(true);
  });
});

describe('measured runs', () => {
  it('runCommand reports the exit code, CPU and a peak RSS of a real child', async () => {
    const r = await runCommand('bash', ['-c', 'head -c 3000000 /dev/zero | sha256sum; sleep 0.3; exit 3']);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/^[0-9a-f]{64} {2}-/);
    expect(r.peakRssBytes).toBeGreaterThan(0);
    // The command's own process (bash here) apart from the processes it started.
    expect(r.commandPeakRssBytes).toBe(r.rssByProcess.bash);
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
    expect(cp.cardFreeMs).toBe(cp.wallMs);
    const age = await runAgeCard(ctx);
    expect(age.ok).toBe(true);
    expect(age.files).toBe(card.files);
    expect(await fsp.readdir(work)).toEqual([]);
  });

  it('the do-it-yourself pipeline runs its three steps, frees the card after the copy and cleans up', async () => {
    const work = path.join(root, 'work-diy');
    await fsp.mkdir(work, { recursive: true });
    const diy = await runDiy({ card, work, keep: false, log: () => undefined });
    expect(diy.error).toBeUndefined();
    expect(diy.ok).toBe(true);
    expect([diy.id, diy.card, diy.bytes, diy.files]).toEqual(['diy', 'photo-heavy', card.bytes, card.files]);
    expect(Object.keys(diy.phasesMs ?? {})).toEqual(['copy', 'exiftool', 'rclone']);
    expect(diy.cardFreeMs).toBe(diy.phasesMs!.copy);
    expect(diy.cardFreeMs).toBeLessThan(diy.wallMs);
    expect(await fsp.readdir(work)).toEqual([]);
  });

  it('the do-it-yourself pipeline kept: the copy is stripped, the remote holds only ciphertext', async () => {
    const work = path.join(root, 'work-diy-kept');
    await fsp.mkdir(work, { recursive: true });
    const diy = await runDiy({ card, work, keep: true, log: () => undefined });
    expect(diy.ok).toBe(true);
    const copy = path.join(work, 'diy', 'copy', 'DCIM', '100MEDIA');
    const jpeg = (await fsp.readdir(copy)).find((n) => n.endsWith('.JPG'))!;
    const tags = JSON.parse(execFileSync('exiftool', ['-j', '-GPSLatitude', '-SerialNumber', path.join(copy, jpeg)], { encoding: 'utf8' }))[0];
    expect(tags.GPSLatitude).toBeUndefined();
    expect(tags.SerialNumber).toBeUndefined();
    const stored = await treeSize(path.join(work, 'diy', 'rclone', 'store'));
    expect(stored.files).toBe(card.files);
    const names = execFileSync('find', [path.join(work, 'diy', 'rclone', 'store'), '-type', 'f'], { encoding: 'utf8' });
    expect(names).not.toContain('DJI_');
  });
});
