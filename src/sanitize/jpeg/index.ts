/**
 * The bound on still images, which are read into memory whole (for sanitizing, src/sanitize/
 * image.ts, and for recomputing an essence value, src/sanitize/essence.ts). Promises: a file over
 * MAX_IMAGE_BYTES is E_SANITIZE_TOO_LARGE before any byte of it is read.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../../errors.js';

export const MAX_IMAGE_BYTES = 512 * 1024 * 1024;

export async function readImage(input: string): Promise<Buffer> {
  const st = await fsp.stat(input);
  if (st.size > MAX_IMAGE_BYTES) {
    throw new KluisError('E_SANITIZE_TOO_LARGE', `still image of ${st.size} bytes is larger than kluis handles (${MAX_IMAGE_BYTES})`, {
      hint: 'the file is withheld',
    });
  }
  return fsp.readFile(input);
}
