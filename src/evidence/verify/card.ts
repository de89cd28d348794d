/**
 * The card folder given to `kluis verify --card`: each card file re-hashed against the hash it
 * was acquired with, and (for `--deep`) decoded once for the pixel comparison. A manifest path
 * that would leave the card folder is a mismatch; the card is only read.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../errors.js';
import { cardFsPath } from '../../card/index.js';
import type { ManifestFile } from '../../seal/index.js';
import type { FullDecode } from '../../sanitize/index.js';
import { errText, type Check, type DecodeFn } from './result.js';

export async function checkCard(cardRoot: string, file: ManifestFile): Promise<Check> {
  if (!file.cardSha256) return { check: 'card-sha256', result: 'unchecked', message: 'the manifest holds no card hash for this file' };
  const rel = path.posix.normalize(file.path);
  if (rel.startsWith('../') || path.posix.isAbsolute(rel)) return { check: 'card-sha256', result: 'mismatch', message: `manifest path ${file.path} leaves the card` };
  const abs = cardFsPath(cardRoot, rel);
  const st = await fsp.lstat(abs).catch(() => null);
  if (!st) return { check: 'card-sha256', result: 'missing', message: `${file.path} is not on the card` };
  if (!st.isFile()) return { check: 'card-sha256', result: 'mismatch', message: `${file.path} on the card is not a regular file` };
  const h = createHash('sha256');
  try {
    for await (const c of createReadStream(abs, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  } catch (err) {
    return { check: 'card-sha256', result: 'unchecked', message: `cannot read ${file.path} from the card: ${errText(err)}` };
  }
  const sha = h.digest('hex');
  return sha === file.cardSha256
    ? { check: 'card-sha256', result: 'verified' }
    : { check: 'card-sha256', result: 'mismatch', message: `card file SHA-256 ${sha}, acquired as ${file.cardSha256}` };
}

/** The card file of a manifest entry, decoded in full (once per file). */
export function cardDecode(cardRoot: string, file: ManifestFile, decode: DecodeFn, memo: Map<string, Promise<FullDecode>>): Promise<FullDecode> {
  let p = memo.get(file.path);
  if (!p) {
    const rel = path.posix.normalize(file.path);
    const abs = rel.startsWith('../') || path.posix.isAbsolute(rel) ? null : cardFsPath(cardRoot, rel);
    p =
      abs === null
        ? Promise.reject(new KluisError('E_VERIFY_PATH', `manifest path ${file.path} leaves the card`))
        : typeof abs !== 'string'
          ? // A name that is not UTF-8 cannot be handed to the decoder (a command-line argument is text).
            Promise.reject(new KluisError('E_VERIFY_CARD_NAME', `${file.path}: the card file's name is not UTF-8, so it cannot be given to the decoder`))
          : decode(abs);
    p.catch(() => undefined);
    memo.set(file.path, p);
  }
  return p;
}
