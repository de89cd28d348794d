/**
 * The allow-list of MP4/MOV structures kluis lets through, as data: which boxes a kept video or
 * audio track may carry, which sample entries and codec boxes stay, which values are neutral, the
 * layout of the fixed-size sample tables, the strings that must never reach a sanitized file, and
 * the class (gps, serial, ...) a removed structure is reported under. The code that applies it is
 * rules-apply.ts (the walk shared by both sides), rules-input.ts (what the input loses) and
 * rules-output.ts (whether the output is clean). It decides nothing about which tracks to keep:
 * the caller names them.
 */
import { AUDIO_ENTRIES, VISUAL_ENTRIES } from './boxes.js';

export type TrackKind = 'video' | 'audio';

/** Handler names that say nothing about the device or the software that wrote the file. */
export const NEUTRAL_HANDLER_NAMES = new Set(['', 'VideoHandler', 'SoundHandler', 'DataHandler']);

/** The XMP uuid (Adobe XMP in ISO-BMFF). */
export const XMP_UUID = 'be7acfcb-97a9-42e8-9c71-999491e3afac';

/** Strings that must never appear outside `mdat` in a sanitized file, whatever the input. */
export const DEFAULT_NEEDLES = [
  'DJI', 'dji', 'drone', 'Drone', 'GPS', 'gps ', 'Lavf', 'Lavc', 'x264', 'xmpmeta', 'xmlns', 'ISO6709',
  'SN=', 'serial', 'Serial', 'Hasselblad', 'com.apple.quicktime', 'latitude', 'longitude',
];
/** ISO 6709 coordinates such as "+52.0907+005.1214/". */
export const ISO6709 = /[+-]\d{1,2}\.\d{3,}[+-]\d{1,3}\.\d{3,}/;

/** Boxes a kept video sample entry may carry: codec configuration, bit rate, aspect, colour, HDR. */
export const VISUAL_CHILDREN = new Set([
  'avcC', 'hvcC', 'av1C', 'vpcC', 'dvcC', 'dvvC', 'btrt', 'pasp', 'colr', 'fiel', 'clap', 'mdcv', 'clli',
  'gama', 'SmDm', 'CoLL', 'glbl',
]);
/** Boxes a kept audio sample entry may carry: codec configuration, channel layout, bit rate. */
export const AUDIO_CHILDREN = new Set(['esds', 'wave', 'chan', 'btrt', 'dac3', 'dec3', 'dOps', 'alac', 'dfLa']);
/** Boxes a QuickTime `wave` (inside an audio sample entry) may carry. */
export const WAVE_CHILDREN = new Set(['frma', 'mp4a', 'esds', 'enda', 'chan', 'alac', '\0\0\0\0']);
/** The sample tables a kept track's `stbl` may carry. */
export const STBL_CHILDREN = new Set([
  'stsd', 'stts', 'stss', 'ctts', 'cslg', 'stsc', 'stsz', 'stz2', 'stco', 'co64', 'sgpd', 'sbgp', 'sdtp', 'stps',
]);
/** Sample grouping types (`sgpd`/`sbgp`) that say only how to decode (roll, sync, random access). */
export const GROUPING_TYPES = new Set(['roll', 'prol', 'sync', 'rap ']);
/** Video/audio sample entries a sanitized file may carry (no encrypted or Motion-JPEG entries). */
export const KEPT_VISUAL = new Set([...VISUAL_ENTRIES].filter((t) => !['encv', 'jpeg', 'mjpa', 'mjpb'].includes(t)));
export const KEPT_AUDIO = new Set([...AUDIO_ENTRIES].filter((t) => t !== 'enca'));
/** Handler types of a `minf`'s data handler (QuickTime): a data reference, nothing more. */
export const DATA_HANDLER_TYPES = new Set(['url ', 'alis', '\0\0\0\0']);
/** Vendor codes a kept sample entry may carry: none, or ffmpeg's. */
export const NEUTRAL_VENDOR_CODES = new Set(['\0\0\0\0', 'FFMP']);

/** Largest leaf box whose payload is read (and so the largest a kept leaf may be). */
export const MAX_LEAF = 4 << 20;

/** The class a removed structure of this type is reported under (RemovedItem.what). */
export const CLASS_BY_TYPE: Record<string, string> = {
  '©xyz': 'gps', loci: 'gps', '©loc': 'gps', LOCI: 'gps',
  '©xsp': 'speed', '©ysp': 'speed', '©zsp': 'speed',
  '©fpt': 'attitude', '©fyw': 'attitude', '©frl': 'attitude', '©gpt': 'attitude', '©gyw': 'attitude', '©grl': 'attitude',
  '©csn': 'serial', '©uid': 'serial', '©sno': 'serial', SNum: 'serial',
  '©mdl': 'make-model', '©mak': 'make-model', '©mod': 'make-model', manu: 'make-model', modl: 'make-model',
  '©swr': 'firmware', '©too': 'firmware', '©enc': 'firmware', '©fmw': 'firmware', Xtra: 'firmware', FIRM: 'firmware',
  '©cmt': 'comment', '©des': 'comment', '©inf': 'comment', '©nam': 'comment', '©aut': 'comment', '©ART': 'comment',
  cprt: 'comment', dscp: 'comment', titl: 'comment', auth: 'comment', desc: 'comment',
  tref: 'timed-metadata',
  '©day': 'creation-time', '©mdt': 'creation-time', date: 'creation-time',
  covr: 'thumbnail', thmb: 'thumbnail', snal: 'thumbnail', PRVW: 'thumbnail', THMB: 'thumbnail',
};

/** Fixed-layout sample tables: their size must follow from their entry count, leaving no room to hide bytes. */
export const TABLE_ENTRY: Record<string, { head: number; entry: (p: Uint8Array) => number }> = {
  stts: { head: 8, entry: () => 8 },
  ctts: { head: 8, entry: () => 8 },
  stss: { head: 8, entry: () => 4 },
  stps: { head: 8, entry: () => 4 },
  stsc: { head: 8, entry: () => 12 },
  stco: { head: 8, entry: () => 4 },
  co64: { head: 8, entry: () => 8 },
  elst: { head: 8, entry: (p) => (p[0] === 1 ? 20 : 12) },
};

/** Sample tables whose size follows from their header: only their header is scanned for needles. */
export const EXACT_TABLES = new Set(['stts', 'ctts', 'stss', 'stps', 'stsc', 'stco', 'co64', 'elst', 'stsz', 'stz2', 'cslg']);
