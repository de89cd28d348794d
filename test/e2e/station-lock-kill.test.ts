/**
 * Issue 15 item 2, end to end: `kluis ingest` is stopped at a named moment (KLUIS_STOP_AT, see
 * src/pipeline/crash.ts), its whole process group is killed with SIGKILL, and its parent never
 * reaps it, as in a container whose init does not reap orphans: the dead ingest stays a zombie
 * and kill(pid, 0) keeps succeeding. The next `kluis ingest` of the same card must get the
 * station lock and secure the card. The pid-based lock said E_STATION_BUSY here forever.
 *
 * While the first ingest is stopped (alive, holding the lock) a second one is refused with
 * E_STATION_BUSY. Before the rerun a lock file of the old kind naming a live, unrelated pid
 * (the non-reaping parent: what a pid reused after a reboot looks like) is put in place; it
 * changes nothing.
 *
 * Needs a build (bin/kluis.js runs dist/). The card: a small JPEG and a 2 s MP4 (two read chunks).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kluisBin, makeStation, parseJson, repoRoot, runKluis, until } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { isSettledZombie, pidExists, procState, startUnreaped } from '../helpers/procs.js';
import type { CrashPoint } from '../../src/pipeline/crash.js';

const MOMENTS: Array<`${CrashPoint}:${number}`> = ['after-inventory:1', 'mid-acquire:2', 'mid-seal:1', 'before-put:2', 'after-delivered:1', 'before-manifest:1'];

let template: string;
beforeAll(() => {
  template = makeCard(path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-lockkill-')), 'card'), [
    { kind: 'jpeg', name: 'DJI_0001.JPG' },
    { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 2 },
  ]);
});

describe('an ingest killed with its process group, left a zombie', () => {
  for (const moment of MOMENTS) {
    it(`at ${moment}: a live holder refuses others; once dead (a zombie) the next ingest gets the lock and secures the card`, async () => {
      const st = makeStation();
      const card = path.join(path.dirname(st.dir), 'card');
      cpSync(template, card, { recursive: true });
      const o = await startUnreaped(process.execPath, [kluisBin, 'ingest', card, '--config', st.config, '--quiet'], {
        cwd: repoRoot,
        env: { KLUIS_STOP_AT: moment },
      });
      try {
        const state = await until(() => {
          const s = procState(o.pid);
          return s === 'T' || s === 'Z' ? s : undefined;
        });
        expect(state, `the ingest ended before ${moment}`).toBe('T');

        const busy = runKluis(['ingest', card, '--config', st.config, '--quiet']);
        expect(busy.code).not.toBe(0);
        expect(busy.stderr).toContain('E_STATION_BUSY');
        expect(busy.stderr).toContain(`pid ${o.pid}`);

        process.kill(-o.pid, 'SIGKILL');
        await until(() => isSettledZombie(o.pid));
        expect(pidExists(o.pid)).toBe(true);
        writeFileSync(path.join(st.dir, 'state', 'station.lock'), `${o.parent.pid}\n`);

        const again = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
        expect(again.stderr).not.toContain('E_STATION_BUSY');
        expect(again.code, again.stderr).toBe(0);
        expect(parseJson(again).status).toBe('secured');
      } finally {
        try {
          process.kill(-o.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        o.end();
      }
    });
  }
});
