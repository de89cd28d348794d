/**
 * CPU priority of the tools kluis runs for its proofs (ffmpeg, ffprobe, ExifTool). Promises: a
 * child handed to asBackgroundWork runs at nice BACKGROUND_NICE (Linux: a smaller share of a busy
 * CPU; an idle CPU is still all its own), so on a loaded station the card read, which runs in
 * kluis's own process, is not slowed down by the proofs of files already read: the card is free
 * sooner and the total work is the same. Best effort: a child that is already gone, or a platform
 * that refuses, changes nothing else. Never raises a priority (a station run at nice 15 stays there).
 */
import { readlinkSync } from 'node:fs';
import * as os from 'node:os';

export const BACKGROUND_NICE = 10;

export function asBackgroundWork(child: { pid?: number | undefined }): void {
  if (child.pid === undefined) return;
  try {
    if (os.getPriority(child.pid) < BACKGROUND_NICE) os.setPriority(child.pid, BACKGROUND_NICE);
  } catch {
    // exited already, or not allowed here: it runs at the priority it has
  }
}

/**
 * Lowers the calling thread (a worker thread doing proofs: sanitize and seal of files already
 * read) to BACKGROUND_NICE, so the card reader and the main thread come first on a busy CPU. Linux
 * keeps a nice value per thread (setpriority on the thread id, read from /proc/thread-self);
 * elsewhere, or when refused, nothing changes. Children and threads it starts later inherit it.
 */
export function asBackgroundThread(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return;
    if (os.getPriority(tid) < BACKGROUND_NICE) os.setPriority(tid, BACKGROUND_NICE);
  } catch {
    // not Linux, or not allowed: the thread runs at the priority it has
  }
}
