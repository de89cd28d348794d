/**
 * Config replay protection. Every signed config carries `revision` (a whole number) and
 * `signedAt` inside the signed content; each signing (`kluis config sign`, `targets add`,
 * `targets remove`) gives it one more than the highest revision the file or this station knew.
 *
 * Promises:
 * - the station remembers the highest revision it accepted, twice: in `state/config-revision.json`
 *   and as a `config-changed` line in its audit log (hash-chained, checkpoint-signed). What it
 *   remembers is the higher of the two, so a state file put back from an older copy, or removed,
 *   changes nothing while the audit log holds the later line;
 * - `checkRevision` refuses a config older than that (E_CONFIG_REPLAYED), and one with the same
 *   revision but other content (E_CONFIG_REVISION_CONFLICT): two different documents were signed
 *   under one number, and the station cannot tell which is the later decision;
 * - a config without a revision (signed before revisions existed) is refused by load.ts with
 *   E_CONFIG_NO_REVISION: the admin signs it once more, which gives it one.
 *
 * Reading the audit log is incremental: the state file records how far it was read
 * (`auditOffset`), and only what was appended since is scanned (from the start when the offset
 * does not fit the file).
 *
 * What it cannot do: a user who can rewrite the state file AND the audit log (the service user,
 * with the station key) can make the station forget. That takes a rewritten audit log, which the
 * audit head kept on the targets is there to show afterwards (issue 15 item 6).
 */
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import { KluisError } from '../errors.js';
import { canonicalJson } from '../util/canonical-json.js';
import { writeFileAtomic } from '../util/fsx.js';
import { AuditLog } from '../audit/index.js';
import type { StationLayout } from './layout.js';

/** What identifies one signed config: its revision, when and by whom it was signed, and its hash. */
export interface ConfigStamp {
  revision: number;
  signedAt: string;
  /** Hex SHA-256 of the canonical JSON of the signed config object. */
  sha256: string;
  signer: string;
}

export interface Remembered extends ConfigStamp {
  /** When this station accepted it. */
  acceptedAt?: string;
  /** Where the highest revision was found. */
  source: 'state' | 'audit';
}

interface StateFile extends ConfigStamp {
  acceptedAt: string;
  auditOffset: number;
}

export const REVISION_STATE_FILE = 'config-revision.json';

export function configSha256(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config), 'utf8').digest('hex');
}

function stateFile(layout: StationLayout): string {
  return path.join(layout.stateDir, REVISION_STATE_FILE);
}

function isStamp(v: unknown): v is ConfigStamp {
  const o = v as Partial<ConfigStamp> | null;
  return !!o && Number.isInteger(o.revision) && typeof o.sha256 === 'string' && typeof o.signedAt === 'string' && typeof o.signer === 'string';
}

async function readState(layout: StationLayout): Promise<StateFile | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(stateFile(layout), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KluisError('E_CONFIG_STATE', `cannot read ${stateFile(layout)}: ${(err as Error).message}`, {
      hint: 'the station keeps the highest config revision it accepted there; check the state folder permissions',
      cause: err,
    });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (isStamp(v)) return { ...v, acceptedAt: String((v as StateFile).acceptedAt ?? ''), auditOffset: Number((v as StateFile).auditOffset) || 0 };
  } catch {
    // fall through: an unreadable state file is no memory at all; the audit log still is one
  }
  return undefined;
}

/** The highest `config-changed` entry in the audit log from byte `from` on; and where it ended. */
async function scanAudit(file: string, from: number): Promise<{ best?: ConfigStamp & { acceptedAt: string }; end: number }> {
  let size: number;
  try {
    size = (await fsp.stat(file)).size;
  } catch {
    return { end: 0 };
  }
  const start = from >= 0 && from <= size ? from : 0;
  if (start === size) return { end: size };
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8', start, end: size - 1 }), crlfDelay: Infinity });
  let best: (ConfigStamp & { acceptedAt: string }) | undefined;
  for await (const line of rl) {
    if (!line.includes('"config-changed"')) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (e.type !== 'config-changed' || !isStamp(e)) continue;
    if (!best || e.revision > best.revision) {
      best = { revision: e.revision, sha256: e.sha256, signedAt: e.signedAt, signer: e.signer, acceptedAt: String(e.time ?? '') };
    }
  }
  return { best, end: size };
}

