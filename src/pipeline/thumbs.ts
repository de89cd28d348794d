/**
 * Thumbnails of sanitized footage for the batch report and the dashboard, made while the
 * sanitized plaintext is still in the private spool (it is removed once sealed). A thumbnail
 * that cannot be made is not an error of the batch: the report says "no preview".
 */
import { promises as fsp } from 'node:fs';
import { renderThumbnail } from '../evidence/report.js';
import type { MediaFormat } from '../sanitize/types.js';

export async function makeThumbnail(sanitizedFile: string, format: MediaFormat, out: string): Promise<string | null> {
  try {
    const buf = await renderThumbnail(sanitizedFile, format);
    if (!buf) return null;
    await fsp.writeFile(out, buf, { mode: 0o600 });
    return out;
  } catch {
    return null;
  }
}
