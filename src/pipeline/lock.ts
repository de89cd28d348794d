/**
 * The station lock: one working kluis process per station (ingest, resume, watch, the dashboard's
 * outbox passes), so start-up clean-up never removes another process's files in flight and no
 * card is ingested twice at once.
 *
 * Promises:
 * - it is a `KernelLock` (util/kernel-lock.ts) on `state/station.lock.db`: the kernel releases it
 *   when the holder dies, however it dies; no decision ever rests on a pid.
 * - a second process, or a second attempt in the same process, gets E_STATION_BUSY at once; it
 *   never waits.
 * - `state/station.lock.owner` says who holds the lock (pid, command, since when), for the
 *   E_STATION_BUSY message only. It is never read to decide anything.
 *
 * Never: deletes the lock database (see util/kernel-lock.ts).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import { KernelLock } from '../util/kernel-lock.js';

export const STATION_LOCK_FILE = 'station.lock.db';
const OWNER_FILE = 'station.lock.owner';
/** What kluis before the kernel lock left: a file holding a pid. Meaningless now; removed once we hold the lock. */
const LEGACY_LOCK_FILE = 'station.lock';

function describeSelf(): string {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('-')).slice(0, 2).join(' ');
  return `pid ${process.pid}${args ? `, kluis ${args}` : ''}, since ${new Date().toISOString()}`;
}

/**
 * Takes the station lock in `stateDir` or throws E_STATION_BUSY. Resolves with the function that
 * releases it. Whoever held it before and died released it with their death.
 */
export async function lockStation(stateDir: string): Promise<() => Promise<void>> {
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, STATION_LOCK_FILE);
  const ownerFile = path.join(stateDir, OWNER_FILE);
  const lock = KernelLock.open(file);
  if (!lock.tryAcquire()) {
    lock.close();
    const owner = (await fsp.readFile(ownerFile, 'utf8').catch(() => '')).trim().split('\n')[0];
    throw new KluisError('E_STATION_BUSY', `another kluis process${owner ? ` (${owner})` : ''} is working on this station`, {
      hint: 'wait for it to finish (kluis status shows what it does), or stop the kluis watch service first',
    });
  }
  try {
    // A new file, renamed over any note a dead holder left (whoever owned that one).
    const tmp = `${ownerFile}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, `${describeSelf()}\n`, { mode: 0o600 });
    await fsp.rename(tmp, ownerFile);
    await fsp.rm(path.join(stateDir, LEGACY_LOCK_FILE), { force: true });
  } catch (err) {
    lock.close();
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    // Remove the note while still holding, so it never describes a later holder.
    await fsp.rm(ownerFile, { force: true }).catch(() => undefined);
    lock.close();
  };
}
