/**
 * Warnings that arise below the flow and belong to no batch: a fallback taken (sodium-native
 * missing, ExifTool without batch mode), a step that could not be recorded, a card that could not
 * be set back to read-only. Modules call `notice()`; whoever shows things to a person (the
 * command line) subscribes with `onNotice()` and renders them. Nothing here prints.
 *
 * Notices raised before anyone listens are kept (at most 100) and handed to the first listener,
 * so a warning from start-up is not lost. A listener that throws is dropped for that notice.
 * A notice raised in a worker thread (sealing, sanitizing) travels to the main thread over a
 * broadcast channel and reaches the listeners there.
 */
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import type { WarningCode } from '../error-codes.js';

export interface Notice {
  code: WarningCode;
  message: string;
}

type Listener = (n: Notice) => void;

const listeners = new Set<Listener>();
const early: Notice[] = [];
const EARLY_MAX = 100;
let channel: BroadcastChannel | undefined;

function theChannel(): BroadcastChannel {
  if (!channel) {
    channel = new BroadcastChannel('kluis-notices');
    channel.unref(); // never keeps the process alive
  }
  return channel;
}

export function notice(code: WarningCode, message: string): void {
  const n: Notice = { code, message };
  if (!isMainThread) {
    theChannel().postMessage(n);
    return;
  }
  deliver(n);
}

function deliver(n: Notice): void {
  if (listeners.size === 0) {
    if (early.length < EARLY_MAX) early.push(n);
    return;
  }
  for (const l of listeners) {
    try {
      l(n);
    } catch {
      // a broken listener must not break the caller
    }
  }
}

/** Subscribes; returns the function that unsubscribes. The first listener gets the early ones. */
export function onNotice(l: Listener): () => void {
  if (isMainThread && !channel) theChannel().onmessage = (ev: unknown) => deliver((ev as { data: Notice }).data);
  listeners.add(l);
  for (const n of early.splice(0)) {
    try {
      l(n);
    } catch {
      // as above
    }
  }
  return () => listeners.delete(l);
}
