#!/usr/bin/env node
// CPU seconds per photo of the sanitize stage (issue 14), for a before/after comparison.
//
// Usage: node scripts/photo-cpu.mjs [count] (build first: npx tsc -p .)
// Makes `count` (default 20) distinct 12 MP JPEGs with DJI-like EXIF/XMP the way the bench card
// does (src/bench/card.ts: one encode, copies made distinct by a COM segment), then sanitizes
// each one (and makes the report thumbnail, which sanitizeStream now makes itself) and prints the CPU seconds spent: this process (user+sys), the child processes it
// started and waited for (ffmpeg), and the persistent ExifTool (read from /proc/<pid>/stat).
// sanitizeStream is used when the build has it (spool working copy in, sink hashing out, as
// the pipeline calls it), else sanitizeFile. Linux only (/proc). Files live under os.tmpdir().
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { makeJpeg, jpegVariant } = await dist('bench/card.js');
const sanitize = await dist('sanitize/index.js');
const { exiftoolStayOpenPid, closeExiftool } = await dist('wrappers/exiftool.js');
const { renderThumbnail } = await dist('evidence/report.js');

const count = Number(process.argv[2] ?? 20);
const TICK = 100; // CLK_TCK on Linux

function procTicks(pid) {
  // Fields after the ")" of comm: utime is field 14, stime 15, cutime 16, cstime 17 (1-based).
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

function exiftoolTicks() {
  const pid = exiftoolStayOpenPid();
  if (!pid) return 0;
  try {
    // Under setpriv the pid is setpriv's, which exec()s ExifTool: the same process.
    return procTicks(pid).self;
  } catch {
    return 0;
  }
}

const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-photo-cpu-'));
try {
  const base = path.join(dir, 'base.jpg');
  await makeJpeg(base);
  const baseBytes = readFileSync(base);
  const files = [];
  for (let i = 0; i < count; i++) {
    const f = path.join(dir, `DJI_${String(i + 1).padStart(4, '0')}.JPG`);
    await fsp.writeFile(f, jpegVariant(baseBytes, i));
    files.push(f);
  }
  const scratch = path.join(dir, 'scratch');
  await fsp.mkdir(scratch, { mode: 0o700 });
  const useStream = typeof sanitize.sanitizeStream === 'function';

  const one = async (f, i) => {
    if (!useStream) {
      // As the pipeline did before sanitizeStream: sanitize to a file, then the report thumbnail.
      const out = path.join(dir, `out-${i}.jpg`);
      const r = await sanitize.sanitizeFile(f, out, { thermal: 'keep' });
      await renderThumbnail(out, r.format);
      return r;
    }
    const fh = await fsp.open(f, 'r');
    try {
      const size = (await fh.stat()).size;
      const src = {
        size,
        read: async (position, length) => {
          const b = Buffer.alloc(length);
          const { bytesRead } = await fh.read(b, 0, length, position);
          if (bytesRead !== length) throw new Error('short read');
          return b;
        },
      };
      let written = 0;
      const sink = { write: async (c) => void (written += c.length) };
      const r = await sanitize.sanitizeStream(src, sink, { thermal: 'keep' }, { format: 'jpeg', scratchDir: scratch, thumbnail: { maxEdge: 320 } });
      if (written !== r.size) throw new Error('sink and result disagree');
      return r;
    } finally {
      await fh.close();
    }
  };

  // One warm-up file (module loading, ExifTool start-up) is not counted.
  await one(files[0], 0);
  const cpu0 = process.cpuUsage();
  const t0 = procTicks(process.pid);
  const e0 = exiftoolTicks();
  const wall0 = process.hrtime.bigint();
  for (let i = 1; i < files.length; i++) await one(files[i], i);
  const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const t1 = procTicks(process.pid);
  const e1 = exiftoolTicks();
  const n = files.length - 1;
  const self = (cpu.user + cpu.system) / 1e6;
  const children = (t1.children - t0.children) / TICK;
  const exif = (e1 - e0) / TICK;
  const size = baseBytes.length;
  console.log(JSON.stringify({
    api: useStream ? 'sanitizeStream' : 'sanitizeFile',
    photos: n,
    photoBytes: size,
    cpuSecondsPerPhoto: { node: +(self / n).toFixed(3), children: +(children / n).toFixed(3), exiftool: +(exif / n).toFixed(3), total: +((self + children + exif) / n).toFixed(3) },
    wallSecondsPerPhoto: +(wall / n).toFixed(3),
  }, null, 2));
} finally {
  await closeExiftool();
  await fsp.rm(dir, { recursive: true, force: true });
}
