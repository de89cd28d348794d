/**
 * Writes one generation of a folder's ASC MHL history: `ascmhl/NNNN_<folder>_<date>.mhl`
 * (urn:ASC:MHL:v2.0, elements in the order ASCMHL.xsd requires) with creator and process info,
 * per file xxh128 + SHA-1, size, modification date, hash date and action (original for a file the
 * history has not seen, verified/failed against the history), and for a full listing the
 * directory and root hashes (content + structure, xxh128, as the reference implementation computes
 * them); then the chain file with the new generation's C4 ID. A generation file is never
 * overwritten; the chain file is replaced atomically.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError } from '../../errors.js';
import { fsyncDir, writeNewFileSynced } from '../../util/fsx.js';
import { writeChain } from './chain.js';
import { checkMhlFolder, checkRel, DEFAULT_IGNORE, MHL_FOLDER, walk } from './folder.js';
import { c4OfBytes, hashBytes, hashFile, hashStringToBytes, MHL_HASH_ORDER, type MhlHashFormat } from './hash.js';
import { readHistory } from './history.js';
import { buildXml } from './xml.js';

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

/** A hash element: `<xxh128 action="original" hashdate="…">…</xxh128>`. */
function hashElement(value: string, action: string, hashDate: string): Record<string, string> {
  return { '@_action': action, '@_hashdate': hashDate, '#text': value };
}

/** The <content> and <structure> of a <directoryhash> or <roothash>. */
function directoryElements(h: { content: string; structure: string }, hashDate: string): Record<string, unknown> {
  return {
    content: { [DIR_FORMAT]: hashElement(h.content, 'original', hashDate) },
    structure: { [DIR_FORMAT]: hashElement(h.structure, 'original', hashDate) },
  };
}

async function creatorInfo(c: MhlCreator, now: Date): Promise<Record<string, unknown>> {
  const tool = c.tool ?? { name: 'kluis', version: await packageVersion() };
  const a = c.author;
  return {
    creationdate: isoSeconds(now),
    hostname: c.hostname ?? os.hostname(),
    tool: { '@_version': tool.version, '#text': tool.name },
    ...(a
      ? {
          author: {
            // The schema types email as an address; one that is not is left out rather than invalid.
            ...(a.email && /^[^@]+@[^.]+\..+$/.test(a.email) ? { '@_email': a.email } : {}),
            ...(a.phone ? { '@_phone': a.phone } : {}),
            ...(a.role ? { '@_role': a.role } : {}),
            '#text': a.name,
          },
        }
      : {}),
    ...(c.location ? { location: c.location } : {}),
    ...(c.comment ? { comment: c.comment } : {}),
  };
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
  const hashEntries: Array<Record<string, unknown>> = [];
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
    hashEntries.push({
      path: { '@_size': size, '@_lastmodificationdate': isoSeconds(lst.mtime), '#text': rel },
      ...Object.fromEntries(MHL_HASH_ORDER.filter((f) => hashes[f] !== undefined).map((f) => [f, hashElement(hashes[f]!, action, hashDate)])),
    });
  }
  let rootHash: { content: string; structure: string } | undefined;
  const directoryEntries: Array<Record<string, unknown>> = [];
  if (full) {
    const dirs = await directoryHashes(contentHashes);
    rootHash = dirs.get('');
    for (const [rel, h] of [...dirs].filter(([r]) => r !== '').sort(([a], [b]) => (a < b ? -1 : 1))) {
      directoryEntries.push({ path: rel, ...directoryElements(h, hashDate) });
    }
  }

  const xml = buildXml({
    hashlist: {
      '@_version': '2.0',
      '@_xmlns': 'urn:ASC:MHL:v2.0',
      creatorinfo: await creatorInfo(opts.creator, now),
      processinfo: {
        process: opts.process,
        ...(rootHash ? { roothash: directoryElements(rootHash, hashDate) } : {}),
        ignore: { pattern: patterns },
      },
      ...(hashEntries.length + directoryEntries.length > 0 ? { hashes: { hash: hashEntries, directoryhash: directoryEntries } } : {}),
    },
  });

  const dir = path.join(absRoot, MHL_FOLDER);
  await checkMhlFolder(absRoot);
  await fsp.mkdir(dir, { recursive: true });
  const generation = Math.max(0, ...(history?.manifests.map((m) => m.generation) ?? []), ...(history?.chain.map((x) => x.sequencenr) ?? [])) + 1;
  const folderName = (path.basename(absRoot) || 'root').replace(/[^A-Za-z0-9._-]/g, '_');
  const manifestName = `${String(generation).padStart(4, '0')}_${folderName}_${fileNameDate(now)}.mhl`;
  const manifestPath = path.join(dir, manifestName);
  const bytes = Buffer.from(xml, 'utf8');
  // 'wx': a generation file is never overwritten.
  await writeNewFileSynced(manifestPath, bytes, 0o644);
  await fsyncDir(dir);
  await writeChain(dir, [...(history?.chain ?? []), { sequencenr: generation, path: manifestName, c4: c4OfBytes(bytes) }]);
  return { generation, manifestPath, files: files.length, failed };
}
