/**
 * The station's private spool (0700): per batch, `acquired/` (plaintext working copies of card
 * files), `sanitized/` (scratch of the sanitizers, short-lived), `thumbs/` (plaintext previews
 * until the sealed report exists) and `sealed/` (ciphertext: each stored file's sealed original,
 * made while the card was read, and the sealed sanitized objects waiting in the outbox). Spool
 * file names are random ids, never card names. At start-up, plaintext that the journal no longer
 * needs and sealed files it does not reference are removed. Held originals live outside the
 * spool (hold.ts) and are never removed here.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Journal } from './journal.js';

export function newId(bytes = 12): string {
  return randomBytes(bytes).toString('hex');
}

export interface SpoolPaths {
  dir: string;
  acquired: string;
  sanitized: string;
  sealed: string;
  thumbs: string;
}

export function spoolPaths(spoolDir: string, batchId: string): SpoolPaths {
  const dir = path.join(spoolDir, batchId);
  return { dir, acquired: path.join(dir, 'acquired'), sanitized: path.join(dir, 'sanitized'), sealed: path.join(dir, 'sealed'), thumbs: path.join(dir, 'thumbs') };
}

export async function ensureSpool(spoolDir: string, batchId: string): Promise<SpoolPaths> {
  const p = spoolPaths(spoolDir, batchId);
  for (const d of [p.dir, p.acquired, p.sanitized, p.sealed, p.thumbs]) await fsp.mkdir(d, { recursive: true, mode: 0o700 });
  return p;
}

async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

/**
 * Removes what a crash left behind: partial copies and sanitized files the journal does not
 * point at, plaintext of files already sealed, sealed files no delivery needs any more, and the
 * spool of finished batches. Returns the paths removed (what could not be removed is left for the
 * next clean-up).
 */
export async function cleanSpool(spoolDir: string, journal: Journal): Promise<string[]> {
  const removed: string[] = [];
  // Best effort: a file the disk will not let go of (a read-only or immutable folder) is left for
  // the next clean-up; it is never a reason to stop the work that follows.
  const rm = async (p: string): Promise<void> => {
    try {
      await fsp.rm(p, { recursive: true, force: true });
      removed.push(p);
    } catch {
      /* left for the next clean-up */
    }
  };
  for (const batchDir of await listFiles(spoolDir)) {
    const batchId = path.basename(batchDir);
    const batch = journal.batch(batchId);
    if (!batch) {
      await rm(batchDir);
      continue;
    }
    const files = journal.files(batchId);
    const deliveries = journal.deliveries(batchId);
    const keep = new Set<string>();
    const verified = new Set(deliveries.filter((d) => d.state === 'verified').map((d) => d.object_key));
    const open = new Set(deliveries.filter((d) => d.state === 'pending' || d.state === 'delivered').map((d) => d.object_key));
    for (const f of files) {
      if (f.state === 'acquired' || f.state === 'sanitized') {
        if (f.spool_path) keep.add(f.spool_path);
        if (f.state === 'sanitized' && f.sanitized_path) keep.add(f.sanitized_path);
        if (f.orig_sealed_path) keep.add(f.orig_sealed_path);
      }
      // The sealed original is what made the card safe to remove: it stays until the file's
      // sanitized object is delivered and read back somewhere, with nothing of it still under way.
      if (f.state === 'sealed' && f.orig_sealed_path) {
        const key = `${batchId}/${f.object_id}`;
        if (!verified.has(key) || open.has(key)) keep.add(f.orig_sealed_path);
      }
      // Thumbnails are only needed until the sealed report that carries them exists.
      if (f.thumb_path && batch.manifest_written !== 1) keep.add(f.thumb_path);
    }
    for (const d of deliveries) if (d.state === 'pending' || d.state === 'delivered') keep.add(d.local_path);
    const p = spoolPaths(spoolDir, batchId);
    for (const sub of [p.acquired, p.sanitized, p.thumbs, p.sealed]) {
      for (const f of await listFiles(sub)) if (!keep.has(f)) await rm(f);
    }
    if (batch.status === 'secured' || batch.status === 'failed') {
      if (keep.size === 0) await rm(batchDir);
    }
  }
  return removed;
}
