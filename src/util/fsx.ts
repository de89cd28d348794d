/**
 * Small durable-file helpers: write-then-rename with fsync of the file and its directory, so a
 * crash leaves either the old or the new content, never a torn file.
 */
import { promises as fsp, constants as C } from 'node:fs';
import * as path from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fsyncFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to a new file (never over an existing one: EEXIST) and fsyncs it; the folder is the caller's. */
export async function writeNewFileSynced(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await fsp.open(file, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes data to `file` atomically (temp file in the same folder, fsync, rename, fsync dir). */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  await writeNewFileSynced(tmp, data, mode);
  await fsp.rename(tmp, file);
  await fsyncDir(dir);
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}