/** The highest revision this station accepted (state file and audit log), or undefined for none. */
export async function rememberedRevision(layout: StationLayout): Promise<Remembered | undefined> {
  const state = await readState(layout);
  const { best } = await scanAudit(layout.auditFile, state ? state.auditOffset : 0);
  const fromState: Remembered | undefined = state ? { ...stampOf(state), acceptedAt: state.acceptedAt, source: 'state' } : undefined;
  const fromAudit: Remembered | undefined = best ? { ...stampOf(best), acceptedAt: best.acceptedAt, source: 'audit' } : undefined;
  if (fromState && fromAudit) return fromAudit.revision > fromState.revision ? fromAudit : fromState;
  return fromState ?? fromAudit;
}

function stampOf(s: ConfigStamp): ConfigStamp {
  return { revision: s.revision, signedAt: s.signedAt, sha256: s.sha256, signer: s.signer };
}

/** Refuses `stamp` when this station accepted a later revision, or other content under the same one. */
export async function checkRevision(file: string, layout: StationLayout, stamp: ConfigStamp): Promise<Remembered | undefined> {
  const seen = await rememberedRevision(layout);
  if (!seen) return undefined;
  const when = seen.acceptedAt ? ` on ${seen.acceptedAt}` : '';
  if (stamp.revision < seen.revision) {
    throw new KluisError(
      'E_CONFIG_REPLAYED',
      `config ${file} is revision ${stamp.revision} (signed ${stamp.signedAt}), older than revision ${seen.revision} (signed ${seen.signedAt}) that this station accepted${when}`,
      {
        hint: `an older signed config was put back; restore the current one, or have the admin sign the intended config again (kluis config sign gives it revision ${seen.revision + 1})`,
        details: { revision: stamp.revision, remembered: seen.revision },
      },
    );
  }
  if (stamp.revision === seen.revision && stamp.sha256 !== seen.sha256) {
    throw new KluisError(
      'E_CONFIG_REVISION_CONFLICT',
      `config ${file} is revision ${stamp.revision}, but this station accepted a different config under that revision${when}`,
      {
        hint: `two configs were signed with the same revision; have the admin sign the intended one again (kluis config sign gives it revision ${seen.revision + 1})`,
        details: { revision: stamp.revision, sha256: stamp.sha256, remembered: seen.sha256 },
      },
    );
  }
  return seen;
}

/**
 * Records `stamp` as accepted when it is newer than what the station remembers: a `config-changed`
 * line in the audit log (through `audit` when the caller has it open, else opened for this), then
 * the state file. Resolves with whether it recorded anything.
 */
export async function rememberRevision(
  layout: StationLayout,
  stamp: ConfigStamp,
  opts: { station: string; audit?: AuditLog },
): Promise<boolean> {
  const state = await readState(layout);
  const scanned = await scanAudit(layout.auditFile, state ? state.auditOffset : 0);
  const best = scanned.best && scanned.best.revision > (state?.revision ?? 0) ? scanned.best : state;
  if (best && best.revision >= stamp.revision) {
    // Nothing new; keep the state file at the highest revision and its offset at the end read.
    if (!state || state.revision < best.revision || state.auditOffset !== scanned.end) {
      await writeState(layout, { ...stampOf(best), acceptedAt: best.acceptedAt, auditOffset: scanned.end });
    }
    return false;
  }
  const known = best?.revision ?? 0;
  const entry = { ...stampOf(stamp), previousRevision: known || null };
  try {
    if (opts.audit) await opts.audit.append('config-changed', entry);
    else {
      const log = await AuditLog.open(layout.auditFile, { station: opts.station });
      try {
        await log.append('config-changed', entry);
      } finally {
        await log.close();
      }
    }
  } catch (err) {
    throw new KluisError('E_CONFIG_STATE', `cannot record config revision ${stamp.revision} in the audit log: ${(err as Error).message}`, {
      hint: 'the station remembers every accepted config revision; check that the state folder is writable by this user',
      cause: err,
    });
  }
  await writeState(layout, { ...stampOf(stamp), acceptedAt: new Date().toISOString(), auditOffset: scanned.end });
  return true;
}

async function writeState(layout: StationLayout, s: StateFile): Promise<void> {
  try {
    await writeFileAtomic(stateFile(layout), `${JSON.stringify(s, null, 2)}\n`, 0o600);
    // Root signing on a station (an admin command run with sudo) must not leave a file the
    // service user can no longer read: it goes to the owner of the state folder.
    if (process.getuid?.() === 0) {
      const owner = await fsp.stat(layout.stateDir);
      if (owner.uid !== 0) await fsp.chown(stateFile(layout), owner.uid, owner.gid);
    }
  } catch (err) {
    throw new KluisError('E_CONFIG_STATE', `cannot write ${stateFile(layout)}: ${(err as Error).message}`, {
      hint: 'the station remembers every accepted config revision; check that the state folder is writable by this user',
      cause: err,
    });
  }
}
