/**
 * Checks a folder against its ASC MHL history: re-hashes every file the history lists (the latest
 * generation that lists it, in the formats it was recorded with) and checks every manifest
 * against its C4 in the chain file. Reports changed, missing and new files and changed, missing
 * or unchained manifests; writes nothing unless asked to record the run as a new generation.
 *
 * Every listed file is checked where it is, whatever the ignore patterns say (a card folder named
 * `ascmhl` or a file named `.DS_Store` below the export is evidence like any other); the patterns
 * only keep files out of the "new" report. Never follows symlinks: they are reported, not hashed.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../errors.js';
import { CHAIN_FILE } from './chain.js';
import { MHL_FOLDER, regularFileBelow, walk } from './folder.js';
import { writeMhlGeneration, type MhlCreator } from './generation.js';
import { c4OfBytes, hashFile, MHL_HASH_ORDER } from './hash.js';
import { readHistory } from './history.js';

export interface MhlProblem {
  path: string;
  code: 'changed' | 'missing' | 'new' | 'size' | 'unreadable' | 'symlink' | 'manifest-missing' | 'manifest-changed' | 'manifest-unchained' | 'no-hash' | 'failed-in-history';
  message: string;
}

export interface MhlVerifyResult {
  ok: boolean;
  checked: number;
  generations: number;
  problems: MhlProblem[];
}

/**
 * Checks `root` against its ASC MHL history. With `record`, the run is also written as a new
 * generation (actions verified/failed), as `ascmhl verify` users expect from a re-check.
 */
export async function verifyMhl(root: string, opts: { record?: MhlCreator } = {}): Promise<MhlVerifyResult> {
  const absRoot = path.resolve(root);
  const history = await readHistory(absRoot);
  if (!history || (history.manifests.length === 0 && history.chain.length === 0)) {
    throw new KluisError('E_MHL_NO_HISTORY', `${root} has no ASC MHL history (no ${MHL_FOLDER}/ folder with generations)`, {
      hint: 'run it on a folder made by `kluis export`, which writes ascmhl/',
    });
  }
  const problems: MhlProblem[] = [];
  const dir = path.join(absRoot, MHL_FOLDER);

  // The chain: every manifest it names exists with the same C4; every manifest is in the chain.
  const chained = new Set<string>();
  for (const e of history.chain) {
    chained.add(e.path);
    const where = `${MHL_FOLDER}/${e.path}`;
    const bytes = await fsp.readFile(path.join(dir, e.path)).catch(() => null);
    if (!bytes) {
      problems.push({ path: where, code: 'manifest-missing', message: `generation ${e.sequencenr} (${e.path}) named in the chain file is missing` });
    } else if (c4OfBytes(bytes) !== e.c4) {
      problems.push({ path: where, code: 'manifest-changed', message: `generation ${e.sequencenr} (${e.path}) was changed after it was written (C4 differs from the chain file)` });
    }
  }
  for (const m of history.manifests) {
    if (!chained.has(m.file)) {
      problems.push({ path: `${MHL_FOLDER}/${m.file}`, code: 'manifest-unchained', message: `generation file ${m.file} is not listed in ${CHAIN_FILE}` });
    }
  }

  // The files: re-hash each one the history lists, in the formats it was recorded with.
  const { files: present, symlinks } = await walk(absRoot, history.ignore);
  for (const s of symlinks) problems.push({ path: s, code: 'symlink', message: `${s} is a symbolic link; not followed` });
  const symlinked = new Set(symlinks);
  let checked = 0;
  for (const [rel, entry] of [...history.latest].sort(([a], [b]) => (a < b ? -1 : 1))) {
    // Each listed file is looked up itself, not in the walk: ignore patterns never hide evidence.
    if (symlinked.has(rel)) continue;
    const kind = await regularFileBelow(absRoot, rel);
    if (kind === 'link') {
      problems.push({ path: rel, code: 'symlink', message: `${rel} is reached through a symbolic link; not followed` });
      continue;
    }
    if (kind !== 'file') {
      problems.push({ path: rel, code: 'missing', message: `${rel} is in the history (generation ${entry.generation}) but not in the folder` });
      continue;
    }
    const formats = MHL_HASH_ORDER.filter((f) => entry.hashes[f] !== undefined);
    if (formats.length === 0) {
      problems.push({ path: rel, code: 'no-hash', message: `${rel} has no hash in the history` });
      continue;
    }
    let res;
    try {
      res = await hashFile(path.join(absRoot, rel), formats);
    } catch (err) {
      problems.push({ path: rel, code: 'unreadable', message: `${rel} could not be read: ${(err as Error).message}` });
      continue;
    }
    checked++;
    const bad = formats.filter((f) => res.hashes[f] !== entry.hashes[f]);
    if (bad.length > 0) {
      problems.push({
        path: rel,
        code: 'changed',
        message: `${rel} differs from generation ${entry.generation}: ${bad.map((f) => `${f} ${res.hashes[f]} != ${entry.hashes[f]}`).join(', ')}`,
      });
    } else if (entry.size !== undefined && entry.size !== res.size) {
      problems.push({ path: rel, code: 'size', message: `${rel} is ${res.size} bytes, the history says ${entry.size}` });
    } else if (entry.action === 'failed') {
      problems.push({ path: rel, code: 'failed-in-history', message: `${rel} was recorded as failed in generation ${entry.generation}` });
    }
  }
  for (const rel of present) {
    if (!history.latest.has(rel)) problems.push({ path: rel, code: 'new', message: `${rel} is not in the history (added after the last generation)` });
  }
  if (opts.record) {
    await writeMhlGeneration(absRoot, { creator: opts.record, process: 'in-place' });
  }
  return { ok: problems.length === 0, checked, generations: history.manifests.length, problems };
}
