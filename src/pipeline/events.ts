/**
 * Progress and state events of the pipeline. The same events drive the terminal output, the
 * journal's event table (which the dashboard tails) and tests. Listeners never influence the
 * pipeline; an exception in a listener is reported, not propagated.
 */
import { notice } from '../util/notices.js';
export type PipelineEvent =
  | { type: 'card-seen'; batchId: string; card: string; files: number; bytes: number; label?: string }
  /** The card is mounted read-write; `refused`: policy refuses to read it (an E_CARD_WRITABLE error follows). */
  | { type: 'card-writable'; batchId: string; card: string; refused?: boolean; mountOptions?: string }
  /** Something about the card worth a look that does not stop the work (e.g. W_CARD_NO_DCIM). */
  | { type: 'card-warning'; batchId: string; card: string; code: string; message: string }
  | { type: 'acquire-progress'; batchId: string; path: string; bytesDone: number; bytesTotal: number; filesDone: number; filesTotal: number }
  | {
      type: 'file-state';
      batchId: string;
      path: string;
      state: string;
      error?: { code: string; message: string; hint?: string };
      /** state 'held': where the sealed original is kept (a path on the station, or the originals targets). */
      kept?: { heldAt?: string; targets?: string[] };
    }
  | { type: 'safe-to-remove'; batchId: string; card: string }
  /** The card was read to the end, but the original bytes of these files are not sealed: keep the card. */
  | { type: 'card-not-safe'; batchId: string; card: string; files: Array<{ path: string; code: string; message: string }> }
  | { type: 'card-missing'; batchId: string; card: string; remaining: number }
  | { type: 'delivery'; batchId: string; object: string; target: string; state: string; error?: { code: string; message: string } }
  | { type: 'batch-status'; batchId: string; status: string }
  | { type: 'wiped'; batchId: string; files: number };

export type EventSink = (e: PipelineEvent) => void;

export function fanOut(...sinks: Array<EventSink | undefined>): EventSink {
  return (e) => {
    for (const s of sinks) {
      if (!s) continue;
      try {
        s(e);
      } catch (err) {
        notice('W_EVENT_LISTENER', `event listener failed: ${(err as Error).message}`);
      }
    }
  };
}
