/**
 * Sealing on a thread of its own, for the card read: the card reader hashes each chunk and writes
 * the working copy while this thread seals the same bytes into the sealed original, so the two
 * halves of the acquire pass use two cores and the card is free sooner. It offers the SealWriter
 * interface (seal/stream.ts), so the reader does not know where sealing happens.
 *
 * Promises: chunks are sealed in the order written; `write` copies the chunk into one of a few
 * transferable buffers and returns (the caller may reuse its chunk at once), waiting only when
 * every buffer is still with the sealer (memory stays at POOL x POOL_BUFFER whatever the size);
 * a failure of the sealer (a full disk) arrives as the KluisError the local writer would have
 * thrown, at the next write or at finish; abort removes the partial file. One file at a time.
 *
 * `SealThread.start()` is null when the compiled thread script is not there (kluis run from its
 * TypeScript sources, as the unit tests do): the reader then seals on its own thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { KluisError } from '../errors.js';
import type { SealedFile, SealWriter } from '../seal/index.js';
import { deserializeError, WORKER_LIMITS, type FromSealer, type ToSealer } from './thread-messages.js';

const POOL = 4;
const POOL_BUFFER = 1 << 20;
const script = new URL('./seal-worker.js', import.meta.url);

export class SealThread {
  private readonly free: ArrayBuffer[] = [];
  private waitingBuf: Array<() => void> = [];
  private pending: { resolve: (m: FromSealer) => void } | null = null;
  private error: KluisError | null = null;
  private session = 0;

  private constructor(private readonly worker: Worker) {
    for (let i = 0; i < POOL; i++) this.free.push(new ArrayBuffer(POOL_BUFFER));
    worker.on('message', (m: FromSealer) => {
      if (m.t === 'buf') {
        this.free.push(m.buf);
        this.waitingBuf.shift()?.();
        return;
      }
      if (m.s !== this.session) return; // about a file already given up
      if (m.t === 'error') {
        this.error ??= deserializeError(m.error);
        this.waitingBuf.splice(0).forEach((w) => w());
        if (!this.pending) return;
      }
      const p = this.pending;
      this.pending = null;
      p?.resolve(m);
    });
    const died = (why: string): void => {
      this.error ??= new KluisError('E_INTERNAL', `the sealing thread ${why}`, { hint: 'this is a bug in kluis, please report it; run the same command again' });
      this.waitingBuf.splice(0).forEach((w) => w());
      const p = this.pending;
      this.pending = null;
      p?.resolve({ t: 'error', s: this.session, error: { code: 'E_INTERNAL', message: this.error.message, causes: [] } });
    };
    worker.on('error', (e) => died(`failed (${e.message})`));
    worker.on('exit', (code) => died(`ended (exit ${code})`));
  }

  static start(): SealThread | null {
    if (process.env.KLUIS_WORKERS === '0' || !import.meta.url.endsWith('.js') || !existsSync(fileURLToPath(script))) return null;
    return new SealThread(new Worker(script, { resourceLimits: WORKER_LIMITS }));
  }

  private ask(m: { t: 'finish' | 'abort' }): Promise<FromSealer> {
    return new Promise((resolve) => {
      this.pending = { resolve };
      this.worker.postMessage({ ...m, s: this.session } satisfies ToSealer);
    });
  }

  private async take(): Promise<ArrayBuffer> {
    while (this.free.length === 0 && !this.error) await new Promise<void>((r) => this.waitingBuf.push(r));
    if (this.error) throw this.error;
    return this.free.pop()!;
  }

  /** A writer for one sealed file; the previous one must have finished or aborted. */
  open(dst: string, recipients: string[], opts: { defer?: boolean } = {}): SealWriter {
    this.error = null;
    const s = ++this.session;
    this.worker.postMessage({ t: 'open', s, dst, recipients, defer: opts.defer === true } satisfies ToSealer);
    return {
      write: async (chunk: Uint8Array): Promise<void> => {
        for (let off = 0; off < chunk.length; ) {
          const buf = await this.take();
          const n = Math.min(buf.byteLength, chunk.length - off);
          new Uint8Array(buf, 0, n).set(chunk.subarray(off, off + n));
          this.worker.postMessage({ t: 'data', s, buf, len: n } satisfies ToSealer, [buf]);
          off += n;
        }
        if (this.error) throw this.error;
      },
      finish: async (): Promise<SealedFile> => {
        const m = await this.ask({ t: 'finish' });
        if (m.t === 'done') return { sha256: m.sha256, size: m.size, ...(m.pending ? { pending: m.pending } : {}) };
        throw this.error ?? new KluisError('E_INTERNAL', `the sealing thread answered ${m.t} to finish`);
      },
      abort: async (): Promise<void> => {
        await this.ask({ t: 'abort' });
      },
    };
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
