/**
 * The folder an export writes into (OUT), written without ever leaving it.
 *
 * Promises:
 * - OUT is new or empty, unless the caller asks to write into an existing one (`intoExisting`);
 *   a folder of the operator's that happens to be non-empty is refused, not mixed with evidence;
 * - every folder below OUT is made here one level at a time (0700) and checked to be a real
 *   folder, never a link; a link or a non-folder where a folder belongs is an error
 *   (E_EXPORT_LINK), never followed;
 * - every file is written first into a private temp folder that this run made inside OUT
 *   (`.kluis-part-…`, so on the same file system), then renamed to its final name; a link at the
 *   final name is refused, not replaced and not followed; the temp folder is removed at the end,
 *   on SIGINT/SIGTERM, and, when a run was killed, by the next export into OUT.
 *
 * What it cannot rule out: another process that swaps a folder inside OUT for a link between the
 * check and the rename (Node has no openat/renameat). The window is one lstat chain and one
 * rename long, and OUT is the operator's own folder.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import { fsyncDir, writeNewFileSynced } from '../util/fsx.js';
import { makePartDir, partName, sweepOrphans } from '../util/plain-temp.js';

export class OutDir {
  private constructor(
    /** The real path of OUT (links in the path given to reach it resolved once, at the start). */
    readonly root: string,
    private readonly temp: { dir: string; remove(): Promise<void> },
  ) {}

  /** Opens (or makes) OUT; refuses a non-empty one unless `intoExisting`. */
  static async open(out: string, opts: { intoExisting?: boolean } = {}): Promise<OutDir> {
    const abs = path.resolve(out);
    let st = await fsp.stat(abs).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw new KluisError('E_EXPORT_OUT', `cannot use ${out} as the export folder: ${err.message}`, { cause: err });
    });
    if (!st) {
      await fsp.mkdir(abs, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
        throw new KluisError('E_EXPORT_OUT', `cannot make the export folder ${out}: ${err.message}`, { hint: 'give --out a new or empty folder you may write to', cause: err });
      });
      st = await fsp.stat(abs);
    }
    if (!st.isDirectory()) {
      throw new KluisError('E_EXPORT_OUT_NOT_DIR', `${out} is not a folder`, { hint: 'give --out a new or empty folder' });
    }
    const root = await fsp.realpath(abs);
    await sweepOrphans(root);
    if (!opts.intoExisting) {
      const present = await fsp.readdir(root);
      if (present.length > 0) {
        throw new KluisError('E_EXPORT_OUT_NOT_EMPTY', `the export folder ${out} is not empty (${present.length} entries)`, {
          hint: 'give --out a new or empty folder, or add --into-existing to export into this folder again (as a new ASC MHL generation)',
        });
      }
    }
    return new OutDir(root, await makePartDir(root, { hidden: true }));
  }

  /** Makes the folders `parts` below OUT one level at a time; each must be a real folder. */
  async folder(parts: string[]): Promise<string> {
    let cur = this.root;
    for (const p of parts) {
      const next = path.join(cur, p);
      let st = await fsp.lstat(next).catch(() => null);
      if (!st) {
        await fsp.mkdir(next, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        st = await fsp.lstat(next);
      }
      if (st.isSymbolicLink()) throw linkError(this.rel(next));
      if (!st.isDirectory()) {
        throw new KluisError('E_EXPORT_LINK', `${this.rel(next)} in the export folder is not a folder`, { hint: 'export into a new or empty folder' });
      }
      cur = next;
    }
    return cur;
  }

  /** A fresh temp file name in this run's private temp folder inside OUT. */
  tempFile(): string {
    return path.join(this.temp.dir, partName());
  }

  /** This run's private temp folder (for writers that make their own temp names in it). */
  get tempDir(): string {
    return this.temp.dir;
  }

  /**
   * Moves a finished temp file to its final name `parts` below OUT: folders made and checked,
   * a link or folder at the final name refused, an older regular file (into-existing) replaced.
   */
  async place(tmp: string, parts: string[]): Promise<string> {
    const dir = await this.folder(parts.slice(0, -1));
    const final = path.join(dir, parts[parts.length - 1]!);
    const st = await fsp.lstat(final).catch(() => null);
    if (st?.isSymbolicLink()) throw linkError(this.rel(final));
    if (st && !st.isFile()) {
      throw new KluisError('E_EXPORT_LINK', `${this.rel(final)} in the export folder is not a regular file`, { hint: 'export into a new or empty folder' });
    }
    await fsp.rename(tmp, final);
    await fsyncDir(dir);
    return final;
  }

  /** Writes `data` to `parts` below OUT (temp, then rename), mode 0600. */
  async writeFile(parts: string[], data: string | Uint8Array): Promise<string> {
    const tmp = this.tempFile();
    await writeNewFileSynced(tmp, data, 0o600);
    return this.place(tmp, parts);
  }

  /** Removes the temp folder (whatever is left in it). */
  async close(): Promise<void> {
    await this.temp.remove();
  }

  private rel(abs: string): string {
    return path.relative(this.root, abs).split(path.sep).join('/');
  }
}

function linkError(rel: string): KluisError {
  return new KluisError('E_EXPORT_LINK', `${rel} in the export folder is a symbolic link; export never follows or replaces links`, {
    hint: 'export into a new or empty folder (without --into-existing)',
  });
}
