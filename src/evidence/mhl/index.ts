/**
 * ASC MHL v2 histories (the film industry's offload standard) for a folder of exported evidence.
 *
 * `writeMhlGeneration` adds one generation: `ascmhl/NNNN_<folder>_<date>.mhl` (urn:ASC:MHL:v2.0)
 * with creator and process info, per file xxh128 + SHA-1, size, modification date, hash date and
 * action (original for a file the history has not seen, verified/failed against the history),
 * directory and root hashes (content + structure, xxh128, as the reference implementation
 * computes them), then rewrites `ascmhl/ascmhl_chain.xml` (urn:ASC:MHL:DIRECTORY:v2.0) with the
 * C4 ID of every generation. Both are written atomically; an existing generation file is never
 * overwritten.
 *
 * `verifyMhl` re-hashes the folder against the history (the latest generation that lists each
 * file) and checks every manifest against its C4 in the chain. It reports changed, missing and
 * new files and changed, missing or unchained manifests; it never writes unless asked to record
 * the run as a new generation.
 *
 * Every file a generation lists is checked where it is, whatever the ignore patterns say (a card
 * folder named `ascmhl` or a file named `.DS_Store` below the export is evidence like any other);
 * the patterns only keep files out of a full listing and out of the "new" report.
 *
 * Never follows symlinks (they are reported, not hashed); an `ascmhl` folder that is a link is
 * refused (E_MHL_LINK), never written through.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError } from '../../errors.js';
import { writeFileAtomic, fsyncDir } from '../../util/fsx.js';
import { c4OfBytes, hashBytes, hashFile, hashStringToBytes, MHL_HASH_ORDER, type MhlHashFormat } from './hash.js';
import { esc, parseXml, child, childrenNamed } from './xml.js';

export const MHL_FOLDER = 'ascmhl';
export const CHAIN_FILE = 'ascmhl_chain.xml';
export const DEFAULT_IGNORE = ['.DS_Store', 'ascmhl', 'ascmhl/'];
const FILE_FORMATS: MhlHashFormat[] = ['sha1', 'xxh128'];
const DIR_FORMAT: MhlHashFormat = 'xxh128';

export interface MhlCreator {
  /** Defaults to kluis and the package version. */
  tool?: { name: string; version: string };
  hostname?: string;
  /** The operator; recorded as <author>. */
  author?: { name: string; email?: string; phone?: string; role?: string };
  location?: string;
  comment?: string;
  /** Creation date of the generation (default now). */
  date?: Date;
}

export interface MhlGenerationOptions {
  /** Relative paths (with /) of the files to list; default every file under root. */
  files?: string[];
  creator: MhlCreator;
  process: 'in-place' | 'transfer';
  /** Extra ignore patterns (file or folder names; a trailing / means folders only). */
  ignore?: string[];
}

export interface MhlGenerationResult {
  generation: number;
  manifestPath: string;
  files: number;
  /** Files whose hash differs from the history (recorded with action="failed"). */
  failed: string[];
}

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

interface HistoryEntry {
  size?: number;
  hashes: Partial<Record<MhlHashFormat, string>>;
  generation: number;
  action?: string;
}

interface History {
  chain: Array<{ sequencenr: number; path: string; c4: string }>;
  manifests: Array<{ generation: number; file: string }>;
  /** Per relative path, the entry of the latest generation that lists it. */
  latest: Map<string, HistoryEntry>;
  ignore: string[];
}

