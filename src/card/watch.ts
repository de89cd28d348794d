/**
 * Watch: notices cards under the mount roots and says when each one is ready to read.
 *
 * A card is a folder one or two levels below a root (`/media/CARD`, `/run/media/USER/CARD`) that
 * holds a `DCIM/` folder. It is handed over (`onCard`) only once it has settled: its whole
 * listing (paths, sizes, modification times) has not changed for `settleMs`. A card is handed
 * over at most once while it stays present; it is handed over again only after it went away and
 * came back (a re-inserted card). A card that goes away is reported as removed (`onRemoved`),
 * never as a deletion: nothing is forgotten about its batch.
 *
 * chokidar (inotify) gives quick notice of new folders; because a mount covers the folder
 * chokidar watches, every candidate is then polled with lstat, and the roots are re-scanned
 * every `rescanMs` so a mount that inotify cannot see is still found.
 *
 * Never: opens a card file for writing, follows a symbolic link, or reads file contents.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';

export interface CardWatcherOptions {
  roots: string[];
  /** How long a card's listing must stay unchanged before it is handed over (ms, default 2000). */
  settleMs?: number;
  /** How often the roots are re-scanned for cards inotify did not report (ms, default 5000). */
  rescanMs?: number;
  /** Called once per settled card; the watcher does not wait for it. */
  onCard: (card: string) => void;
  /** Called when a known card (settling or handed over) disappears. */
  onRemoved?: (card: string) => void;
  /** Called when a folder with DCIM/ is first noticed (before settling). */
  onDetected?: (card: string) => void;
  /** Problems that do not stop the watcher (an unreadable root, a chokidar error). */
  onWarning?: (message: string) => void;
}

type CardState = { phase: 'settling'; timer: NodeJS.Timeout } | { phase: 'handed' };

/** The settle time when none is given (ms); `kluis watch` takes another from --settle or KLUIS_WATCH_SETTLE_MS. */
export function defaultSettleMs(): number {
  return 2000;
}

/** A folder that holds DCIM/ (any case, as FAT cards are case-insensitive). */
export async function isCardFolder(dir: string): Promise<boolean> {
  try {
    const st = await fsp.lstat(dir);
    if (!st.isDirectory()) return false;
    for (const name of await fsp.readdir(dir)) {
      if (name.toUpperCase() !== 'DCIM') continue;
      if ((await fsp.lstat(path.join(dir, name))).isDirectory()) return true;
    }
  } catch {
    // gone, unreadable or not yet mounted: not a card (yet)
  }
  return false;
}

/**
 * A signature of the card's whole listing: every path with its size and modification time.
 * Equal signatures some time apart mean nothing is still being written or mounted.
 * Returns null when the card is not readable (gone).
 */
export async function listingSignature(card: string): Promise<string | null> {
  const parts: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await fsp.readdir(path.join(card, rel))).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const st = await fsp.lstat(path.join(card, r));
      parts.push(`${r}\0${st.isDirectory() ? 'd' : st.size}\0${st.mtimeMs}`);
      if (st.isDirectory()) await walk(r);
    }
  };
  try {
    await walk('');
  } catch (err) {
    // A file vanishing between readdir and lstat is a change, not a gone card.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (await isCardFolder(card))) return `changing:${Date.now()}:${Math.random()}`;
    return null;
  }
  return parts.join('\n');
}

export class CardWatcher {
  private readonly roots: string[];
  private readonly settleMs: number;
  private readonly rescanMs: number;
  private readonly cards = new Map<string, CardState>();
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private scanning: Promise<void> | undefined;

  constructor(private readonly opts: CardWatcherOptions) {
    this.roots = opts.roots.map((r) => path.resolve(r));
    this.settleMs = opts.settleMs ?? defaultSettleMs();
    this.rescanMs = opts.rescanMs ?? 5000;
  }

