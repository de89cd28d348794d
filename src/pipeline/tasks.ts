/**
 * The byte-heavy steps of ingest, as tasks a worker thread runs (workers.ts), so hashing,
 * sealing and sanitizing use every core while the main thread keeps the journal, the audit log,
 * the events and the deliveries. Each task takes and returns plain data (structured-clonable);
 * none touches the journal or the audit log, and none decides anything about a file's fate: it
 * does the work or throws a KluisError, and the main thread records what happened.
 *
 * - read-card: one card file, read once (card/acquire.ts): hashes, the sealed original, the
 *   plaintext working copy.
 * - check-copy: (on resume) the working copy against the card hash, optionally sealing it as the
 *   original for a file acquired by a kluis that did not seal originals yet.
 * - sanitize-seal: the working copy read once by sanitizeStream, its output sealed as it is
 *   produced (no sanitized plaintext file from the pipeline); on a throw the partial sealed output
 *   is removed.
 */
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { KluisError } from '../errors.js';
import { readCardFile, type CardReadResult } from '../card/index.js';
import { createSealWriter, parsePublicKey, type PublicKey } from '../seal/index.js';
import type { SanitizePolicy, SanitizeResult } from '../sanitize/index.js';
import { SealThread } from './seal-thread.js';
import { crashPoint } from './crash.js';
import { seams } from './seams.js';

export interface ReadCardArgs {
  /** The card file's path; bytes (a Uint8Array after the thread hop) for a name that is not UTF-8. */
  src: string | Uint8Array;
  expectSize: number;
  workingCopy: string | null;
  /** Seal the original here (null: hash only). */
  sealTo: string | null;
  /**
   * Leave the sealed original at its temporary name, not yet fsynced (result `sealed.pending`): the
   * caller publishes it (publishSealed) before it journals the file.
   */
  deferSeal?: boolean;
  recipients: string[];
}

export interface CheckCopyArgs {
  input: string;
  expect: { sha256: string; size: number };
  /** Also seal the copy as the file's original here. */
  sealTo: string | null;
  recipients: string[];
}

export interface SanitizeSealArgs {
  input: string;
  output: string;
  recipients: string[];
  policy: SanitizePolicy;
  scratchDir: string;
  thumbnail: boolean;
}

export interface SanitizeSealResult {
  result: SanitizeResult;
  thumbnail?: Uint8Array;
  sealed: { sha256: string; size: number };
}

export interface Tasks {
  'read-card': { args: ReadCardArgs; result: CardReadResult };
  'check-copy': { args: CheckCopyArgs; result: { sealed?: { sha256: string; size: number } } };
  'sanitize-seal': { args: SanitizeSealArgs; result: SanitizeSealResult };
}
export type TaskName = keyof Tasks;

/** Progress a task reports while it runs (bytes of the current file). */
export type Progress = (bytes: number) => void;

const keys = new Map<string, PublicKey>();
function recipientsOf(list: string[]): PublicKey[] {
  return list.map((r) => {
    let k = keys.get(r);
    if (!k) keys.set(r, (k = parsePublicKey(r, 'recipient')));
    return k;
  });
}

const PROGRESS_STEP = 4 * 1024 * 1024;

export async function runTask<K extends TaskName>(name: K, args: Tasks[K]['args'], progress: Progress): Promise<Tasks[K]['result']> {
  switch (name) {
    case 'read-card':
      return (await readCard(args as ReadCardArgs, progress)) as Tasks[K]['result'];
    case 'check-copy':
      return (await checkCopy(args as CheckCopyArgs)) as Tasks[K]['result'];
    case 'sanitize-seal':
      return (await sanitizeSeal(args as SanitizeSealArgs)) as Tasks[K]['result'];
    default:
      throw new KluisError('E_INTERNAL', `unknown worker task ${String(name)}`);
  }
}

/**
 * The card reader's sealing thread: the original is sealed there while this thread hashes and
 * writes the working copy (two cores on the card read). Started with the first file to seal;
 * null where no threads are used (then this thread seals).
 */
let sealThread: SealThread | null | undefined;

export async function closeTasks(): Promise<void> {
  await sealThread?.close();
  sealThread = undefined;
}

async function readCard(a: ReadCardArgs, progress: Progress): Promise<CardReadResult> {
  let told = 0;
  if (a.sealTo && sealThread === undefined) sealThread = SealThread.start();
  const thread = sealThread;
  const dst = a.sealTo;
  const delayMs = seams().acquireDelayMs;
  return readCardFile(typeof a.src === 'string' ? a.src : Buffer.from(a.src.buffer, a.src.byteOffset, a.src.byteLength), {
    expectSize: a.expectSize,
    workingCopy: a.workingCopy,
    ...(delayMs ? { delayMs } : {}),
    seal: dst
      ? { dst, recipients: recipientsOf(a.recipients), defer: a.deferSeal === true, ...(thread ? { open: () => thread.open(dst, a.recipients, { defer: a.deferSeal === true }) } : {}) }
      : null,
    onProgress: (n) => {
      if (n < told || n - told >= PROGRESS_STEP) {
        told = n;
        progress(n);
      }
    },
    onChunk: () => crashPoint('mid-acquire'),
  });
}

async function checkCopy(a: CheckCopyArgs): Promise<{ sealed?: { sha256: string; size: number } }> {
  const lost = (why: string): KluisError =>
    new KluisError('E_SPOOL_COPY_LOST', `the station's working copy ${why}`, {
      hint: 'it was probably lost in a power cut before it was sanitized; the sealed original of the card file is kept',
    });
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(a.input, 'r');
  } catch (err) {
    throw Object.assign(lost('is missing'), { cause: err });
  }
  const writer = a.sealTo ? await createSealWriter(a.sealTo, recipientsOf(a.recipients)) : null;
  try {
    const sha = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      sha.update(chunk);
      if (writer) await writer.write(chunk);
      size += bytesRead;
    }
    const got = sha.digest('hex');
    if (size !== a.expect.size || got !== a.expect.sha256) throw lost(`holds ${size} bytes with SHA-256 ${got}, not the ${a.expect.size} bytes read from the card`);
    return writer ? { sealed: await writer.finish() } : {};
  } catch (err) {
    await writer?.abort();
    throw err;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function sanitizeSeal(a: SanitizeSealArgs): Promise<SanitizeSealResult> {
  // Loaded here, not at the top: the card reader thread never needs the sanitizers (sharp, exifr…).
  const { sniffFile, sanitizeStream, openFileSource } = await import('../sanitize/index.js');
  const format = await sniffFile(a.input);
  if (format === null) {
    throw new KluisError('E_SANITIZE_UNSUPPORTED', 'file format not recognised by its first bytes (JPEG, TIFF, DNG, MP4, MOV are handled)', {
      hint: 'the file is withheld; it is listed in the batch report',
    });
  }
  const src = await openFileSource(a.input);
  const writer = await createSealWriter(a.output, recipientsOf(a.recipients));
  let first = true;
  try {
    const r = await sanitizeStream(
      src,
      {
        // The sealer consumes the chunk before this resolves (SealWriter.write), so the
        // sanitizer may reuse its buffer.
        write: async (chunk) => {
          if (first) {
            first = false;
            crashPoint('mid-seal');
          }
          await writer.write(chunk);
        },
      },
      a.policy,
      { format, scratchDir: a.scratchDir, ...(a.thumbnail ? { thumbnail: { maxEdge: 320 } } : {}) },
    );
    const sealed = await writer.finish();
    const { thumbnail, ...result } = r;
    return { result, sealed, ...(thumbnail ? { thumbnail } : {}) };
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    await src.close();
  }
}
