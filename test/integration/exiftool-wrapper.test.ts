/**
 * The persistent ExifTool (src/wrappers/exiftool.ts) against real ExifTool: it must print exactly
 * what a one-shot `exiftool OPTIONS -- FILE` prints, on the real vendor fixtures, with the image
 * and the video options; answer parallel callers each with their own file; start again after it
 * is killed; take names it cannot put on an argument line through a one-shot run; and never keep
 * node alive (nor outlive it).
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { closeExiftool, exiftool, exiftoolOneShot, exiftoolStayOpenPid, stayOpenEligible } from '../../src/wrappers/exiftool.js';

/**
 * ExifTool's output, less the file's access time: reading a file (either way) can move its
 * atime, so two reads of the same file differ there whatever the wrapper does.
 */
function norm(out: Buffer | string): string {
  return out.toString().replace(/^\s*"System:FileAccessDate": .*\n/gm, '');
}

const root = path.resolve(__dirname, '..', '..');
const IMAGE_OPTS = ['-j', '-a', '-G1', '-u', '-ee', '-n'];
const VIDEO_OPTS = [...IMAGE_OPTS, '-api', 'LargeFileSupport=1', '-charset', 'filename=utf8'];
const images = readdirSync(path.join(root, 'test/fixtures/real/image')).map((f) => path.join(root, 'test/fixtures/real/image', f));
const generated = readdirSync(path.join(root, 'test/fixtures/generated'))
  .filter((f) => /\.(jpg|tiff)$/.test(f))
  .map((f) => path.join(root, 'test/fixtures/generated', f));
