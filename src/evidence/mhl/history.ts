/**
 * Reads the ASC MHL history of a folder: the chain file and every generation file in `ascmhl/`
 * (NNNN[_…].mhl, by generation number), and for each listed file the entry of the latest
 * generation that lists it. Reads only; a damaged file is refused (E_MHL_XML), an `ascmhl` that
 * is not a real folder too (E_MHL_LINK).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { readChain, type ChainEntry } from './chain.js';
import { checkMhlFolder, DEFAULT_IGNORE, MHL_FOLDER } from './folder.js';
import { MHL_HASH_ORDER, type MhlHashFormat } from './hash.js';
import { child, childrenNamed, readMhlXml } from './xml.js';

export interface HistoryEntry {
  size?: number;
  hashes: Partial<Record<MhlHashFormat, string>>;
  generation: number;
  action?: string;
}

export interface History {
  chain: ChainEntry[];
  manifests: Array<{ generation: number; file: string }>;
  /** Per relative path, the entry of the latest generation that lists it. */
  latest: Map<string, HistoryEntry>;
  /** The ignore patterns of the latest generation (the defaults when none says). */
  ignore: string[];
}

/** The history of `root`, or null when it has no `ascmhl/` folder. */
export async function readHistory(root: string): Promise<History | null> {
  await checkMhlFolder(root);
  const dir = path.join(root, MHL_FOLDER);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return null;
  }
  const chain = await readChain(dir);
  const manifests = names
    .map((f) => ({ f, m: /^(\d{4,})(?:_(.+))?\.mhl$/.exec(f) }))
    .filter((x) => x.m)
    .map((x) => ({ generation: Number(x.m![1]), file: x.f }))
    .sort((a, b) => a.generation - b.generation);
  const latest = new Map<string, HistoryEntry>();
  let ignore = [...DEFAULT_IGNORE];
  for (const m of manifests) {
    const doc = await readMhlXml(path.join(dir, m.file), m.file);
    const pi = child(doc, 'processinfo');
    const ig = pi && child(pi, 'ignore');
    if (ig) ignore = childrenNamed(ig, 'pattern').map((p) => p.text);
    const hashes = child(doc, 'hashes');
    for (const h of hashes ? childrenNamed(hashes, 'hash') : []) {
      const p = child(h, 'path');
      if (!p) continue;
      const entry: HistoryEntry = { hashes: {}, generation: m.generation };
      if (p.attrs.size !== undefined) entry.size = Number(p.attrs.size);
      for (const f of MHL_HASH_ORDER) {
        const el = child(h, f);
        if (el) {
          entry.hashes[f] = el.text;
          if (el.attrs.action) entry.action = el.attrs.action;
        }
      }
      latest.set(p.text, entry);
    }
  }
  return { chain, manifests, latest, ignore };
}
