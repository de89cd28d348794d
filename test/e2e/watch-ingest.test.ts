/**
 * `kluis watch` end to end through the real command: a card folder appears under a watched root
 * while its files are still being copied in pieces; the ingest starts only once the card is
 * complete (the journal's sizes and the acquired sizes are the final ones, and the audit's
 * card-seen comes after the last write), the card is announced safe to remove, the batch is
 * secured, SIGTERM stops the service cleanly and releases the station lock. Pulling the card
 * and putting it back makes the watcher recognise it as already secured, copying nothing.
 * Also: the watcher takes the station lock, so a second working process is refused.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, openSync, writeSync, fsyncSync, closeSync, renameSync, statSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, journalQuery, makeStation, runKluis, spawnKluis, storeObjects, waitForEvent } from '../helpers/kluis.js';
import { makeMediaFile } from '../helpers/card.js';

const procs: Array<ReturnType<typeof spawnKluis>> = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

/** Copies `src` to `dst` in `pieces` writes with a pause between them, like a slow card reader. */
async function slowCopy(src: string, dst: string, pieces: number, pauseMs: number): Promise<void> {
  const data = readFileSync(src);
  const fd = openSync(dst, 'w');
  const step = Math.ceil(data.length / pieces);
  for (let off = 0; off < data.length; off += step) {
    writeSync(fd, data, off, Math.min(step, data.length - off));
    fsyncSync(fd);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  closeSync(fd);
}

describe('kluis watch', () => {
  it('ingests a card only once it is complete, then stops cleanly on SIGTERM', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-watch-'));
    const st = makeStation(path.join(work, 'station'));
    const roots = path.join(work, 'media');
    mkdirSync(roots);
    const src = path.join(work, 'src');
    mkdirSync(src);
    makeMediaFile(path.join(src, 'a.jpg'), { kind: 'jpeg', name: 'a' });
    makeMediaFile(path.join(src, 'b.mp4'), { kind: 'mp4', name: 'b', seconds: 2 });

    const watch = spawnKluis(['watch', '--config', st.config, '--roots', roots, '--json'], { KLUIS_WATCH_SETTLE_MS: '1000', KLUIS_WATCH_OUTBOX_MS: '60000' });
    procs.push(watch);
    await waitForEvent(watch, (e) => e.type === 'watch-started');

    // A second working process on the same station is refused while watch runs.
    const busy = runKluis(['resume', '--config', st.config]);
    expect(busy.stderr).toContain('E_STATION_BUSY');

    const media = path.join(roots, 'user', 'SDCARD', 'DCIM', '100MEDIA');
    mkdirSync(media, { recursive: true });
    // Copy the card the way a slow reader does: pieces with pauses shorter than the settle time.
    await slowCopy(path.join(src, 'a.jpg'), path.join(media, 'DJI_0001.JPG'), 3, 300);
    await slowCopy(path.join(src, 'b.mp4'), path.join(media, 'DJI_0002.MP4'), 8, 300);
    const lastWrite = Math.max(...['DJI_0001.JPG', 'DJI_0002.MP4'].map((n) => statSync(path.join(media, n)).mtimeMs));

    const done = await waitForEvent(watch, (e) => e.type === 'ingest-done');
    expect(done).toMatchObject({ status: 'secured', safeToRemove: true, alreadySecured: false });
    expect(watch.stderr()).toContain('SAFE TO REMOVE');

    const files = journalQuery<{ path: string; size: number; state: string }>(st, 'SELECT path, size, state FROM files ORDER BY path');
    expect(files.map((f) => [f.path, f.size])).toEqual([
      ['DCIM/100MEDIA/DJI_0001.JPG', statSync(path.join(src, 'a.jpg')).size],
      ['DCIM/100MEDIA/DJI_0002.MP4', statSync(path.join(src, 'b.mp4')).size],
    ]);
    for (const e of auditEntries(st, 'file-acquired')) {
      expect(e.size).toBe(statSync(path.join(roots, 'user', 'SDCARD', String(e.file))).size);
    }
    const seen = auditEntries(st, 'card-seen');
    expect(seen).toHaveLength(1);
    expect(Date.parse(seen[0]!.time)).toBeGreaterThan(lastWrite);
    expect(journalQuery(st, "SELECT type FROM events WHERE type = 'safe-to-remove'")).toHaveLength(1);

    // Pulled and put back: recognised as already secured, nothing copied again.
    const objects = storeObjects(st);
    const card = path.join(roots, 'user', 'SDCARD');
    renameSync(card, path.join(work, 'pulled'));
    await waitForEvent(watch, (e) => e.type === 'card-removed');
    renameSync(path.join(work, 'pulled'), card);
    const again = await waitForEvent(watch, (e) => e.type === 'ingest-done');
    expect(again).toMatchObject({ batchId: done.batchId, status: 'secured', alreadySecured: true });
    expect(auditEntries(st, 'file-acquired')).toHaveLength(2);
    expect(storeObjects(st)).toEqual(objects);

    watch.child.kill('SIGTERM');
    const end = await watch.exited;
    expect(end.code, end.stderr).toBe(0);
    expect(end.stdout).toContain('"watch-stopped"');
    expect(existsSync(path.join(st.dir, 'state', 'station.lock'))).toBe(false);
  });

  it('--once ingests the cards present, works the outbox and exits', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-watch-once-'));
    const st = makeStation(path.join(work, 'station'));
    const roots = path.join(work, 'media');
    const media = path.join(roots, 'CARD', 'DCIM', '100MEDIA');
    mkdirSync(media, { recursive: true });
    makeMediaFile(path.join(media, 'DJI_0001.JPG'), { kind: 'jpeg', name: 'x' });
    const r = runKluis(['watch', '--config', st.config, '--roots', roots, '--once', '--json'], { KLUIS_WATCH_SETTLE_MS: '200' });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; status?: string });
    expect(events.filter((e) => e.type === 'ingest-done')).toEqual([expect.objectContaining({ status: 'secured' })]);
    expect(events.at(-1)?.type).toBe('watch-stopped');
  });
});
