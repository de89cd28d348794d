/**
 * The optional card wipe: the one deliberate write to a card. It runs only on a batch whose
 * status is secured (every required target verified every footage file by reading it back),
 * deletes exactly the files that were secured and whose bytes on the card still hash to what was
 * acquired, and nothing else. It never formats the card. A read-only card mount is remounted
 * read-write for the wipe only when it is a removable-media mount, and set back afterwards.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KluisError } from '../errors.js';
import { cardFsPath, hashFile, mountOf } from '../card/index.js';
import { batchOutcome } from './finalize.js';
import type { Station } from './station.js';
import { notice } from '../util/notices.js';

const run = promisify(execFile);

export interface WipeResult {
  deleted: string[];
  kept: Array<{ path: string; reason: string }>;
}

export async function wipeSecured(station: Station, batchId: string, cardRoot: string): Promise<WipeResult> {
  const outcome = batchOutcome(station, batchId);
  if (outcome.status !== 'secured') {
    throw new KluisError('E_POLICY_WIPE', `batch ${batchId} is ${outcome.status}, not secured; the card is not wiped`, {
      hint: 'the wipe runs only after every required target verified every file',
    });
  }
  const root = path.resolve(cardRoot);
  const mount = await mountOf(root);
  const readOnly = mount ? mount.options.split(',').includes('ro') : false;
  const removable = mount ? /^\/(media|run\/media|mnt)\//.test(`${mount.mountPoint}/`) && mount.mountPoint !== '/' : false;
  if (readOnly) {
    if (!removable || !mount) {
      throw new KluisError('E_POLICY_WIPE', `the card at ${root} is mounted read-only and is not a removable-media mount`, { hint: 'wipe it by hand after checking `kluis verify`' });
    }
    await run('mount', ['-o', 'remount,rw', mount.mountPoint]).catch((err) => {
      throw new KluisError('E_CARD_WIPE', `could not remount ${mount.mountPoint} read-write for the wipe`, { cause: err, hint: 'the station user needs the right to remount cards (see deploy/)' });
    });
  }
  const result: WipeResult = { deleted: [], kept: [] };
  try {
    const rows = station.journal.files(batchId);
    for (const f of outcome.files) {
      const row = rows.find((r) => r.path === f.path);
      if (f.status !== 'secured' || !row?.card_sha256) {
        result.kept.push({ path: f.path, reason: `not secured (${f.status})` });
        continue;
      }
      const abs = cardFsPath(root, f.path);
      try {
        const h = await hashFile(abs, row.size);
        if (h.sha256 !== row.card_sha256) {
          result.kept.push({ path: f.path, reason: 'the file on the card differs from what was acquired' });
          continue;
        }
        await fsp.unlink(abs);
        result.deleted.push(f.path);
      } catch (err) {
        result.kept.push({ path: f.path, reason: (err as Error).message });
      }
    }
  } finally {
    if (readOnly && mount) {
      await run('mount', ['-o', 'remount,ro', mount.mountPoint]).catch(async (err: unknown) => {
        // The card stays writable: say so loudly and on the record; the wipe itself is done.
        notice('W_CARD_STILL_WRITABLE', `could not set ${mount.mountPoint} back to read-only after the wipe: ${(err as Error).message}`);
        await station.audit.append('card-writable', { batchId, card: root, mountPoint: mount.mountPoint, reason: 'remount read-only after the wipe failed' });
      });
    }
  }
  await station.audit.append('wiped', { batchId, card: root, deleted: result.deleted, kept: result.kept });
  station.journal.addEvent('wiped', batchId, { type: 'wiped', batchId, files: result.deleted.length });
  return result;
}
