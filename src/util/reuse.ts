/**
 * Reusable byte buffers for a thread's large, short-lived working memory: a picture read whole,
 * the sanitized picture, a card reader's or a sealer's chunk buffers. Promises:
 * - `take(n)` gives exactly n bytes (not zero-filled) that no other caller holds until they are
 *   given back; `give(b)` hands them back (a buffer that did not come from `take`, or one given
 *   twice, is ignored);
 * - at most KEEP buffers, of at most MAX_KEPT bytes together, stay held for reuse per thread;
 *   a buffer beyond that is left to the garbage collector.
 * Why: a new buffer of megabytes per file costs more in page faults and garbage collection (V8
 * collects more often as outside memory grows) than the copy into it, and every thread's malloc
 * arena keeps some of what was freed. A caller gives a buffer back only when nothing it handed
 * the bytes to can still read them.
 */

/** Buffers kept for reuse per thread. */
const KEEP = 8;
/** Bytes kept for reuse per thread, all buffers together (two 12-20 MP photos and some chunks). */
const MAX_KEPT = 48 << 20;
/** Capacities are rounded up to this, so pictures of slightly different sizes share buffers. */
const STEP = 1 << 20;

const free: Buffer[] = [];
/** The buffer a view handed out by `take` lives in. */
const backing = new WeakMap<Buffer, Buffer>();

export function take(n: number): Buffer {
  if (n > MAX_KEPT) return Buffer.allocUnsafeSlow(n);
  let best = -1;
  for (let i = 0; i < free.length; i++) if (free[i]!.length >= n && (best < 0 || free[i]!.length < free[best]!.length)) best = i;
  const buf = best >= 0 ? free.splice(best, 1)[0]! : Buffer.allocUnsafeSlow(Math.max(STEP, Math.ceil(n / STEP) * STEP));
  const view = buf.subarray(0, n);
  backing.set(view, buf);
  return view;
}

export function give(view: Buffer | Uint8Array | null | undefined): void {
  if (!view || !Buffer.isBuffer(view)) return;
  const buf = backing.get(view);
  if (!buf) return;
  backing.delete(view);
  if (free.includes(buf)) return;
  let kept = buf.length;
  for (const b of free) kept += b.length;
  if (free.length < KEEP && kept <= MAX_KEPT) free.push(buf);
}

/** Bytes held for reuse on this thread (for tests). */
export function keptBytes(): number {
  return free.reduce((a, b) => a + b.length, 0);
}