  /** Starts watching; resolves once the roots have been scanned once (cards already present are found). */
  async start(): Promise<void> {
    const existing: string[] = [];
    for (const r of this.roots) {
      const st = await fsp.stat(r).catch(() => null);
      if (st?.isDirectory()) existing.push(r);
      else this.opts.onWarning?.(`watch root ${r} does not exist (yet); it is re-checked every ${Math.round(this.rescanMs / 1000)} s`);
    }
    if (existing.length > 0) {
      const w = chokidarWatch(existing, { depth: 2, ignoreInitial: true, followSymlinks: false, ignorePermissionErrors: true, persistent: true });
      this.watcher = w;
      w.on('addDir', (p: string) => void this.noticed(p));
      w.on('add', (p: string) => void this.noticed(p));
      w.on('unlinkDir', (p: string) => void this.maybeGone(p));
      w.on('error', (err: unknown) => this.opts.onWarning?.(`watcher: ${(err as Error).message ?? String(err)}`));
      await new Promise<void>((resolve) => w.once('ready', () => resolve()));
    }
    await this.rescan();
    this.rescanTimer = setInterval(() => void this.rescan(), this.rescanMs);
    this.rescanTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    for (const s of this.cards.values()) if (s.phase === 'settling') clearTimeout(s.timer);
    await this.watcher?.close();
    await this.scanning;
  }

  /** True while some card is noticed but not yet handed over. */
  get settling(): boolean {
    return [...this.cards.values()].some((s) => s.phase === 'settling');
  }

  /** Re-scans every root for card folders one and two levels down; also notices removed cards. */
  rescan(): Promise<void> {
    if (this.scanning) return this.scanning;
    this.scanning = (async () => {
      const found = new Set<string>();
      for (const root of this.roots) {
        for (const a of await subdirs(root)) {
          if (await isCardFolder(a)) found.add(a);
          for (const b of await subdirs(a)) if (await isCardFolder(b)) found.add(b);
        }
      }
      for (const c of found) this.candidate(c);
      for (const c of [...this.cards.keys()]) if (!found.has(c) && !(await isCardFolder(c))) this.gone(c);
    })().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  /** Something appeared below a root: its card folder candidates are the ancestors 1 and 2 levels down. */
  private async noticed(p: string): Promise<void> {
    if (this.stopped) return;
    const root = this.roots.find((r) => p === r || p.startsWith(`${r}/`));
    if (!root) return;
    const rel = path.relative(root, p).split(path.sep);
    for (const depth of [1, 2]) {
      if (rel.length < depth) continue;
      const dir = path.join(root, ...rel.slice(0, depth));
      if (await isCardFolder(dir)) this.candidate(dir);
      else if (rel.length === depth) this.probeNewFolder(dir);
    }
  }

  /**
   * A new empty folder may be a mount point about to be mounted: inotify on it sees nothing
   * once the card is mounted over it, so it is polled for a while.
   */
  private probeNewFolder(dir: string): void {
    const until = Date.now() + 30_000;
    const tick = async (): Promise<void> => {
      if (this.stopped || this.cards.has(dir) || Date.now() > until) return;
      if (await isCardFolder(dir)) return this.candidate(dir);
      if (!(await fsp.stat(dir).catch(() => null))) return;
      setTimeout(() => void tick(), 250).unref();
    };
    void tick();
  }

  private candidate(card: string): void {
    if (this.stopped || this.cards.has(card)) return;
    this.opts.onDetected?.(card);
    this.settle(card, null, Date.now());
  }

  /** Polls the listing until it stayed the same for settleMs, then hands the card over. */
  private settle(card: string, last: string | null, since: number): void {
    const poll = Math.max(50, Math.min(500, Math.floor(this.settleMs / 4)));
    const timer = setTimeout(async () => {
      if (this.stopped || this.cards.get(card)?.phase !== 'settling') return;
      const sig = await listingSignature(card);
      if (this.stopped || this.cards.get(card)?.phase !== 'settling') return;
      if (sig === null || !(await isCardFolder(card))) return this.gone(card);
      if (sig !== last) return this.settle(card, sig, Date.now());
      if (Date.now() - since >= this.settleMs) {
        this.cards.set(card, { phase: 'handed' });
        this.opts.onCard(card);
        return;
      }
      this.settle(card, sig, since);
    }, last === null ? 0 : poll);
    this.cards.set(card, { phase: 'settling', timer });
  }

  private async maybeGone(p: string): Promise<void> {
    for (const c of [...this.cards.keys()]) {
      if (p === c || c.startsWith(`${p}/`) || p.startsWith(`${c}/`)) {
        if (!(await isCardFolder(c))) this.gone(c);
      }
    }
  }

  private gone(card: string): void {
    const s = this.cards.get(card);
    if (!s) return;
    if (s.phase === 'settling') clearTimeout(s.timer);
    this.cards.delete(card);
    this.opts.onRemoved?.(card);
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    const out: string[] = [];
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) if (e.isDirectory() && !e.name.startsWith('.')) out.push(path.join(dir, e.name));
    return out;
  } catch {
    return [];
  }
}
