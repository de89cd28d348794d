/**
 * One working kluis process per station: ingest, resume and watch take this lock, so start-up
 * clean-up never removes another process's files in flight and no card is ingested twice at
 * once. The lock file holds the owner's pid; a lock whose owner is dead (crash, kill -9) is
 * taken over.
 *
 * The lock file appears with its pid already in it (written to a temp name, then link()ed, which
 * fails if the lock exists), so a live owner's lock is never seen empty. An empty lock (a power
 * cut, or an older kluis between creating the file and writing its pid) is taken over only once
 * it is a few seconds old. Taking over moves the stale file aside first and checks it is still
 * the one judged stale, so two processes breaking the same stale lock cannot both end up holding.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KluisError } from '../errors.js';
import { pidAlive } from '../util/pid.js';

/** An empty lock younger than this may still be being written by its owner. */
const EMPTY_LOCK_GRACE_MS = 2000;

/** Creates `file` holding `content`, atomically; false when it exists already. */
async function createWith(file: string, content: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.new`;
  await fsp.writeFile(tmp, content, { flag: 'wx', mode: 0o600 });
  try {
    await fsp.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

export async function lockStation(stateDir: string): Promise<() => Promise<void>> {
  const file = path.join(stateDir, 'station.lock');
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const busy = (owner: string): KluisError =>
    new KluisError('E_STATION_BUSY', `another kluis process (${owner}) is working on this station`, {
      hint: 'wait for it to finish (kluis status shows what it does), or stop the kluis watch service first',
    });
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createWith(file, `${process.pid}\n`)) {
      return async () => {
        const owner = Number((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
        if (owner === process.pid) await fsp.rm(file, { force: true });
      };
    }
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw err;
    }
    const owner = Number(text.trim());
    if (owner && owner !== process.pid && pidAlive(owner)) throw busy(`pid ${owner}`);
    if (!owner) {
      const st = await fsp.stat(file).catch(() => null);
      if (st && Date.now() - st.mtimeMs < EMPTY_LOCK_GRACE_MS) throw busy('its lock is being written right now');
    }
    // Stale: move it aside, and put it back if what was moved is not the file judged stale.
    const aside = `${file}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await fsp.rename(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const moved = await fsp.readFile(aside, 'utf8').catch(() => '');
    if (moved !== text) await fsp.link(aside, file).catch(() => undefined);
    await fsp.rm(aside, { force: true });
  }
  throw new KluisError('E_STATION_BUSY', 'could not take the station lock', { hint: `remove ${file} if no kluis process is running` });
}
