/**
 * What the ingest threads say to each other: the messages of the worker pool (workers.ts ⇄
 * worker.ts) and of the card reader's sealing thread (seal-thread.ts ⇄ seal-worker.ts), an error
 * as it crosses a thread (code, message, hint, details and the errno codes of its causes, so the
 * main thread can still tell a full disk from a bad file), and the V8 limits every such thread
 * gets. Plain data and two pure functions; it starts no thread and imports none of them.
 */
import { KluisError, type ErrorCode } from '../errors.js';

/** Main thread → pool worker. */
export type WorkerRequest = { type: 'task'; id: number; task: string; args: unknown } | { type: 'close' };
/** Pool worker → main thread. */
export type WorkerReply =
  | { type: 'progress'; id: number; bytes: number }
  | { type: 'done'; id: number; result: unknown }
  | { type: 'error'; id: number; error: SerializedError };

/** Card reader → its sealing thread. `s` numbers the file (session): answers about an earlier file are ignored. */
export type ToSealer =
  | { t: 'open'; s: number; dst: string; recipients: string[]; defer: boolean }
  | { t: 'data'; s: number; buf: ArrayBuffer; len: number }
  | { t: 'finish'; s: number }
  | { t: 'abort'; s: number };
/** Sealing thread → card reader. Every finish gets exactly one 'done' or 'error', every abort one 'aborted'; a write failure one 'error'. */
export type FromSealer =
  | { t: 'buf'; buf: ArrayBuffer }
  | { t: 'done'; s: number; sha256: string; size: number; pending?: string }
  | { t: 'aborted'; s: number }
  | { t: 'error'; s: number; error: SerializedError };

export interface SerializedError {
  code: string;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
  /** The errno / error codes along the cause chain, outermost first. */
  causes: Array<{ code?: string; message: string }>;
}

export function serializeError(err: unknown): SerializedError {
  const causes: SerializedError['causes'] = [];
  for (let c = (err as { cause?: unknown })?.cause, n = 0; c && n < 8; c = (c as { cause?: unknown }).cause, n++) {
    const code = (c as { code?: unknown }).code;
    causes.push({ ...(typeof code === 'string' ? { code } : {}), message: String((c as Error).message ?? c) });
  }
  if (err instanceof KluisError) {
    let details: Record<string, unknown> | undefined;
    try {
      details = err.details ? (structuredClone(err.details) as Record<string, unknown>) : undefined;
    } catch {
      details = undefined;
    }
    return { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(details ? { details } : {}), causes };
  }
  const e = err as NodeJS.ErrnoException;
  return { code: 'E_INTERNAL', message: String(e?.message ?? err), causes: [{ ...(typeof e?.code === 'string' ? { code: e.code } : {}), message: String(e?.message ?? err) }, ...causes] };
}

/** Rebuilds a worker's error; its cause chain is plain Errors with the original codes. */
export function deserializeError(s: SerializedError): KluisError {
  let cause: Error | undefined;
  for (const c of [...s.causes].reverse()) {
    const e: Error & { code?: string } = new Error(c.message, cause ? { cause } : undefined);
    if (c.code) e.code = c.code;
    cause = e;
  }
  if (s.code === 'E_INTERNAL' && s.causes[0]?.code && !s.hint) {
    // A plain error from Node (ENOSPC, EIO…): let asKluisError's rules see it as it was.
    return new KluisError('E_INTERNAL', s.message, { ...(cause ? { cause } : {}) });
  }
  return new KluisError(s.code as ErrorCode, s.message, { ...(s.hint ? { hint: s.hint } : {}), ...(s.details ? { details: s.details } : {}), ...(cause ? { cause } : {}) });
}

/**
 * A small young generation for every ingest thread: each thread is a V8 heap of its own, and the
 * default young generation (up to 16 MiB per semi-space) made each one ~12 MB bigger for nothing
 * measurable in speed (a card of 58 clips on the 2-core VM: peak RSS ~300-330 MB instead of
 * ~320-380, the same CPU seconds). Their big buffers live outside the heap anyway.
 */
export const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 };
