/**
 * the station lock (one working kluis process per station). Two holders at once means
 * two start-up clean-ups, each removing the other's in-flight spool files, and two ingests on one
 * journal. A lock file that is empty is what a live writer leaves between creating the file and
 * writing its pid; taking it over gave two holders. Only a lock whose owner is gone may be taken.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, utimesSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { lockStation } from '../../src/pipeline/lock.js';

function stateDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'kluis-lock-'));
}

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('station lock', () => {
  it('writes its pid and releases the lock', async () => {
    const dir = stateDir();
    const unlock = await lockStation(dir);
    expect(readFileSync(path.join(dir, 'station.lock'), 'utf8').trim()).toBe(String(process.pid));
    await unlock();
    expect(existsSync(path.join(dir, 'station.lock'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a lock held by a live process', async () => {
    const dir = stateDir();
    writeFileSync(path.join(dir, 'station.lock'), `${process.ppid}\n`);
    await expect(lockStation(dir)).rejects.toMatchObject({ code: 'E_STATION_BUSY' });
    expect(readFileSync(path.join(dir, 'station.lock'), 'utf8').trim()).toBe(String(process.ppid));
  });

  it('takes over a lock whose owner is dead', async () => {
    const dir = stateDir();
    writeFileSync(path.join(dir, 'station.lock'), `${deadPid()}\n`);
    const unlock = await lockStation(dir);
    expect(readFileSync(path.join(dir, 'station.lock'), 'utf8').trim()).toBe(String(process.pid));
    await unlock();
  });

  it('does not take over a fresh empty lock: its writer is between creating it and writing its pid', async () => {
    const dir = stateDir();
    const file = path.join(dir, 'station.lock');
    writeFileSync(file, '');
    await expect(lockStation(dir)).rejects.toMatchObject({ code: 'E_STATION_BUSY' });
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  it('takes over an empty lock that is old (its writer died before writing its pid)', async () => {
    const dir = stateDir();
    const file = path.join(dir, 'station.lock');
    writeFileSync(file, '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    const unlock = await lockStation(dir);
    expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid));
    await unlock();
    expect(readdirSync(dir)).toEqual([]);
  });
});
