/**
 * GPAC's mp4box.js as an independent, in-process reader of an MP4/MOV movie header (ftyp, moov:
 * everything before the media data). It promises a plain view of what mp4box parsed: the brands,
 * the tracks as mp4box sees them (track id, handler type, sample entries with their codec strings,
 * handler name), the path of every box it found, and every complaint its parser logged. It reads
 * bytes in memory only, starts no process and writes nothing; it never decides whether a file is
 * clean (callers hold that). A buffer in which mp4box finds no movie header is a KluisError
 * (E_SANITIZE_TOOL_OUTPUT), never an empty view.
 */
import { createFile, Log, MP4BoxBuffer } from 'mp4box';
import { KluisError } from '../errors.js';

export interface MovieTrackView {
  id: number;
  /** The media handler's type (hdlr): vide, soun, meta, text, ... */
  handlerType: string;
  /** The track's sample entries, in order: four-character type and RFC 6381 codec string ("avc1.640028", "mp4a.40.2"). */
  entries: Array<{ type: string; codec: string }>;
  /** The media handler's name (hdlr). */
  handlerName: string;
}

export interface MovieView {
  brands: string[];
  tracks: MovieTrackView[];
  /** Every box mp4box parsed, as a path of types from the top ("moov/trak/mdia/hdlr"). */
  boxes: string[];
  /** What mp4box's parser logged as an error while reading. */
  complaints: string[];
}

interface ParsedBox {
  type?: string;
  boxes?: ParsedBox[];
  entries?: unknown[];
  getCodec?: () => string;
  name?: string;
  handler?: string;
  track_id?: number;
  major_brand?: string;
  compatible_brands?: string[];
}

// mp4box reports parse errors through its Log, which prints them; while a header is read they are
// collected instead (parsing is synchronous, so one collector per thread is enough).
let collecting: string[] | undefined;
const complaint = (module: string, msg: string): string => `${module}: ${String(msg).slice(0, 200)}`;
Log.error = (module: string, msg: string): void => {
  collecting?.push(complaint(module, msg));
};
Log.warn = (): void => undefined;

function isBox(x: unknown): x is ParsedBox {
  return typeof x === 'object' && x !== null && typeof (x as ParsedBox).type === 'string';
}

function paths(box: ParsedBox, parent: string, out: string[]): void {
  const at = parent ? `${parent}/${box.type}` : String(box.type);
  out.push(at);
  for (const c of box.boxes ?? []) if (isBox(c)) paths(c, at, out);
  for (const c of box.entries ?? []) if (isBox(c)) paths(c, at, out);
}

/** What mp4box reads in `bytes`: the file's first bytes, up to (at least) the end of moov. */
export function readMovieHeader(bytes: Uint8Array): MovieView {
  const complaints: string[] = [];
  const file = createFile();
  file.onError = (module: string, msg: string) => {
    complaints.push(complaint(module, msg));
  };
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  collecting = complaints;
  try {
    // The box tree only: `appendBuffer` would also build every track's sample list, which this
    // view does not need and which costs time and memory per sample.
    if (file.checkBuffer(MP4BoxBuffer.fromArrayBuffer(copy, 0))) file.parse();
  } catch (err) {
    throw new KluisError('E_SANITIZE_TOOL_OUTPUT', `mp4box could not read the movie header: ${(err as Error)?.message ?? String(err)}`, {
      hint: 'the sanitized file is not what kluis meant to write; it is not stored',
      cause: err,
    });
  } finally {
    collecting = undefined;
  }
  if (!file.moov) {
    throw new KluisError('E_SANITIZE_TOOL_OUTPUT', 'mp4box found no movie header (moov) in the file', {
      hint: 'the sanitized file is not what kluis meant to write; it is not stored',
    });
  }
  const boxes: string[] = [];
  for (const b of file.boxes as unknown as ParsedBox[]) if (isBox(b)) paths(b, '', boxes);
  const ftyp = (file.boxes as unknown as ParsedBox[]).find((b) => b.type === 'ftyp');
  const traks = ((file.moov as unknown as ParsedBox).boxes ?? []).filter((b) => b.type === 'trak');
  const tracks = traks.map((trak): MovieTrackView => {
    const stsd = findPath(trak, ['mdia', 'minf', 'stbl', 'stsd']);
    const hdlr = findPath(trak, ['mdia', 'hdlr']);
    return {
      id: findPath(trak, ['tkhd'])?.track_id ?? 0,
      handlerType: hdlr?.handler ?? '',
      entries: (stsd?.entries ?? []).filter(isBox).map((e) => ({ type: String(e.type), codec: safeCodec(e) })),
      handlerName: hdlr?.name ?? '',
    };
  });
  return {
    brands: ftyp ? [ftyp.major_brand ?? '', ...(ftyp.compatible_brands ?? [])] : [],
    tracks,
    boxes,
    complaints,
  };
}

function safeCodec(entry: ParsedBox): string {
  try {
    return typeof entry.getCodec === 'function' ? String(entry.getCodec()) : '';
  } catch {
    return '';
  }
}

function findPath(box: ParsedBox | undefined, types: string[]): ParsedBox | undefined {
  let at = box;
  for (const t of types) at = at?.boxes?.find((b) => b.type === t);
  return at;
}
