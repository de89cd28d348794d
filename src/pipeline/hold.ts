/**
 * Holding a sealed original on the station. When a footage file cannot be sanitized and no
 * target may hold originals, its sealed original (ciphertext: the station itself cannot open it)
 * is the only copy of that footage once the card is gone. It moves out of the spool into
 * `<state>/held/<batch>/<object id>`, a folder that spool clean-up never touches and kluis never
 * deletes; the journal (file state 'held', held_path) and `kluis status` name it, and the
 * evidence key opens it (`kluis decrypt`).
 *
 * Idempotent, so a kill at any point is resumed by calling it again: the held file appears only
 * complete (rename, or copy to a temp name + fsync + rename when the spool is on another file
 * system or will not let it go), and a held file already there is kept as it is. The spool file
 * is removed afterwards, best effort (what is left is swept by spool clean-up).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KluisError, asKluisError } from '../errors.js';
import { exists, fsyncDir, fsyncFile } from '../util/fsx.js';

export function heldDir(stateDir: string): string {
  return path.join(stateDir, 'held');
}

export function heldPathFor(stateDir: string, batchId: string, objectId: string): string {
  return path.join(heldDir(stateDir), batchId, objectId);
}

/** Moves the sealed file `src` to `dst` (both complete, fsynced); `size` is checked on arrival. */
export async function holdSealed(src: string, dst: string, size: number): Promise<void> {
  const dir = path.dirname(dst);
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await exists(dst))) {
      try {
        await fsp.rename(src, dst);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EACCES') throw err;
        // Another file system, or a spool folder that will not let go of the name: copy.
        const tmp = path.join(dir, `.held-${randomBytes(6).toString('hex')}.tmp`);
        try {
          await fsp.copyFile(src, tmp);
          await fsyncFile(tmp);
          await fsp.rename(tmp, dst);
        } catch (e) {
          await fsp.rm(tmp, { force: true });
          throw e;
        }
      }
      await fsyncDir(dir);
      await fsyncDir(path.dirname(dir));
    }
    const st = await fsp.stat(dst);
    if (st.size !== size) {
      throw new KluisError('E_SPOOL', `the held original ${dst} holds ${st.size} bytes, ${size} were sealed`, {
        hint: 'the station disk may be failing; keep the card and check the disk',
      });
    }
  } catch (err) {
    throw asKluisError(err, 'E_SPOOL', `check that ${dir} is writable by the station user`);
  }
  await fsp.rm(src, { force: true }).catch(() => undefined);
}