async function packageVersion(): Promise<string> {
  try {
    const url = new URL('../../../package.json', import.meta.url);
    const pkg = JSON.parse(await fsp.readFile(url, 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function isoSeconds(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

function fileNameDate(d: Date): string {
  const s = d.toISOString();
  return `${s.slice(0, 10)}_${s.slice(11, 13)}${s.slice(14, 16)}${s.slice(17, 19)}Z`;
}

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
async function walk(root: string, patterns: string[]): Promise<{ files: string[]; symlinks: string[] }> {
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

function checkRel(rel: string): string {
  const norm = path.posix.normalize(rel.split(path.sep).join('/'));
  if (norm.startsWith('../') || norm === '..' || path.posix.isAbsolute(norm) || norm === '.') {
    throw new KluisError('E_MHL_PATH', `path ${rel} is not inside the folder`);
  }
  return norm;
}

/** Throws E_MHL_LINK when root/ascmhl exists and is not a real folder (a link, a file). */
async function checkMhlFolder(root: string): Promise<void> {
  const st = await fsp.lstat(path.join(root, MHL_FOLDER)).catch(() => null);
  if (st && !st.isDirectory()) {
    throw new KluisError('E_MHL_LINK', `${MHL_FOLDER} in ${root} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; it is never followed`, {
      hint: 'the ASC MHL history must be a real folder inside the checked folder',
    });
  }
}

/** Reads the chain file and every generation listed in the folder. */
async function readHistory(root: string): Promise<History | null> {
  await checkMhlFolder(root);
  const dir = path.join(root, MHL_FOLDER);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return null;
  }
  const chain: History['chain'] = [];
  const chainPath = path.join(dir, CHAIN_FILE);
  const chainText = await fsp.readFile(chainPath, 'utf8').catch(() => null);
  if (chainText !== null) {
    const doc = parseXml(chainText, CHAIN_FILE);
    for (const hl of childrenNamed(doc, 'hashlist')) {
      chain.push({
        sequencenr: Number(hl.attrs.sequencenr),
        path: (child(hl, 'path')?.text ?? '').trim(),
        c4: (child(hl, 'c4')?.text ?? '').trim(),
      });
    }
  }
  const manifests = names
    .map((f) => ({ f, m: /^(\d{4,})(?:_(.+))?\.mhl$/.exec(f) }))
    .filter((x) => x.m)
    .map((x) => ({ generation: Number(x.m![1]), file: x.f }))
    .sort((a, b) => a.generation - b.generation);
  const latest = new Map<string, HistoryEntry>();
  let ignore = [...DEFAULT_IGNORE];
  for (const m of manifests) {
    const text = await fsp.readFile(path.join(dir, m.file), 'utf8');
    const doc = parseXml(text, m.file);
    const pi = child(doc, 'processinfo');
    const ig = pi && child(pi, 'ignore');
    if (ig) ignore = childrenNamed(ig, 'pattern').map((p) => p.text.trim());
    const hashes = child(doc, 'hashes');
    for (const h of hashes ? childrenNamed(hashes, 'hash') : []) {
      const p = child(h, 'path');
      if (!p) continue;
      const entry: HistoryEntry = { hashes: {}, generation: m.generation };
      if (p.attrs.size !== undefined) entry.size = Number(p.attrs.size);
      for (const f of MHL_HASH_ORDER) {
        const el = child(h, f);
        if (el) {
          entry.hashes[f] = el.text.trim();
          if (el.attrs.action) entry.action = el.attrs.action;
        }
      }
      latest.set(p.text.trim(), entry);
    }
  }
  return { chain, manifests, latest, ignore };
}

interface DirNode {
  files: Map<string, string>; // name -> content hash
  dirs: Map<string, DirNode>;
}

/** Content and structure hashes of every folder, as the ASC MHL reference computes them. */
async function directoryHashes(fileHashes: Map<string, string>): Promise<Map<string, { content: string; structure: string }>> {
  const root: DirNode = { files: new Map(), dirs: new Map() };
  for (const [rel, h] of fileHashes) {
    const parts = rel.split('/');
    let node = root;
    for (const d of parts.slice(0, -1)) {
      let next = node.dirs.get(d);
      if (!next) {
        next = { files: new Map(), dirs: new Map() };
        node.dirs.set(d, next);
      }
      node = next;
    }
    node.files.set(parts[parts.length - 1]!, h);
  }
  const out = new Map<string, { content: string; structure: string }>();
  async function hashList(list: string[]): Promise<string> {
    list.sort();
    return hashBytes(Buffer.concat(list.map((s) => hashStringToBytes(s, DIR_FORMAT))), DIR_FORMAT);
  }
  async function rec(node: DirNode, rel: string): Promise<{ content: string; structure: string }> {
    const contents: string[] = [];
    const structures: string[] = [];
    for (const [name, h] of node.files) {
      contents.push(h);
      structures.push(await hashBytes(Buffer.concat([Buffer.from(name, 'utf8'), hashStringToBytes(h, DIR_FORMAT)]), DIR_FORMAT));
    }
    for (const [name, sub] of node.dirs) {
      const r = await rec(sub, rel ? `${rel}/${name}` : name);
      contents.push(r.content);
      structures.push(await hashBytes(Buffer.concat([Buffer.from(name, 'utf8'), hashStringToBytes(r.structure, DIR_FORMAT)]), DIR_FORMAT));
    }
    const res = { content: await hashList(contents), structure: await hashList(structures) };
    out.set(rel, res);
    return res;
  }
  await rec(root, '');
  return out;
}

/** Whether `rel` below root is a regular file reached without any link ('file'), through or as a link ('link'), or not there. */
async function regularFileBelow(root: string, rel: string): Promise<'file' | 'link' | 'none'> {
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

/** Writes one new generation for the folder `root` and updates the chain file. */
export async function writeMhlGeneration(root: string, opts: MhlGenerationOptions): Promise<MhlGenerationResult> {
  const absRoot = path.resolve(root);
  const st = await fsp.stat(absRoot).catch(() => null);
  if (!st?.isDirectory()) throw new KluisError('E_MHL_ROOT', `${root} is not a folder`);
  const history = await readHistory(absRoot);
  const patterns = [...new Set([...(history?.ignore ?? DEFAULT_IGNORE), ...(opts.ignore ?? [])])];
  const full = opts.files === undefined;
  const files = full ? (await walk(absRoot, patterns)).files : [...new Set(opts.files!.map(checkRel))].sort();
  const now = opts.creator.date ?? new Date();
  const hashDate = isoSeconds(now);
  const failed: string[] = [];
  const hashLines: string[] = [];
  const contentHashes = new Map<string, string>();
  for (const rel of files) {
    const abs = path.join(absRoot, rel);
    const lst = await fsp.lstat(abs).catch((err) => {
      throw new KluisError('E_MHL_READ', `cannot read ${rel}: ${(err as Error).message}`, { cause: err });
    });
    if (!lst.isFile()) throw new KluisError('E_MHL_READ', `${rel} is not a regular file`);
    const { size, hashes } = await hashFile(abs, FILE_FORMATS);
    contentHashes.set(rel, hashes[DIR_FORMAT]!);
    const prior = history?.latest.get(rel);
    let action = 'original';
    if (prior) {
      const comparable = FILE_FORMATS.filter((f) => prior.hashes[f] !== undefined);
      if (comparable.length > 0) {
        action = comparable.every((f) => prior.hashes[f] === hashes[f]) ? 'verified' : 'failed';
      }
      if (action === 'failed') failed.push(rel);
    }
    const elems = MHL_HASH_ORDER.filter((f) => hashes[f] !== undefined).map(
      (f) => `      <${f} action="${action}" hashdate="${hashDate}">${hashes[f]}</${f}>`,
    );
    hashLines.push(
      '    <hash>',
      `      <path size="${size}" lastmodificationdate="${isoSeconds(lst.mtime)}">${esc(rel)}</path>`,
      ...elems,
      '    </hash>',
    );
  }
  let rootHash: { content: string; structure: string } | undefined;
  if (full) {
    const dirs = await directoryHashes(contentHashes);
    rootHash = dirs.get('');
    for (const [rel, h] of [...dirs].filter(([r]) => r !== '').sort(([a], [b]) => (a < b ? -1 : 1))) {
      hashLines.push(
        '    <directoryhash>',
        `      <path>${esc(rel)}</path>`,
        `      <content><${DIR_FORMAT} action="original" hashdate="${hashDate}">${h.content}</${DIR_FORMAT}></content>`,
        `      <structure><${DIR_FORMAT} action="original" hashdate="${hashDate}">${h.structure}</${DIR_FORMAT}></structure>`,
        '    </directoryhash>',
      );
    }
  }

  const c = opts.creator;
  const tool = c.tool ?? { name: 'kluis', version: await packageVersion() };
  const author = c.author
    ? `    <author${c.author.email && /^[^@]+@[^.]+\..+$/.test(c.author.email) ? ` email="${esc(c.author.email)}"` : ''}${c.author.phone ? ` phone="${esc(c.author.phone)}"` : ''}${c.author.role ? ` role="${esc(c.author.role)}"` : ''}>${esc(c.author.name)}</author>`
    : null;
  const xml = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<hashlist version="2.0" xmlns="urn:ASC:MHL:v2.0">',
    '  <creatorinfo>',
    `    <creationdate>${isoSeconds(now)}</creationdate>`,
    `    <hostname>${esc(c.hostname ?? os.hostname())}</hostname>`,
    `    <tool version="${esc(tool.version)}">${esc(tool.name)}</tool>`,
    ...(author ? [author] : []),
    ...(c.location ? [`    <location>${esc(c.location)}</location>`] : []),
    ...(c.comment ? [`    <comment>${esc(c.comment)}</comment>`] : []),
    '  </creatorinfo>',
    '  <processinfo>',
    `    <process>${opts.process}</process>`,
    ...(rootHash
      ? [
          '    <roothash>',
          `      <content><${DIR_FORMAT} action="original" hashdate="${hashDate}">${rootHash.content}</${DIR_FORMAT}></content>`,
          `      <structure><${DIR_FORMAT} action="original" hashdate="${hashDate}">${rootHash.structure}</${DIR_FORMAT}></structure>`,
          '    </roothash>',
        ]
      : []),
    '    <ignore>',
    ...patterns.map((p) => `      <pattern>${esc(p)}</pattern>`),
    '    </ignore>',
    '  </processinfo>',
    ...(hashLines.length ? ['  <hashes>', ...hashLines, '  </hashes>'] : []),
    '</hashlist>',
    '',
  ].join('\n');

  const dir = path.join(absRoot, MHL_FOLDER);
  await checkMhlFolder(absRoot);
  await fsp.mkdir(dir, { recursive: true });
  const generation = Math.max(0, ...(history?.manifests.map((m) => m.generation) ?? []), ...(history?.chain.map((x) => x.sequencenr) ?? [])) + 1;
  const folderName = (path.basename(absRoot) || 'root').replace(/[^A-Za-z0-9._-]/g, '_');
  const manifestName = `${String(generation).padStart(4, '0')}_${folderName}_${fileNameDate(now)}.mhl`;
  const manifestPath = path.join(dir, manifestName);
  const bytes = Buffer.from(xml, 'utf8');
  // 'wx': a generation file is never overwritten.
  const fh = await fsp.open(manifestPath, 'wx', 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsyncDir(dir);

  const chainEntries = [...(history?.chain ?? []), { sequencenr: generation, path: manifestName, c4: c4OfBytes(bytes) }];
  const chainXml = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ascmhldirectory xmlns="urn:ASC:MHL:DIRECTORY:v2.0">',
    ...chainEntries.flatMap((e) => [
      `  <hashlist sequencenr="${e.sequencenr}">`,
      `    <path>${esc(e.path)}</path>`,
      `    <c4>${esc(e.c4)}</c4>`,
      '  </hashlist>',
    ]),
    '</ascmhldirectory>',
    '',
  ].join('\n');
  await writeFileAtomic(path.join(dir, CHAIN_FILE), chainXml);
  return { generation, manifestPath, files: files.length, failed };
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