const videos = readdirSync(path.join(root, 'test/fixtures/real/video'))
  .filter((f) => /\.mp4$/i.test(f))
  .map((f) => path.join(root, 'test/fixtures/real/video', f));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readZombie(pid);
  } catch {
    return false;
  }
}
function readZombie(pid: number): boolean {
  try {
    return / Z /.test(require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

afterAll(async () => {
  await closeExiftool();
});

describe('persistent exiftool', () => {
  it('prints the same bytes and status as a one-shot run, on every real and generated image (image options)', async () => {
    expect(images.length).toBeGreaterThanOrEqual(9);
    for (const f of [...images, ...generated]) {
      const a = await exiftool(IMAGE_OPTS, f);
      const b = await exiftoolOneShot(IMAGE_OPTS, f);
      expect(a.via).toBe('stay-open');
      expect(b.via).toBe('one-shot');
      expect(norm(a.stdout)).toBe(norm(b.stdout));
      expect(a.status).toBe(b.status);
      expect(a.stderr).toBe(b.stderr);
      expect(JSON.parse(a.stdout.toString('utf8'))[0].SourceFile).toBe(f);
    }
  });

  it('prints the same as a one-shot run on the real videos (video options), interleaved with image requests', async () => {
    expect(videos.length).toBeGreaterThan(0);
    for (const f of videos) {
      const a = await exiftool(VIDEO_OPTS, f);
      await exiftool(IMAGE_OPTS, images[0]!); // options of one request must not leak into the next
      const b = await exiftoolOneShot(VIDEO_OPTS, f);
      expect(a.via).toBe('stay-open');
      expect(norm(a.stdout)).toBe(norm(b.stdout));
      expect(a.status).toBe(0);
    }
    const again = await exiftool(IMAGE_OPTS, images[1]!);
    expect(norm(again.stdout)).toBe(norm((await exiftoolOneShot(IMAGE_OPTS, images[1]!)).stdout));
  });

  it('reports a missing file as ExifTool does (status 1, the error on stderr, nothing on stdout)', async () => {
    const f = path.join(os.tmpdir(), `kluis-no-such-file-${process.pid}.jpg`);
    const a = await exiftool(IMAGE_OPTS, f);
    const b = await exiftoolOneShot(IMAGE_OPTS, f);
    expect(a.via).toBe('stay-open');
    expect(a.status).toBe(1);
    expect(b.status).toBe(1);
    expect(a.stdout.length).toBe(b.stdout.length);
    expect(a.stderr).toBe(b.stderr);
    expect(a.stderr).toMatch(/File not found/);
  });

  it('answers many parallel requests each with its own file', async () => {
    const files = Array.from({ length: 40 }, (_, i) => images[i % images.length]!);
    const expected = new Map<string, string>();
    for (const f of images) expected.set(f, norm((await exiftoolOneShot(IMAGE_OPTS, f)).stdout));
    const results = await Promise.all(files.map((f) => exiftool(IMAGE_OPTS, f)));
    results.forEach((r, i) => {
      expect(r.via).toBe('stay-open');
      expect(norm(r.stdout)).toBe(expected.get(files[i]!));
    });
  });

  it('starts again after the process is killed, and a request it dies under is answered by a one-shot run', async () => {
    await exiftool(IMAGE_OPTS, images[0]!);
    const pid1 = exiftoolStayOpenPid();
    expect(pid1).toBeTypeOf('number');
    process.kill(pid1!, 'SIGKILL');
    await until(() => exiftoolStayOpenPid() !== pid1);
    const r = await exiftool(IMAGE_OPTS, images[2]!);
    expect(r.via).toBe('stay-open');
    const pid2 = exiftoolStayOpenPid();
    expect(pid2).toBeTypeOf('number');
    expect(pid2).not.toBe(pid1);
    expect(norm(r.stdout)).toBe(norm((await exiftoolOneShot(IMAGE_OPTS, images[2]!)).stdout));

    // Killed while a request is in flight: that request still gets ExifTool's own answer.
    const inFlight = exiftool(VIDEO_OPTS, videos[0]!);
    await until(() => exiftoolStayOpenPid() !== undefined);
    process.kill(exiftoolStayOpenPid()!, 'SIGKILL');
    const v = await inFlight;
    expect(norm(v.stdout)).toBe(norm((await exiftoolOneShot(VIDEO_OPTS, videos[0]!)).stdout));
    expect((await exiftool(IMAGE_OPTS, images[3]!)).via).toBe('stay-open');
  });

  it('reads a file whose name has a newline (one-shot), and never lets a name become an option or a second line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-exw-'));
    try {
      const odd = path.join(dir, 'DJI\n-execute\n0001.jpg');
      copyFileSync(images[0]!, odd);
      const a = await exiftool(IMAGE_OPTS, odd);
      expect(a.via).toBe('one-shot');
      expect(a.status).toBe(0);
      const rec = JSON.parse(a.stdout.toString('utf8'))[0];
      expect(rec.SourceFile).toBe(odd);
      expect(rec['System:FileName']).toBe('DJI\n-execute\n0001.jpg');
      // The persistent process is still in step afterwards.
      const b = await exiftool(IMAGE_OPTS, images[1]!);
      expect(b.via).toBe('stay-open');
      expect(norm(b.stdout)).toBe(norm((await exiftoolOneShot(IMAGE_OPTS, images[1]!)).stdout));

      // A relative name starting with '-' goes through `--` in a one-shot run, as a file.
      mkdirSync(path.join(dir, 'w'));
      copyFileSync(images[0]!, path.join(dir, 'w', '-ver'));
      const cwd = process.cwd();
      process.chdir(path.join(dir, 'w'));
      try {
        const c = await exiftool(IMAGE_OPTS, '-ver');
        expect(c.via).toBe('one-shot');
        expect(JSON.parse(c.stdout.toString('utf8'))[0].SourceFile).toBe('-ver');
      } finally {
        process.chdir(cwd);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(stayOpenEligible(IMAGE_OPTS, '/spool/a.jpg')).toBe(true);
    for (const bad of ['a.jpg', '-ver', '/spool/a\nb.jpg', '/spool/a\rb.jpg', '/spool/a.jpg ', ' /spool/a.jpg', '#/x']) {
      expect(stayOpenEligible(IMAGE_OPTS, bad)).toBe(false);
    }
    expect(stayOpenEligible([...IMAGE_OPTS, '-execute'], '/spool/a.jpg')).toBe(false);
    expect(stayOpenEligible([...IMAGE_OPTS, '--'], '/spool/a.jpg')).toBe(false);
  });

  it('is not ended early by a file whose content prints "{ready}" lines, and keeps stdout as bytes', async () => {
    // A JPEG comment (COM segment) that `-b -Comment` prints raw: ExifTool's own end-of-request
    // line, a stale-looking marker, and UTF-8 that is not ASCII. A request that ended at the first
    // "{ready}" would return a cut comment and hand the rest to the next request.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-exw-ready-'));
    try {
      const comment = Buffer.from('before\n{ready}\n{ready123}\n{kluis-end0 0}\nna\u00efef \u00e9t\u00e9 \u2603\nafter', 'utf8');
      const jpg = require('node:fs').readFileSync(images[0]!) as Buffer;
      const seg = Buffer.alloc(4);
      seg.writeUInt16BE(0xfffe, 0);
      seg.writeUInt16BE(comment.length + 2, 2);
      const f = path.join(dir, 'ready.jpg');
      writeFileSync(f, Buffer.concat([jpg.subarray(0, 2), seg, comment, jpg.subarray(2)]));
      const a = await exiftool(['-b', '-Comment'], f);
      expect(a.via).toBe('stay-open');
      expect(a.status).toBe(0);
      expect(a.stdout.equals(comment)).toBe(true);
      expect(a.stdout.equals((await exiftoolOneShot(['-b', '-Comment'], f)).stdout)).toBe(true);
      // The next request gets its own answer only.
      const b = await exiftool(IMAGE_OPTS, images[1]!);
      expect(norm(b.stdout)).toBe(norm((await exiftoolOneShot(IMAGE_OPTS, images[1]!)).stdout));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a request ExifTool never finishes fails with E_SANITIZE_TOOL_TIMEOUT; one waiting behind it is not charged for the wait', async () => {
    // A named pipe nobody writes to: ExifTool blocks opening it, for as long as it is let.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-exw-fifo-'));
    try {
      const fifo = path.join(dir, 'stuck.jpg');
      execFileSync('mkfifo', [fifo]);
      await exiftool(IMAGE_OPTS, images[0]!); // the persistent process is up
      const pid1 = exiftoolStayOpenPid();
      const stuck = exiftool(IMAGE_OPTS, fifo, { timeoutMs: 12_000 });
      // Queued behind the stuck request: its own limit is shorter than the time it waits, and
      // far longer than reading a small file takes even on a busy machine.
      const small = generated[0]!;
      const next = exiftool(IMAGE_OPTS, small, { timeoutMs: 8_000 });
      await expect(stuck).rejects.toMatchObject({ code: 'E_SANITIZE_TOOL_TIMEOUT' });
      const r = await next;
      expect(r.via).toBe('stay-open');
      expect(norm(r.stdout)).toBe(norm((await exiftoolOneShot(IMAGE_OPTS, small)).stdout));
      expect(exiftoolStayOpenPid()).not.toBe(pid1); // the stuck ExifTool was killed, a new one serves
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not keep node alive, and does not outlive it (normal end, and SIGKILL of node)', async () => {
    // Plain JS of the wrapper and its imports, so a separate node can load it.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-exw-js-'));
    try {
      mkdirSync(path.join(dir, 'wrappers'));
      mkdirSync(path.join(dir, 'util'));
      for (const [src, out] of [
        ['src/errors.ts', 'errors.js'],
        ['src/util/notices.ts', 'util/notices.js'],
        ['src/error-codes.ts', 'error-codes.js'],
        ['src/wrappers/priority.ts', 'wrappers/priority.js'],
        ['src/wrappers/exiftool.ts', 'wrappers/exiftool.js'],
      ] as const) {
        const js = ts.transpileModule(require('node:fs').readFileSync(path.join(root, src), 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        }).outputText;
        writeFileSync(path.join(dir, out), js);
      }
      writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
      symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules')); // the wrapper's npm dependencies (exiftool-vendored)
      const script = (hold: boolean | 'close'): string =>
        `import { closeExiftool, exiftool, exiftoolStayOpenPid } from './wrappers/exiftool.js';
         const r = await exiftool(${JSON.stringify(IMAGE_OPTS)}, ${JSON.stringify(images[0])});
         console.log(JSON.stringify({ via: r.via, pid: exiftoolStayOpenPid(), ok: JSON.parse(r.stdout.toString())[0].SourceFile }));
         ${hold === 'close' ? "await closeExiftool(); console.log('closed');" : hold ? 'setInterval(() => {}, 1000);' : ''}`;
      const run = (hold: boolean | 'close') => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script(hold)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
        return { child, exited, out: () => out };
      };

      // Ends by itself once its work is done: the idle ExifTool holds nothing open.
      const a = run(false);
      const ea = await a.exited;
      expect(ea.code).toBe(0);
      const ra = JSON.parse(a.out().trim());
      expect(ra.via).toBe('stay-open');
      expect(ra.ok).toBe(images[0]);
      await until(() => !alive(ra.pid));

      // closeExiftool() is awaited to the end (node is held until ExifTool has gone).
      const c = run('close');
      expect((await c.exited).code).toBe(0);
      const [lc, closed] = c.out().trim().split('\n');
      expect(closed).toBe('closed');
      expect(alive(JSON.parse(lc!).pid)).toBe(false);

      // Killed outright: ExifTool goes with it (no poller left behind).
      const b = run(true);
      await until(() => b.out().includes('\n'));
      const rb = JSON.parse(b.out().trim());
      expect(alive(rb.pid)).toBe(true);
      expect(os.getPriority(rb.pid)).toBeGreaterThanOrEqual(10); // proof tools yield to the card read (wrappers/priority.ts)
      b.child.kill('SIGKILL');
      await b.exited;
      await until(() => !alive(rb.pid));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
