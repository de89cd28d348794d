/**
 * The size of a video file to sanitize, refusing what cannot be one: unreadable or not a regular
 * file (E_SANITIZE_READ), empty (E_SANITIZE_EMPTY). Shared by the rewriter's file entry and the
 * ffmpeg fallback.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../errors.js';

export async function videoInputSize(input: string): Promise<number> {
  let st;
  try {
    st = await fsp.stat(input);
  } catch (err) {
    throw new KluisError('E_SANITIZE_READ', `cannot read ${path.basename(input)}: ${(err as Error).message}`, {
      hint: 'check that the file exists and is readable',
      cause: err,
    });
  }
  if (!st.isFile()) throw new KluisError('E_SANITIZE_READ', `${path.basename(input)} is not a regular file`, { hint: 'pass a file' });
  if (st.size === 0) {
    throw new KluisError('E_SANITIZE_EMPTY', 'the video file is empty', { hint: 'the recording was never written; there is nothing to sanitize' });
  }
  return st.size;
}
