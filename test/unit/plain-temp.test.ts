/**
 * Plaintext temp names (src/util/plain-temp.ts, issue 15 item 10): a name says whose it is, and
 * a leftover is swept only when its writer is certainly gone. "Gone" is tested with real
 * processes: one that exited, a zombie (exited, not yet reaped by its parent: `kill(pid, 0)`
 * still succeeds, which is why pid liveness alone is not enough) and a live process under a
 * pid whose start differs from the one in the name (a reused pid). The sweep never follows a
 * link and never touches a name it did not make.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ownerGone, parsePartName, partName, processTag, sweepOrphans } from '../../src/util/plain-temp.js';
import { pidAlive } from '../../src/util/pid.js';

let deadPid = 0;
let zombiePid = 0;
let zombieParent: ChildProcess;
let liveChild: ChildProcess;

function nameFor(pid: number, tag: string): string {
  return `.kluis-part-${pid}-${tag}-0123456789ab.tmp`;
}

beforeAll(async () => {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  deadPid = child.pid!;
  // A zombie: a short sleep runs in the background and exits; its parent has become `sleep 60`, which
  // never waits for it, so it stays in state Z until the sleep ends.
  zombieParent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  zombiePid = await new Promise<number>((resolve) => zombieParent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  for (let i = 0; i < 200; i++) {
    const stat = existsSync(`/proc/${zombiePid}/stat`) ? readFileSync(`/proc/${zombiePid}/stat`, 'utf8') : '';
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  liveChild = spawn('sleep', ['60'], { stdio: 'ignore' });
});

afterAll(() => {
  zombieParent?.kill('SIGKILL');
  liveChild?.kill('SIGKILL');
});

describe('plaintext temp names', () => {
  it('are hidden, carry the pid and this run\'s tag, and parse back', () => {
    const n = partName();
    expect(n.startsWith('.kluis-part-')).toBe(true);
    expect(parsePartName(n)).toEqual({ pid: process.pid, tag: processTag() });
    expect(parsePartName(n.slice(1).replace(/\.tmp$/, ''))).toEqual({ pid: process.pid, tag: processTag() }); // the folder form
    for (const other of ['.kluis-tmp-host-12-0123456789abcdef', '.kluis-part-12-xyz-0123456789ab.tmp', 'kluis-part-0-0123456789ab-0123456789ab', 'DJI_0001.JPG']) {
      expect(parsePartName(other), other).toBeNull();
    }
  });

  it('own temps are never taken for orphans; a dead writer\'s are', () => {
    expect(ownerGone(process.pid, processTag())).toBe(false);
    expect(ownerGone(deadPid, processTag())).toBe(true);
  });

  it('a zombie writer counts as gone although kill(pid, 0) still succeeds', () => {
    const stat = readFileSync(`/proc/${zombiePid}/stat`, 'utf8');
    expect(stat.slice(stat.lastIndexOf(')') + 2)[0]).toBe('Z');
    expect(pidAlive(zombiePid)).toBe(true);
    expect(ownerGone(zombiePid, '0123456789ab')).toBe(true);
  });

  it('a live process under the pid counts as gone only when its start differs (reused pid)', () => {
    const pid = liveChild.pid!;
    expect(ownerGone(pid, '0123456789ab')).toBe(true);
    // The tag that process would write: computed the way processTag() does it, for that pid.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const tag = createHash('sha256').update(`${boot}:${start}`).digest('hex').slice(0, 12);
    expect(ownerGone(pid, tag)).toBe(false);
  });
});

describe('sweepOrphans', () => {
  it('removes orphaned files and folders, and nothing else', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-sweep-'));
    const outside = mkdtempSync(path.join(os.tmpdir(), 'kluis-sweep-outside-'));
    try {
      writeFileSync(path.join(outside, 'precious'), 'x');
      const orphanFile = nameFor(deadPid, '0123456789ab');
      const zombieFile = nameFor(zombiePid, '0123456789ab');
      const orphanDir = `kluis-part-${deadPid}-0123456789ab-ba9876543210`;
      const mine = partName();
      const linked = nameFor(deadPid, 'aaaaaaaaaaaa');
      writeFileSync(path.join(dir, orphanFile), 'plaintext');
      writeFileSync(path.join(dir, zombieFile), 'plaintext');
      mkdirSync(path.join(dir, orphanDir));
      writeFileSync(path.join(dir, orphanDir, 'plain.jpg'), 'plaintext');
      writeFileSync(path.join(dir, mine), 'in use');
      symlinkSync(outside, path.join(dir, linked));
      writeFileSync(path.join(dir, 'DJI_0001.JPG'), 'a user file');
      writeFileSync(path.join(dir, `.kluis-part-${deadPid}-notatag-0123456789ab.tmp`), 'not our name');

      const removed = await sweepOrphans(dir);
      expect(removed.sort()).toEqual([orphanFile, orphanDir, zombieFile].sort());
      expect(readdirSync(dir).sort()).toEqual([`.kluis-part-${deadPid}-notatag-0123456789ab.tmp`, linked, mine, 'DJI_0001.JPG'].sort());
      expect(readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('x');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a folder that cannot be read has nothing to sweep', async () => {
    expect(await sweepOrphans(path.join(os.tmpdir(), 'kluis-no-such-folder-here'))).toEqual([]);
  });
});
