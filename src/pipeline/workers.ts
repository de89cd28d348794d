/**
 * A small pool of worker threads for the byte-heavy tasks of tasks.ts. Promises:
 * - `run(task, args, onProgress)` resolves with the task's result or rejects with a KluisError
 *   carrying the task's code, message, hint and the errno codes of its causes (diskFullOr in
 *   process-file.ts walks them); tasks start in the order they were asked for, at most `size`
 *   at once;
 * - a worker that dies (a crash in native code, an uncaught error) fails its task with
 *   E_INTERNAL and is replaced; the pool never hangs on it;
 * - a worker has the seams armed in this thread (seams.ts), and crash points inside it count in
 *   the process-wide counters (crash.ts);
 * - `grow(n)` lets more tasks run at once (more workers start as tasks need them);
 * - `close()` lets every worker stop its ExifTool and end, and waits for that.
 *
 * When the compiled worker script is not there (kluis run from its TypeScript sources, as the
 * unit tests do) or KLUIS_WORKERS=0, tasks run on the main thread instead: same code, same
 * results, one core.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import PQueue from 'p-queue';
import { KluisError } from '../errors.js';
import { crashCounters } from './crash.js';
import { seams } from './seams.js';
import { runTask, type TaskName, type Tasks } from './tasks.js';
import { deserializeError, WORKER_LIMITS, type WorkerReply, type WorkerRequest } from './thread-messages.js';

const script = new URL('./worker.js', import.meta.url);

function threadsAvailable(): boolean {
  if (process.env.KLUIS_WORKERS === '0') return false;
  return import.meta.url.endsWith('.js') && existsSync(fileURLToPath(script));
}

interface Job {
  id: number;
  task: TaskName;
  progress: (bytes: number) => void;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  /** Tasks in the order asked for, at most `size` at once (with threads: one per worker). */
  private readonly queue: PQueue;
  private nextId = 1;
  private closed = false;
  readonly threads: boolean;

  /** `background`: the workers run at a lower CPU priority (wrappers/priority.ts), as proofs do. */
  constructor(
    size: number,
    private readonly opts: { background?: boolean } = {},
  ) {
    this.threads = threadsAvailable();
    this.queue = new PQueue({ concurrency: size });
  }

  /** At most this many tasks at once (one per worker thread). */
  get size(): number {
    return this.queue.concurrency;
  }

  /** Runs up to `size` tasks at once from now on (a pool never shrinks); workers start as needed. */
  grow(size: number): void {
    if (!this.closed && size > this.queue.concurrency) this.queue.concurrency = size;
  }

  run<K extends TaskName>(task: K, args: Tasks[K]['args'], onProgress?: (bytes: number) => void): Promise<Tasks[K]['result']> {
    if (this.closed) return Promise.reject(new KluisError('E_INTERNAL', 'worker pool used after close'));
    const progress = onProgress ?? ((): void => undefined);
    // Inline mode: the same tasks on this thread.
    const work = (): Promise<unknown> => (this.threads ? this.onThread(task, args, progress) : runTask(task, args, progress));
    return this.queue.add(work).catch((err: unknown) => {
      // Still queued when the pool closed: close() cleared the queue.
      if (this.closed && (err as Error | undefined)?.name === 'AbortError') throw new KluisError('E_INTERNAL', 'worker pool closed');
      throw err;
    }) as Promise<Tasks[K]['result']>;
  }

  /** Runs one task on an idle worker; the queue runs at most `size` tasks, so one is idle or may be started. */
  private onThread(task: TaskName, args: unknown, progress: (bytes: number) => void): Promise<unknown> {
    const slot = this.slots.find((s) => s.job === null) ?? this.spawn();
    return new Promise((resolve, reject) => {
      const job: Job = { id: this.nextId++, task, progress, resolve, reject };
      slot.job = job;
      slot.worker.ref(); // a busy worker keeps the process alive: its caller awaits it
      try {
        slot.worker.postMessage({ type: 'task', id: job.id, task, args } satisfies WorkerRequest);
      } catch (err) {
        slot.job = null;
        slot.worker.unref();
        reject(err);
      }
    });
  }

  private spawn(): Slot {
    const worker = new Worker(script, { workerData: { crash: crashCounters(), seams: seams(), background: this.opts.background === true }, resourceLimits: WORKER_LIMITS });
    const slot: Slot = { worker, job: null };
    this.slots.push(slot);
    worker.on('message', (m: WorkerReply) => {
      const job = slot.job;
      if (!job || job.id !== m.id) return;
      if (m.type === 'progress') {
        job.progress(m.bytes);
        return;
      }
      slot.job = null;
      slot.worker.unref();
      if (m.type === 'done') job.resolve(m.result);
      else job.reject(deserializeError(m.error));
    });
    const died = (why: string, cause?: unknown): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      const job = slot.job;
      slot.job = null;
      job?.reject(new KluisError('E_INTERNAL', `a worker thread ${why} while it ran ${job.task}`, { hint: 'this is a bug in kluis, please report it; run the same command again', ...(cause ? { cause } : {}) }));
    };
    worker.on('error', (err) => died(`failed (${err.message})`, err));
    worker.on('exit', (code) => died(`ended (exit ${code})`));
    // An idle worker does not keep the process alive (onThread refs it while it has a task).
    worker.unref();
    return slot;
  }

  /** Stops every worker (after its ExifTool) once the tasks under way have ended; queued tasks are refused. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.clear();
    await this.queue.onIdle();
    await Promise.all(
      [...this.slots].map(async (s) => {
        const ended = new Promise<void>((r) => s.worker.once('exit', () => r()));
        s.worker.ref();
        s.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
        const timer = setTimeout(() => void s.worker.terminate(), 5000);
        await ended;
        clearTimeout(timer);
      }),
    );
  }
}
