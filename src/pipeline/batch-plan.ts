/**
 * What a batch stores and what it needs before the card is read: which files are copied,
 * sanitized and stored (the admin's policy), which targets take sealed originals, whether the
 * spool disk has room, and the rejected entries reported (and audited once). Decisions only;
 * never reads the card.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../errors.js';
import type { EventSink } from './events.js';
import type { FileRow } from './journal.js';
import type { Station } from './station.js';

/**
 * Which files are copied, sanitized and stored: footage always; an LRF proxy (video bytes in a
 * sidecar role) only when the admin's policy says `lrf: "sanitize"`; every other sidecar never.
 */
export function isStored(station: Station, f: Pick<FileRow, 'class' | 'format' | 'path'>): boolean {
  if (f.class === 'footage') return true;
  const video = f.format === 'mp4' || f.format === 'mov';
  return f.class === 'sidecar' && video && f.path.toLowerCase().endsWith('.lrf') && station.config.policy.lrf === 'sanitize';
}

/** The targets the admin allowed sealed originals on. */
export function originalsTargets(station: Station): string[] {
  return [...station.targetConfigs.values()].filter((t) => t.originalsAllowed).map((t) => t.name);
}

/** Says (an event per file) why each rejected entry is not taken; audits it once, when the batch is new. */
export async function reportRejections(station: Station, batchId: string, firstTime: boolean, emit: EventSink): Promise<void> {
  for (const f of station.journal.files(batchId)) {
    if (f.state !== 'rejected' && !(f.state === 'failed' && f.error_code === 'E_CARD_READ' && !f.card_sha256)) continue;
    const code = f.error_code ?? 'E_REJECTED';
    emit({ type: 'file-state', batchId, path: f.path, state: f.state, error: { code, message: f.error_message ?? 'rejected', ...(f.error_hint ? { hint: f.error_hint } : {}) } });
    if (firstTime) await station.audit.append('file-rejected', { batchId, file: f.path, code: f.error_code, reason: f.error_message });
  }
}

/** Refuses (E_DISK_FULL) a batch whose files the spool disk has no room for. */
export async function checkSpace(station: Station, batchId: string): Promise<void> {
  const need = station.journal
    .files(batchId)
    .filter((f) => f.state === 'seen' && isStored(station, f))
    .reduce((s, f) => s + f.size, 0);
  const biggest = Math.max(0, ...station.journal.files(batchId).map((f) => f.size));
  // Room for every file's sealed original and its working copy (which becomes its sealed
  // sanitized copy), plus, for the largest, the sanitizer's scratch at worst (the ffmpeg fallback
  // for video works on files) and its partial sealed output.
  const needed = 2 * need + 2 * biggest + 16 * 1024 * 1024;
  const st = await fsp.statfs(station.layout.spoolDir);
  const free = Number(st.bavail) * Number(st.bsize);
  if (free < needed) {
    throw new KluisError('E_DISK_FULL', `the spool disk has ${mb(free)} free, the card needs about ${mb(needed)}`, {
      hint: `free space on the disk holding ${station.layout.spoolDir} (or wait for queued batches to deliver), then insert the card again`,
    });
  }
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
