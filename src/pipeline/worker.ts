/**
 * The entry point of an ingest worker thread (workers.ts starts it): runs the tasks of tasks.ts
 * one at a time as the main thread sends them, and answers each with its result or its error
 * (code, message, hint and the errno codes of its causes, so the main thread can still tell a
 * full disk from a bad file). A background worker runs at a lower CPU priority than the card
 * reader. On 'close' it stops its persistent ExifTool and its spawner, and lets the thread end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { useCrashCounters } from './crash.js';
import { armSeams, type Seams } from './seams.js';
import { closeTasks, runTask, type TaskName } from './tasks.js';
import { serializeError, type WorkerRequest, type WorkerReply } from './thread-messages.js';
import { closeExiftool } from '../wrappers/exiftool.js';
import { closeSpawner } from '../wrappers/spawner.js';
import { asBackgroundThread } from '../wrappers/priority.js';

const port = parentPort;
if (!port) throw new Error('pipeline/worker.js runs only as a worker thread');
const data = workerData as { crash: SharedArrayBuffer; seams: Seams; background: boolean };
armSeams(data.seams);
useCrashCounters(data.crash);
// Sanitize/seal workers yield to the card reader: the card is free sooner, the work is the same.
if (data.background) asBackgroundThread();

port.on('message', (msg: WorkerRequest) => {
  if (msg.type === 'close') {
    void Promise.all([closeExiftool().catch(() => undefined), closeSpawner().catch(() => undefined), closeTasks().catch(() => undefined)]).then(() => port.close());
    return;
  }
  const reply = (r: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(r, transfer);
  runTask(msg.task as TaskName, msg.args as never, (bytes) => reply({ type: 'progress', id: msg.id, bytes })).then(
    (result) => reply({ type: 'done', id: msg.id, result }),
    (err: unknown) => reply({ type: 'error', id: msg.id, error: serializeError(err) }),
  );
});
