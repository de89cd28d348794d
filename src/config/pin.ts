/**
 * Where the pinned admin key lives, and the rule that keeps it out of the service user's reach.
 *
 * The pin is what makes a signed config trusted: whoever can replace it can sign a config of
 * their own and send the footage anywhere. So the pin must be a file that only root can change:
 *
 *   the pin and every folder above it (along the path as given and, if it goes through a
 *   symbolic link, along the resolved path too) are owned by root (uid 0) and not writable by
 *   group or others; a folder writable by them is accepted only with the sticky bit (like
 *   /tmp), where others cannot rename or remove the root-owned entry below it. When kluis runs
 *   as a user other than root, that user must not be able to write any of them either
 *   (access(2), so ACLs count).
 *
 * Running kluis as root passes the check with a root-owned pin (root can change anything; the
 * deployment runs the station as its own user, see deploy/). There is no switch to turn the check
 * off: a pin its own user can change protects nothing.
 *
 * Which file: KLUIS_ADMIN_PIN (the systemd unit sets it) over the config's `adminPin` (signed, so
 * the admin chose it) over `keys/admin.pub` beside the config. Naming a file in an unverified
 * config is safe because the file must pass the rule above: only root can place one there.
 */
import { constants as C, lstatSync, accessSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';

export const ADMIN_PIN_ENV = 'KLUIS_ADMIN_PIN';

/** The pin file to use: KLUIS_ADMIN_PIN, else `adminPin` of the (raw) config, else `fallback`. */
export function pinFileFor(configDir: string, raw: unknown, fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[ADMIN_PIN_ENV];
  if (fromEnv) return path.resolve(fromEnv);
  const named = raw && typeof raw === 'object' ? (raw as { adminPin?: unknown }).adminPin : undefined;
  if (typeof named === 'string' && named.length > 0) return path.resolve(configDir, named);
  return fallback;
}

export interface PinProblem {
  /** The path component that fails the rule. */
  path: string;
  reason: string;
}

/** The components of an absolute path, from the root down: /, /a, /a/b, … */
function chain(abs: string): string[] {
  const out: string[] = [];
  let p = abs;
  for (;;) {
    out.unshift(p);
    const up = path.dirname(p);
    if (up === p) break;
    p = up;
  }
  return out;
}

function checkChain(abs: string, uid: number | undefined): PinProblem | undefined {
  const parts = chain(abs);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    let st;
    try {
      st = lstatSync(p);
    } catch (err) {
      return { path: p, reason: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
    }
    const last = i === parts.length - 1;
    if (last && !st.isFile() && !st.isSymbolicLink()) return { path: p, reason: 'is not a regular file' };
    if (st.uid !== 0) return { path: p, reason: `is owned by uid ${st.uid}, not root` };
    if (!st.isSymbolicLink()) {
      const mode = st.mode & 0o7777;
      // Writable by group or others only as a sticky folder (like /tmp): there nobody but its
      // owner may rename or remove the next component, which this loop requires to be root's.
      const sticky = st.isDirectory() && (mode & 0o1000) !== 0;
      if (mode & 0o020 && !sticky) return { path: p, reason: `is writable by its group (mode ${mode.toString(8)})` };
      if (mode & 0o002 && !sticky) return { path: p, reason: `is writable by everyone (mode ${mode.toString(8)})` };
    }
    if (uid !== undefined && uid !== 0 && !st.isSymbolicLink()) {
      try {
        accessSync(p, C.W_OK);
        if (!(st.isDirectory() && st.mode & 0o1000)) return { path: p, reason: `is writable by this user (uid ${uid})` };
      } catch {
        // not writable: as it should be
      }
    }
  }
  return undefined;
}

/** Why `pinFile` is not out of reach of this process's user (see the rule above), or undefined. */
export function pinProblem(pinFile: string): PinProblem | undefined {
  // access(2) answers for this process's own uid, so the uid is never a parameter.
  const uid = process.getuid?.();
  const abs = path.resolve(pinFile);
  const lexical = checkChain(abs, uid);
  if (lexical) return lexical;
  let real: string;
  try {
    real = realpathSync(abs);
  } catch (err) {
    return { path: abs, reason: `cannot be resolved (${(err as Error).message})` };
  }
  return real === abs ? undefined : checkChain(real, uid);
}

/** Throws E_CONFIG_PIN_UNPROTECTED unless only root can change `pinFile`. */
export function assertPinProtected(pinFile: string): void {
  const problem = pinProblem(pinFile);
  if (!problem) return;
  throw new KluisError(
    'E_CONFIG_PIN_UNPROTECTED',
    `the pinned admin key ${pinFile} could be replaced without root: ${problem.path} ${problem.reason}`,
    {
      hint:
        `the pin decides which admin may sign the config, so only root may be able to change it. As root: ` +
        `install -D -o root -g root -m 0644 ${pinFile} /etc/kluis/admin.pub, then run kluis with ${ADMIN_PIN_ENV}=/etc/kluis/admin.pub ` +
        '(the systemd unit in deploy/ does); see deploy/README.md',
      details: { pinFile, path: problem.path, reason: problem.reason },
    },
  );
}
