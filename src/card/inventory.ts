/**
 * Inventory: lists every entry of a card folder and classifies each by its first bytes, not by
 * its name. Links and special files are rejected and never followed; nothing on the card is
 * opened for writing. A name only refines the class of bytes already recognised (an MP4 whose
 * name says LRF is a proxy sidecar, not footage).
 *
 * Classes: footage (JPEG, TIFF/DNG, MP4/MOV), sidecar (SRT, LRF, MISC/, THM, flight records),
 * other (anything else; withheld because kluis cannot prove it clean).
 *
 * Every entry is listed, hidden ones at the card root included (.Trashes may hold deleted
 * footage; OS bookkeeping such as .Spotlight-V100 is classified like anything else and withheld
 * as "other"). Names are read as bytes and each gets a distinct, faithful card path
 * (src/card/names.ts), so two names that differ only in bytes that are not UTF-8 stay two
 * entries; `cardFsPath` there turns a card path back into the file's exact path.
 *
 * Footage is what the sanitizer's own `sniff` recognises (src/sanitize), so the inventory and the
 * sanitizer cannot disagree on what a file is. It is loaded on the first inventory, not with this
 * module: a card reader thread imports src/card without needing the sanitizers (sharp, exifr…).
 */
import { promises as fsp, constants as C } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import type { MediaFormat } from '../sanitize/index.js';
import { cardName, joinFs } from './names.js';

export type FileClass = 'footage' | 'sidecar' | 'other';

export interface CardEntry {
  /** Path relative to the card root, with '/' separators, each name as `cardName` gives it. */
  path: string;
  /** The path as text; for a name that is not valid UTF-8 it does not open the file: use fsPath. */
  abs: string;
  /** The file's path for fs calls: a string, or the exact bytes when a name is not valid UTF-8. */
  fsPath: string | Buffer;
  size: number;
  mtimeMs: number;
  class: FileClass;
  format?: MediaFormat;
  /** Why the entry cannot be taken at all (link, special file, empty). */
  rejected?: KluisError;
}

const SIDECAR_EXT = new Set(['.srt', '.lrf', '.thm', '.idx', '.gis', '.txt', '.dat', '.log', '.json', '.csv', '.xml', '.kml']);
const SIDECAR_DIRS = ['misc', 'flightrecord', 'flight records', 'djilog', 'log'];
const HEAD_BYTES = 4096;

let sniffer: Promise<(head: Uint8Array) => MediaFormat | null> | undefined;
function loadSniff(): Promise<(head: Uint8Array) => MediaFormat | null> {
  sniffer ??= import('../sanitize/index.js').then((m) => m.sniff);
  return sniffer;
}

export async function inventory(cardRoot: string): Promise<CardEntry[]> {
  const root = path.resolve(cardRoot);
  let st;
  try {
    st = await fsp.lstat(root);
  } catch (err) {
    throw new KluisError('E_CARD_NOT_FOUND', `card folder ${cardRoot} does not exist or cannot be read`, {
      hint: 'give the folder where the card is mounted (the one that holds DCIM/)',
      cause: err,
    });
  }
  if (st.isSymbolicLink()) {
    throw new KluisError('E_CARD_SYMLINK', `card folder ${cardRoot} is a symbolic link`, {
      hint: 'give the real mount point of the card, not a link to it',
    });
  }
  if (!st.isDirectory()) throw new KluisError('E_CARD_NOT_DIR', `${cardRoot} is not a folder`);
  const entries: CardEntry[] = [];
  await walk(root, root, '', entries);
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return entries;
}

async function walk(root: string, dirFs: string | Buffer, rel: string, out: CardEntry[]): Promise<void> {
  let names: Buffer[];
  try {
    names = await fsp.readdir(dirFs, { encoding: 'buffer' });
  } catch (err) {
    throw new KluisError('E_CARD_READ', `cannot list ${rel || '.'} on the card`, {
      hint: 'is the card still inserted? re-insert it and run again; files already read are kept',
      cause: err,
    });
  }
  for (const raw of names) {
    // Nothing is skipped, hidden entries at the root included: .Trashes can hold deleted
    // footage, and OS bookkeeping (.Spotlight-V100, System Volume Information) is listed and
    // withheld like any other file kluis cannot prove clean, so the count is the card's own.
    const name = cardName(raw);
    const relPath = rel ? `${rel}/${name}` : name;
    const abs = path.join(root, relPath);
    const fsPath = joinFs(dirFs, raw);
    let st;
    try {
      st = await fsp.lstat(fsPath);
    } catch (err) {
      out.push({
        path: relPath, abs, fsPath, size: 0, mtimeMs: 0, class: 'other',
        rejected: new KluisError('E_CARD_READ', `cannot read ${relPath}`, { cause: err, hint: 'check the card; the other files are still taken' }),
      });
      continue;
    }
    if (st.isDirectory()) {
      await walk(root, fsPath, relPath, out);
      continue;
    }
    const base = { path: relPath, abs, fsPath, size: st.size, mtimeMs: st.mtimeMs };
    if (st.isSymbolicLink()) {
      out.push({ ...base, class: 'other', rejected: new KluisError('E_CARD_SYMLINK', `${relPath} is a symbolic link; links are never followed`, { hint: 'a camera does not write links; copy the real file onto the card if it belongs there' }) });
      continue;
    }
    if (!st.isFile()) {
      out.push({ ...base, class: 'other', rejected: new KluisError('E_CARD_SPECIAL', `${relPath} is not a regular file`, { hint: 'devices, pipes and sockets are not footage' }) });
      continue;
    }
    if (st.size === 0) {
      out.push({ ...base, class: 'other', rejected: new KluisError('E_INPUT_EMPTY', `${relPath} is empty (0 bytes)`, { hint: 'the camera may have stopped while writing; nothing to secure in this file' }) });
      continue;
    }
    out.push(await classify(base, relPath));
  }
}

async function classify(base: { path: string; abs: string; fsPath: string | Buffer; size: number; mtimeMs: number }, relPath: string): Promise<CardEntry> {
  let head: Buffer;
  try {
    const fh = await fsp.open(base.fsPath, C.O_RDONLY | C.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(Math.min(HEAD_BYTES, base.size));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      head = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (err) {
    return { ...base, class: 'other', rejected: new KluisError('E_CARD_READ', `cannot read ${relPath}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err, hint: 'check the file permissions or the card; the other files are still taken' }) };
  }
  const format = (await loadSniff())(head) ?? undefined;
  const lower = relPath.toLowerCase();
  const ext = path.extname(lower);
  const inSidecarDir = lower.split('/').slice(0, -1).some((d) => SIDECAR_DIRS.includes(d));
  if (format) {
    // Recognised picture/video bytes: footage, unless the card's layout says it is a proxy or thumbnail.
    if (inSidecarDir || ext === '.lrf' || ext === '.thm') return { ...base, class: 'sidecar', format };
    return { ...base, class: 'footage', format };
  }
  if (inSidecarDir || SIDECAR_EXT.has(ext) || looksLikeSrt(head)) return { ...base, class: 'sidecar' };
  return { ...base, class: 'other' };
}

function looksLikeSrt(head: Buffer): boolean {
  const text = head.subarray(0, 256).toString('utf8').replace(/^\uFEFF/, '');
  return /^\s*\d+\s*\r?\n\s*\d\d:\d\d:\d\d[,.]\d{3}\s*-->/.test(text);
}
