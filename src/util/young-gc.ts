/**
 * A young-generation garbage collection on demand, for code that reads a large body from the
 * network. Why: Node's HTTP client hands over a new buffer of up to 64 KiB per socket read. Each
 * is dead as soon as it is hashed, but V8 frees it only at its next collection, and it starts one
 * for outside memory only after ~64 MB of it; meanwhile those buffers fill the main thread's
 * malloc heap, which keeps the high-water mark. Reading back 4 GB from S3 raised the ingest's
 * peak RSS by ~80 MB; a young collection every few MB (about 0.5 ms each) holds it to ~10 MB.
 *
 * Promises: `youngGcEvery(bytes)` gives a function to call with each chunk's length; it asks for
 * a young-generation collection whenever `bytes` more have gone by. Where V8 does not offer the
 * call, it does nothing (the memory is then freed at V8's own pace).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (opts: { type: 'minor' | 'major' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc === undefined) {
    try {
      // The documented way to reach V8's `gc` without starting node with --expose-gc: the flag
      // makes the next new context carry the function.
      setFlagsFromString('--expose-gc');
      const fn: unknown = runInNewContext('gc');
      gc = typeof fn === 'function' ? (fn as Gc) : null;
    } catch {
      gc = null;
    }
  }
  return gc;
}

export function youngGcEvery(bytes: number): (n: number) => void {
  let since = 0;
  return (n) => {
    since += n;
    if (since < bytes) return;
    since = 0;
    collector()?.({ type: 'minor' });
  };
}
