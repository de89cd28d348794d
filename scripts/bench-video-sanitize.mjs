#!/usr/bin/env node
// CPU seconds per GB of sanitizing one MP4/MOV, for the two video paths, in this process and its
// children (ffmpeg, ffprobe; the persistent ExifTool is counted as a child once it is reaped, so it
// is closed before the figures are taken). Run after `npx tsc -p .`:
//
//   node scripts/bench-video-sanitize.mjs FILE [own|ffmpeg|own-file]
//
//   own       sanitizeVideoStream (kluis's rewriter) into a sink that only counts (the pipeline seals
//             the bytes; sealing is not counted here)
//   own-file  sanitizeVideo: the same, writing, fsyncing and renaming an output file
//   ffmpeg    sanitizeVideoByFfmpeg: the stream copy the rewriter replaced (file to file)
//
// The input is read once before timing so both paths start from the page cache, as the pipeline's
// working copy does. Prints one JSON line with this process's CPU; run it under
// `/usr/bin/time -f '%U %S %M'` for the children (ffmpeg, ffprobe, ExifTool) and peak RSS too.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sanitizeVideo, sanitizeVideoByFfmpeg, sanitizeVideoStream, sniffVideo } from '../dist/sanitize/video/index.js';
import { openFileSource } from '../dist/sanitize/stream-io.js';
import { closeExiftool } from '../dist/wrappers/exiftool.js';

const [file, mode = 'own'] = process.argv.slice(2);
if (!file) {
  console.error('usage: bench-video-sanitize.mjs FILE [own|ffmpeg|own-file]');
  process.exit(2);
}
const size = (await fsp.stat(file)).size;
const fh = await fsp.open(file, 'r');
const warm = Buffer.allocUnsafe(8 << 20);
for (let at = 0; at < size; at += warm.length) await fh.read(warm, 0, warm.length, at);
const { bytesRead } = await fh.read(warm, 0, 4096, 0);
await fh.close();
const format = sniffVideo(warm.subarray(0, bytesRead));
const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-bench-video-'));
const t0 = process.hrtime.bigint();
const self0 = process.cpuUsage();
let result;
try {
  if (mode === 'own') {
    const src = await openFileSource(file);
    let out = 0;
    try {
      result = await sanitizeVideoStream(src, { write: async (b) => { out += b.length; } }, { thermal: 'keep' }, { format, scratchDir: dir });
    } finally {
      await src.close();
    }
    if (out !== result.size) throw new Error('sink size differs');
  } else if (mode === 'own-file') {
    result = await sanitizeVideo(file, path.join(dir, 'out'), { thermal: 'keep' }, format);
  } else {
    result = await sanitizeVideoByFfmpeg(file, path.join(dir, 'out'), { thermal: 'keep' }, format);
  }
  await closeExiftool();
} finally {
  await fsp.rm(dir, { recursive: true, force: true });
}
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const self = process.cpuUsage(self0);
const selfS = (self.user + self.system) / 1e6;
console.log(JSON.stringify({
  mode, file: path.basename(file), bytes: size, outBytes: result.size, wallS: +wall.toFixed(2), nodeCpuS: +selfS.toFixed(2),
  nodeCpuSPerGB: +(selfS / (size / 1e9)).toFixed(2), essence: result.essence.map((e) => (e.track !== undefined ? `${e.method} track ${e.track}` : e.method)),
}));
