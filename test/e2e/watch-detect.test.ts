/**
 * CardWatcher (src/card/watch.ts) against real folders and a real tmpfs mount: a card is handed
 * over once, only after its listing stopped changing; a folder without DCIM/ is never a card;
 * a card two levels down is found; a pulled card is reported removed and a re-inserted one is
 * handed over again; a card mounted over an empty mount point (which inotify cannot see) is
 * still found. Ordering is asserted (what happened before what), never durations.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp, mkdtempSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CardWatcher, listingSignature } from '../../src/card/watch.js';

const watchers: CardWatcher[] = [];
const mounts: string[] = [];
afterEach(async () => {
  for (const w of watchers.splice(0)) await w.stop();
  for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m]);
});

function root(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'kluis-watchroot-'));
}

/** Starts a watcher and returns a log of what it said, and a way to wait for a given entry. */
async function watch(roots: string[], settleMs = 400) {
  const log: Array<{ ev: 'card' | 'removed' | 'detected'; card: string; at: number; listing?: string | null }> = [];
  const waiters: Array<() => void> = [];
  const push = (e: (typeof log)[number]): void => {
    log.push(e);
    for (const w of waiters.splice(0)) w();
  };
  const w = new CardWatcher({
    roots,
    settleMs,
    rescanMs: 300,
    onCard: (card) => {
      const at = Date.now();
      // Capture the listing at hand-over, synchronously enough to compare with the final one.
      void listingSignature(card).then((listing) => push({ ev: 'card', card, at, listing }));
    },
    onRemoved: (card) => push({ ev: 'removed', card, at: Date.now() }),
    onDetected: (card) => push({ ev: 'detected', card, at: Date.now() }),
  });
  watchers.push(w);
  await w.start();
  const until = async (pred: () => boolean): Promise<void> => {
    while (!pred()) await new Promise<void>((r) => waiters.push(r));
  };
  return { w, log, until };
}

function makeCardDir(dir: string): void {
  mkdirSync(path.join(dir, 'DCIM', '100MEDIA'), { recursive: true });
  writeFileSync(path.join(dir, 'DCIM', '100MEDIA', 'DJI_0001.JPG'), Buffer.alloc(1000, 1));
}

describe('CardWatcher', () => {
  it('hands over a card that is already there at start, once', async () => {
    const r = root();
    makeCardDir(path.join(r, 'CARD'));
    const { log, until, w } = await watch([r]);
    await until(() => log.some((e) => e.ev === 'card'));
    await w.rescan();
    await w.rescan();
    expect(log.filter((e) => e.ev === 'card').map((e) => e.card)).toEqual([path.join(r, 'CARD')]);
  });

  it('waits until files still being copied are complete before handing the card over', async () => {
    const r = root();
    const { log, until } = await watch([r], 600);
    const card = path.join(r, 'CARD');
    makeCardDir(card);
    // A 2 MB file written in 8 pieces with pauses shorter than the settle time.
    const big = path.join(card, 'DCIM', '100MEDIA', 'DJI_0002.MP4');
    const fh = await fsp.open(big, 'w');
    for (let i = 0; i < 8; i++) {
      await fh.write(Buffer.alloc(256 * 1024, i));
      await fh.sync();
      await new Promise((res) => setTimeout(res, 200));
    }
    await fh.close();
    const lastWrite = statSync(big).mtimeMs;
    const finalListing = await listingSignature(card);
    await until(() => log.some((e) => e.ev === 'card'));
    const handed = log.find((e) => e.ev === 'card')!;
    expect(handed.listing).toBe(finalListing);
    expect(handed.at).toBeGreaterThan(lastWrite);
    expect(log.filter((e) => e.ev === 'card')).toHaveLength(1);
  });

  it('finds a card two levels down (/run/media/USER/CARD) and never takes a folder without DCIM', async () => {
    const r = root();
    const { log, until } = await watch([r]);
    mkdirSync(path.join(r, 'user', 'NOTACARD', 'PHOTOS'), { recursive: true });
    writeFileSync(path.join(r, 'user', 'NOTACARD', 'PHOTOS', 'x.jpg'), 'x');
    makeCardDir(path.join(r, 'user', 'CARD'));
    await until(() => log.some((e) => e.ev === 'card'));
    await new Promise((res) => setTimeout(res, 100));
    expect(log.filter((e) => e.ev === 'card').map((e) => e.card)).toEqual([path.join(r, 'user', 'CARD')]);
    expect(log.some((e) => e.card.includes('NOTACARD'))).toBe(false);
  });

  it('reports a pulled card as removed and hands it over again when it is re-inserted', async () => {
    const r = root();
    const card = path.join(r, 'CARD');
    makeCardDir(card);
    const { log, until } = await watch([r]);
    await until(() => log.some((e) => e.ev === 'card'));
    const away = path.join(os.tmpdir(), `kluis-pulled-${process.pid}-${Date.now()}`);
    renameSync(card, away);
    await until(() => log.some((e) => e.ev === 'removed'));
    renameSync(away, card);
    await until(() => log.filter((e) => e.ev === 'card').length === 2);
    expect(log.map((e) => e.ev)).toEqual(['detected', 'card', 'removed', 'detected', 'card']);
  });

  it('finds a card mounted over an empty mount point (tmpfs, as udisks does)', async () => {
    const r = root();
    const { log, until } = await watch([r]);
    const mp = path.join(r, 'SDCARD');
    mkdirSync(mp);
    await new Promise((res) => setTimeout(res, 150)); // let inotify see the empty folder first
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'kluis-test-card', mp]);
    mounts.push(mp);
    makeCardDir(mp);
    await until(() => log.some((e) => e.ev === 'card'));
    expect(log.find((e) => e.ev === 'card')!.card).toBe(mp);
  });
});
