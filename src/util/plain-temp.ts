/**
 * Temp files and folders that may hold plaintext (decrypt, export, verify's essence recheck).
 *
 * Promises:
 * - every such temp has a name that says whose it is: `.kluis-part-<pid>-<tag>-<random>` (a
 *   folder in the system temp dir drops the leading dot), where tag identifies this very run
 *   of the process (boot id + start time from /proc), so a leftover is recognised as kluis's and
 *   as orphaned without guessing by age;
 * - a registered temp is removed when the process gets SIGINT, SIGTERM or SIGHUP, and at exit;
 *   when nothing else in the process handles that signal, the signal is raised again after the
 *   clean-up, so the process still ends the way the shell expects;
 * - `sweepOrphans(dir)` removes, in one folder and not below it, only entries with exactly that
 *   name whose owner is gone: no such process, a zombie, or another process under a reused pid
 *   (its start differs). It never follows a link and never touches another user's entry. When
 *   in doubt (no /proc, EPERM) the owner counts as alive.
 *
 * Never: removes anything whose name it did not make, or an entry of a live writer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { pidAlive } from './pid.js';

export const PART_PREFIX = 'kluis-part-';
const NAME_RE = /^\.?kluis-part-([1-9][0-9]{0,9})-([0-9a-f]{12})-[0-9a-f]{12}(?:\.tmp)?$/;
const NO_PROC_TAG = '000000000000';

let bootId: string | null | undefined;

function readBootId(): string | null {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = null;
    }
  }
  return bootId;
}

/** State and start time (clock ticks after boot) of a process, from /proc; null when it has none. */
function procStat(pid: number): { state: string; start: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields 3… follow the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const start = rest[19];
  return state && start ? { state, start } : null;
}

function tagOf(start: string): string {
  return createHash('sha256').update(`${readBootId()}:${start}`).digest('hex').slice(0, 12);
}

let ownTag: string | undefined;

/** This process's tag: its boot and start, hashed; a fixed value where there is no /proc. */
export function processTag(): string {
  if (ownTag === undefined) {
    const st = readBootId() === null ? null : procStat(process.pid);
    ownTag = st ? tagOf(st.start) : NO_PROC_TAG;
  }
  return ownTag;
}

/** A fresh name for a plaintext temp of this process (hidden: it starts with a dot). */
export function partName(): string {
  return `.${PART_PREFIX}${process.pid}-${processTag()}-${randomBytes(6).toString('hex')}.tmp`;
}

/** Whose temp `name` is, or null when it is not exactly a name made here. */
export function parsePartName(name: string): { pid: number; tag: string } | null {
  const m = NAME_RE.exec(name);
  return m ? { pid: Number(m[1]), tag: m[2]! } : null;
}

/** True only when the writer of a temp named by `pid` and `tag` is certainly gone. */
export function ownerGone(pid: number, tag: string): boolean {
  if (pid === process.pid && tag === processTag()) return false;
  if (tag === NO_PROC_TAG || readBootId() === null) return !pidAlive(pid);
  const st = procStat(pid);
  if (!st) return !pidAlive(pid);
  if (st.state === 'Z' || st.state === 'X') return true; // exited; a zombie writes nothing
  return tagOf(st.start) !== tag; // the pid now names another process (reused, or another boot)
}

// ---- removal on signals and at exit ----

const live = new Set<string>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let installed = false;

function removeAllSync(): void {
  for (const p of live) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      /* best effort: the sweep at the next start removes what is left */
    }
  }
  live.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  removeAllSync();
  if (process.listenerCount(sig) === 1) {
    // Ours is the only handler: end the way this signal ends a process (exit status 128 + n).
    uninstall();
    process.kill(process.pid, sig);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', removeAllSync);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', removeAllSync);
}

/**
 * Registers a temp file or folder for removal on SIGINT/SIGTERM/SIGHUP and at exit; the returned
 * function unregisters it (call it once the temp was renamed away or removed).
 */
export function trackTemp(p: string): () => void {
  live.add(p);
  install();
  return () => {
    live.delete(p);
    if (live.size === 0) uninstall();
  };
}

/**
 * A private (0700) folder for plaintext temps in `parent`, registered for removal on a signal.
 * `hidden` gives it a leading dot (beside the user's files); in the system temp dir it has none.
 */
export async function makePartDir(parent: string, opts: { hidden?: boolean } = {}): Promise<{ dir: string; remove(): Promise<void> }> {
  const name = partName().replace(/\.tmp$/, '');
  const dir = path.join(parent, opts.hidden ? name : name.slice(1));
  // Registered before it exists: a signal that arrives just after mkdir still finds it.
  const untrack = trackTemp(dir);
  try {
    await fsp.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    untrack();
    throw err;
  }
  return {
    dir,
    async remove() {
      await fsp.rm(dir, { recursive: true, force: true });
      untrack();
    },
  };
}

/**
 * Removes the orphaned plaintext temps in `dir` (not below it) and returns their names. An
 * unreadable folder is not an error: there is nothing of ours to sweep in it.
 */
export async function sweepOrphans(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of names) {
    const owner = parsePartName(name);
    if (!owner || !ownerGone(owner.pid, owner.tag)) continue;
    const p = path.join(dir, name);
    const st = await fsp.lstat(p).catch(() => null);
    if (!st || st.isSymbolicLink() || !(st.isFile() || st.isDirectory())) continue;
    if (uid !== undefined && st.uid !== uid) continue;
    await fsp.rm(p, { recursive: true, force: true }).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}
