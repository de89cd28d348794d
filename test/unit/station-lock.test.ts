/**
 * The station lock (src/pipeline/lock.ts): one working kluis process per station, released by
 * the kernel when its holder dies, never judged by a pid. Issue 15 item 2: an ingest killed with
 * its process group inside a container whose init does not reap stayed a zombie; `kill(pid, 0)`
 * kept succeeding and every rerun said E_STATION_BUSY. A pid reused after a reboot did the same.
 *
 * The holders here are separate node processes running lock.ts itself (transpiled, no build).
 */
import { describe, it, expect, afterEach } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lockStation, STATION_LOCK_FILE } from '../../src/pipeline/lock.js';
import { until } from '../helpers/kluis.js';
import { isSettledZombie, pidExists, plainJs, startUnreaped, type Orphanage } from '../helpers/procs.js';

const js = plainJs(['errors.ts', 'pipeline/lock.ts']);
/** Takes the lock on argv[1], prints `held PID`, starts a child in its group (like exiftool), waits forever. */
const HOLDER = `
import { spawn } from 'node:child_process';
import { lockStation } from './pipeline/lock.js';
await lockStation(process.argv[1]);
spawn('sleep', ['100000'], { stdio: 'ignore' });
console.log('held ' + process.pid);
setInterval(() => {}, 1000);
`;

function stateDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'kluis-lock-'));
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A holder in its own process group, reaped normally by this test process. */
async function holder(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, dir], { cwd: js, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  cleanups.push(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  await until(() => out.includes('held ') || child.exitCode !== null);
  expect(out).toContain(`held ${child.pid}`);
  return child;
}

/** A holder whose parent never reaps it (see startUnreaped). */
async function unreapedHolder(dir: string): Promise<Orphanage> {
  const o = await startUnreaped(process.execPath, ['--input-type=module', '-e', HOLDER, dir], { cwd: js });
  cleanups.push(() => {
    try {
      process.kill(-o.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    o.end();
  });
  await until(() => o.stdout().includes(`held ${o.pid}`));
  return o;
}

describe('station lock', () => {
  it('is taken, refused to a second taker in the same process, released, and taken again; the lock file stays', async () => {
    const dir = stateDir();
    const unlock = await lockStation(dir);
    await expect(lockStation(dir)).rejects.toMatchObject({ code: 'E_STATION_BUSY', message: expect.stringContaining(`pid ${process.pid}`) });
    await unlock();
    expect(readdirSync(dir)).toEqual([STATION_LOCK_FILE]);
    const again = await lockStation(dir);
    await again();
  });

  it('refuses while another live process holds it (E_STATION_BUSY naming that process)', async () => {
    const dir = stateDir();
    const h = await holder(dir);
    await expect(lockStation(dir)).rejects.toMatchObject({ code: 'E_STATION_BUSY', message: expect.stringContaining(`pid ${h.pid}`) });
  });

  it('is free once the holder and its process group are killed with SIGKILL', async () => {
    const dir = stateDir();
    const h = await holder(dir);
    const exited = new Promise((r) => h.on('exit', r));
    process.kill(-h.pid!, 'SIGKILL');
    await exited;
    const unlock = await lockStation(dir);
    expect(readFileSync(path.join(dir, 'station.lock.owner'), 'utf8')).toContain(`pid ${process.pid}`);
    await unlock();
  });

  it('is free when its holder died and stays a zombie (kill(pid, 0) still succeeds)', async () => {
    const dir = stateDir();
    const o = await unreapedHolder(dir);
    await expect(lockStation(dir)).rejects.toMatchObject({ code: 'E_STATION_BUSY' });
    process.kill(-o.pid, 'SIGKILL');
    await until(() => isSettledZombie(o.pid));
    expect(pidExists(o.pid)).toBe(true); // what the pid-based lock trusted
    const unlock = await lockStation(dir);
    await unlock();
  });

  it('takes over files naming a live, unrelated pid (a pid reused after a reboot)', async () => {
    const dir = stateDir();
    // A live process that has nothing to do with kluis: what a reused pid looks like.
    const stranger = spawn('sleep', ['100000'], { stdio: 'ignore' });
    cleanups.push(() => stranger.kill('SIGKILL'));
    expect(pidExists(stranger.pid!)).toBe(true);
    writeFileSync(path.join(dir, 'station.lock'), `${stranger.pid}\n`); // what kluis before the kernel lock wrote
    writeFileSync(path.join(dir, 'station.lock.owner'), `pid ${stranger.pid}, kluis ingest, since 2020-01-01T00:00:00.000Z\n`);
    const unlock = await lockStation(dir);
    expect(existsSync(path.join(dir, 'station.lock'))).toBe(false);
    expect(readFileSync(path.join(dir, 'station.lock.owner'), 'utf8')).toContain(`pid ${process.pid}`);
    await unlock();
    expect(pidExists(stranger.pid!)).toBe(true);
  });
});
