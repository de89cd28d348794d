/**
 * The chain file `ascmhl/ascmhl_chain.xml` (urn:ASC:MHL:DIRECTORY:v2.0): every generation's
 * sequence number, file name and C4 ID, so a manifest changed after it was written is found.
 * Written atomically, as a whole; a missing or unreadable chain file reads as an empty chain, a
 * damaged one is refused (E_MHL_XML).
 */
import * as path from 'node:path';
import { KluisError } from '../../errors.js';
import { writeFileAtomic } from '../../util/fsx.js';
import { buildXml, child, childrenNamed, readMhlXml } from './xml.js';

export const CHAIN_FILE = 'ascmhl_chain.xml';

export interface ChainEntry {
  sequencenr: number;
  /** The generation's file name inside ascmhl/. */
  path: string;
  c4: string;
}

/** The chain of the history folder `dir` (root/ascmhl), in file order. */
export async function readChain(dir: string): Promise<ChainEntry[]> {
  const doc = await readMhlXml(path.join(dir, CHAIN_FILE), CHAIN_FILE).catch((err: unknown) => {
    if (err instanceof KluisError) throw err;
    return null; // no chain file (yet)
  });
  return (doc ? childrenNamed(doc, 'hashlist') : []).map((hl) => ({
    sequencenr: Number(hl.attrs.sequencenr),
    path: child(hl, 'path')?.text ?? '',
    c4: child(hl, 'c4')?.text ?? '',
  }));
}

/** Replaces the chain file of `dir` with `entries`, atomically. */
export async function writeChain(dir: string, entries: ChainEntry[]): Promise<void> {
  const xml = buildXml({
    ascmhldirectory: {
      '@_xmlns': 'urn:ASC:MHL:DIRECTORY:v2.0',
      hashlist: entries.map((e) => ({ '@_sequencenr': e.sequencenr, path: e.path, c4: e.c4 })),
    },
  });
  await writeFileAtomic(path.join(dir, CHAIN_FILE), xml);
}
