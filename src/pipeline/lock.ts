/**
 * One working kluis process per station: ingest, resume and watch take this lock, so start-up
 * clean-up never removes another process's files in flight and no card is ingested twice at
 * once. The lock file holds the owner's pid; a lock whose owner is dead (crash, kill -9) is
 * taken over.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function lockStation(stateDir: string): Promise<() => Promise<void>> {
  const file = path.join(stateDir, 'station.lock');
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        const owner = Number((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
        if (owner === process.pid) await fsp.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
      if (owner && owner !== process.pid && alive(owner)) {
        throw new KluisError('E_STATION_BUSY', `another kluis process (pid ${owner}) is working on this station`, {
          hint: 'wait for it to finish (kluis status shows what it does), or stop the kluis watch service first',
        });
      }
      await fsp.rm(file, { force: true });
    }
  }
  throw new KluisError('E_STATION_BUSY', 'could not take the station lock', { hint: `remove ${file} if no kluis process is running` });
}
