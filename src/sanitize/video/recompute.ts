/**
 * The `mp4-samples-sha256:t<track_ID>` essence of one track of an MP4/MOV file, recomputed from
 * the file alone (for `kluis verify`): the same description parts and the same sample-bytes hash
 * as ./proof.ts defines, here read back track by track, chunk by chunk in decode order (a second,
 * simpler reader of the same bytes than the streaming rewrite). It works on any non-fragmented
 * file, sanitized or not, so the value of an original's track equals its sanitized track's.
 * A track that is missing, not picture or sound, or unreadable is KluisError E_ESSENCE_*.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../../errors.js';
import { FileSource, walkBoxes } from './boxes.js';
import { describeTrack, essenceValue, trackDataDigest } from './proof.js';
import { readSampleTables, trackBoxes, trackIdentity } from './tables.js';

/** The last file's values per track: verify asks once per track of the same file. */
let memo: { key: string; values: Map<number, Promise<string>> } | undefined;

export async function samplesEssenceOfFile(file: string, trackId: number): Promise<string> {
  const st = await fsp.stat(file);
  const key = `${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  if (memo?.key !== key) memo = { key, values: new Map() };
  const values = memo.values;
  let value = values.get(trackId);
  if (!value) {
    value = compute(file, trackId);
    values.set(trackId, value);
    value.catch(() => values.delete(trackId));
  }
  return value;
}

function unreadable(message: string, cause?: unknown): KluisError {
  return new KluisError('E_ESSENCE_UNREADABLE', message, {
    hint: 'the stored file cannot be read as the manifest says; treat the object as suspect',
    ...(cause ? { cause } : {}),
  });
}

async function compute(file: string, trackId: number): Promise<string> {
  const src = await FileSource.open(file);
  try {
    let tree;
    try {
      tree = await walkBoxes(src);
    } catch (err) {
      throw unreadable(`the file's boxes cannot be read: ${(err as Error).message}`, err);
    }
    const moov = tree.boxes.filter((b) => b.type === 'moov');
    if (moov.length !== 1) throw unreadable(`the file has ${moov.length} moov boxes, not one`);
    const mvhd = (moov[0]!.children ?? []).find((b) => b.type === 'mvhd');
    if (!mvhd) throw unreadable('the file has no mvhd');
    const matches = [];
    for (const trak of (moov[0]!.children ?? []).filter((b) => b.type === 'trak')) {
      const ident = await trackIdentity(src, trak);
      if (ident.id === trackId) matches.push({ trak, handler: ident.handler });
    }
    if (matches.length !== 1) {
      throw new KluisError('E_ESSENCE_STREAM', `the file has ${matches.length} tracks with id ${trackId}, not one`, {
        hint: 'the manifest and the stored file disagree; treat the object as suspect',
      });
    }
    const { trak, handler } = matches[0]!;
    if (handler !== 'vide' && handler !== 'soun') {
      throw new KluisError('E_ESSENCE_STREAM', `track ${trackId} is not picture or sound (handler ${handler})`, {
        hint: 'the manifest and the stored file disagree; treat the object as suspect',
      });
    }
    try {
      const tb = trackBoxes(trak);
      const tables = await readSampleTables(src, tb);
      const description = await describeTrack(src, mvhd, tb, tables, handler === 'vide' ? 'video' : 'audio');
      const data = await trackDataDigest((p, l) => src.read(p, l), tables);
      return essenceValue(description, data);
    } catch (err) {
      if (err instanceof KluisError && err.code.startsWith('E_ESSENCE_')) throw err;
      throw unreadable(`track ${trackId} cannot be read: ${(err as Error).message}`, err);
    }
  } finally {
    await src.close();
  }
}
