/**
 * Card identity and mount state. A card is recognised by its volume UUID/label where the system
 * has them, plus a fingerprint of its listing (paths, sizes, modification times), so that a
 * re-inserted card resumes its batch and an already secured card is recognised.
 *
 * Mount options come from /proc/self/mountinfo: a card mounted read-write is reported so the
 * caller can warn (and audit) or refuse; this module only reads, it never remounts.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { CardEntry } from './inventory.js';

export interface CardIdentity {
  fingerprint: string;
  label?: string;
  uuid?: string;
  device?: string;
  mountPoint?: string;
  fsType?: string;
  /** True when the file system holding the card is mounted read-write. */
  writable: boolean;
  mountOptions?: string;
}

export function listingFingerprint(entries: CardEntry[]): string {
  const h = createHash('sha256');
  h.update('kluis-card-listing-v1\n');
  for (const e of entries) h.update(`${e.path}\0${e.size}\0${Math.floor(e.mtimeMs)}\n`);
  return h.digest('hex');
}

interface MountInfo {
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export async function readMounts(): Promise<MountInfo[]> {
  let text: string;
  try {
    text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const g = post.split(' ');
    mounts.push({ mountPoint: unescapeMount(f[4] ?? ''), options: f[5] ?? '', fsType: g[0] ?? '', source: unescapeMount(g[1] ?? '') });
  }
  return mounts;
}

export async function mountOf(dir: string): Promise<MountInfo | undefined> {
  const real = await fsp.realpath(dir).catch(() => path.resolve(dir));
  let best: MountInfo | undefined;
  for (const m of await readMounts()) {
    const mp = m.mountPoint;
    const inside = real === mp || real.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

async function linkNameFor(dirPath: string, device: string): Promise<string | undefined> {
  try {
    for (const name of await fsp.readdir(dirPath)) {
      const target = await fsp.realpath(path.join(dirPath, name)).catch(() => '');
      if (target && target === device) return unescapeMount(name.replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
    }
  } catch {
    // no /dev/disk links on this system
  }
  return undefined;
}

export async function cardIdentity(cardRoot: string, entries: CardEntry[]): Promise<CardIdentity> {
  const fingerprint = listingFingerprint(entries);
  const m = await mountOf(cardRoot);
  if (!m) return { fingerprint, writable: true };
  const opts = m.options.split(',');
  const id: CardIdentity = {
    fingerprint,
    mountPoint: m.mountPoint,
    fsType: m.fsType,
    device: m.source,
    writable: !opts.includes('ro'),
    mountOptions: m.options,
  };
  if (m.source.startsWith('/dev/')) {
    const dev = await fsp.realpath(m.source).catch(() => m.source);
    const uuid = await linkNameFor('/dev/disk/by-uuid', dev);
    const label = await linkNameFor('/dev/disk/by-label', dev);
    if (uuid) id.uuid = uuid;
    if (label) id.label = label;
  }
  return id;
}
