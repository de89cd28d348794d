/**
 * The folder an ASC MHL history describes: which files a full listing takes (ignore patterns),
 * paths that must stay inside it, and the `ascmhl` folder that must be a real folder. Never
 * follows symlinks: a walk reports them, a lookup says 'link'.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../../errors.js';

export const MHL_FOLDER = 'ascmhl';
export const DEFAULT_IGNORE = ['.DS_Store', 'ascmhl', 'ascmhl/'];

function ignored(rel: string, isDir: boolean, patterns: string[]): boolean {
  const base = rel.split('/').pop() ?? rel;
  for (const p of patterns) {
    if (p.endsWith('/')) {
      if (isDir && (base === p.slice(0, -1) || rel === p.slice(0, -1))) return true;
    } else if (base === p || rel === p) return true;
    else if (p.includes('*')) {
      const re = new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
      if (re.test(base)) return true;
    }
  }
  return false;
}

/** Lists regular files under root (relative, with /), skipping ignored names; symlinks reported. */
export async function walk(root: string, patterns: string[]): Promise<{ files: string[]; symlinks: string[] }> {
  const files: string[] = [];
  const symlinks: string[] = [];
  async function rec(rel: string): Promise<void> {
    const entries = await fsp.readdir(path.join(root, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) {
        symlinks.push(r);
      } else if (e.isDirectory()) {
        if (!ignored(r, true, patterns)) await rec(r);
      } else if (e.isFile()) {
        if (!ignored(r, false, patterns)) files.push(r);
      }
    }
  }
  await rec('');
  return { files, symlinks };
}

export function checkRel(rel: string): string {
  const norm = path.posix.normalize(rel.split(path.sep).join('/'));
  if (norm.startsWith('../') || norm === '..' || path.posix.isAbsolute(norm) || norm === '.') {
    throw new KluisError('E_MHL_PATH', `path ${rel} is not inside the folder`);
  }
  return norm;
}

/** Throws E_MHL_LINK when root/ascmhl exists and is not a real folder (a link, a file). */
export async function checkMhlFolder(root: string): Promise<void> {
  const st = await fsp.lstat(path.join(root, MHL_FOLDER)).catch(() => null);
  if (st && !st.isDirectory()) {
    throw new KluisError('E_MHL_LINK', `${MHL_FOLDER} in ${root} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; it is never followed`, {
      hint: 'the ASC MHL history must be a real folder inside the checked folder',
    });
  }
}

/** Whether `rel` below root is a regular file reached without any link ('file'), through or as a link ('link'), or not there. */
export async function regularFileBelow(root: string, rel: string): Promise<'file' | 'link' | 'none'> {
  let cur = root;
  const parts = rel.split('/');
  if (parts.some((x) => x === '' || x === '.' || x === '..')) return 'none'; // a history path that leaves the folder
  for (let i = 0; i < parts.length; i++) {
    cur = path.join(cur, parts[i]!);
    const st = await fsp.lstat(cur).catch(() => null);
    if (!st) return 'none';
    if (st.isSymbolicLink()) return 'link';
    if (i === parts.length - 1) return st.isFile() ? 'file' : 'none';
    if (!st.isDirectory()) return 'none';
  }
  return 'none';
}
