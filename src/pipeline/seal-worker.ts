/**
 * The sealing thread of the card read (seal-thread.ts starts it): seals the chunks it is sent
 * into the sealed original with seal/'s streaming writer, in order, and gives each buffer back.
 * One file at a time; a failure is reported once, and the chunks after it are only given back.
 */
import { parentPort } from 'node:worker_threads';
import { createSealWriter, parsePublicKey, type SealWriter } from '../seal/index.js';
import { serializeError, type FromSealer, type ToSealer } from './thread-messages.js';

const port = parentPort;
if (!port) throw new Error('pipeline/seal-worker.js runs only as a worker thread');

let writer: SealWriter | null = null;
let session = 0;
let failed = false;
let chain: Promise<void> = Promise.resolve();
const reply = (m: FromSealer, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
/** A write failure is said once per file; finish then answers with an error of its own. */
const fail = (err: unknown): void => {
  if (!failed) reply({ t: 'error', s: session, error: serializeError(err) });
  failed = true;
};

async function handle(m: ToSealer): Promise<void> {
  switch (m.t) {
    case 'open':
      await writer?.abort(); // an earlier file left open (its reader died): never leave its temp
      session = m.s;
      failed = false;
      writer = null;
      try {
        writer = await createSealWriter(m.dst, m.recipients.map((r) => parsePublicKey(r, 'recipient')), { defer: m.defer });
      } catch (err) {
        fail(err);
      }
      return;
    case 'data':
      try {
        if (m.s === session && writer && !failed) await writer.write(new Uint8Array(m.buf, 0, m.len));
      } catch (err) {
        fail(err);
      }
      reply({ t: 'buf', buf: m.buf }, [m.buf]);
      return;
    case 'finish': {
      let err: unknown = new Error('the sealed file failed before it was finished');
      if (m.s === session && writer && !failed) {
        try {
          const r = await writer.finish();
          writer = null;
          reply({ t: 'done', s: m.s, sha256: r.sha256, size: r.size, ...(r.pending ? { pending: r.pending } : {}) });
          return;
        } catch (e) {
          err = e;
        }
      }
      if (m.s === session) {
        await writer?.abort(); // never leave the temp file of a file that failed
        writer = null;
      }
      failed = true;
      reply({ t: 'error', s: m.s, error: serializeError(err) });
      return;
    }
    case 'abort':
      if (m.s === session) {
        await writer?.abort();
        writer = null;
      }
      reply({ t: 'aborted', s: m.s });
      return;
  }
}

// Messages are handled strictly in order, each after the previous one's work.
port.on('message', (m: ToSealer) => {
  chain = chain.then(() => handle(m));
});
