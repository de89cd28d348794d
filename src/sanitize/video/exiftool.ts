/**
 * ExifTool as an independent reader of a sanitized MP4/MOV. `exiftoolFindings(file, needles)`
 * runs `exiftool -j -a -G1 -u -ee -n` and returns every tag that a clean file must not have: any
 * group outside the structural QuickTime/Track groups (XMP, UserData, Keys, ItemList, GPS, ...),
 * any tag named like location, serial, make, model, software, comment, and any value holding a
 * needle. It never trusts silence: a missing or failing ExifTool is an error, not a pass.
 * (ExifTool itself runs through src/wrappers/exiftool.ts, shared with the image checks; stdout is capped.)
 */
import * as path from 'node:path';
import { KluisError } from '../../errors.js';
import { exiftool } from '../../wrappers/exiftool.js';

const ALLOWED_GROUPS = /^(ExifTool|System|File|Composite|QuickTime|Track\d+)$/;
const FORBIDDEN_NAME =
  /GPS|Location|Latitude|Longitude|Altitude|Serial|Make|Model|Software|Firmware|Encoder|Comment|Author|Artist|Copyright|Title|Description|Keyword|Camera|Lens|Owner|UserData|User|XMP|UUID|Speed|Pitch|Yaw|Roll|Gimbal|Drone|DJI|Text|Subtitle|TimeCode|Timecode|Thumbnail|PreviewImage|ContentCreate|CreationDate|Warning|Unknown_(?!edts$|esds$|mp4a$|wave$|btrt$)/;
/** Names that match FORBIDDEN_NAME but only describe structure (sample groups of audio priming). */
const STRUCTURAL_NAMES = new Set(['SampleGroupDescription']);
const DATE_NAME = /Date$/;
const ZERO_DATE = /^0000:00:00 00:00:00/;
/** Values that are allowed in the few tags whose value identifies software or a handler. */
const NEUTRAL_VALUES: Record<string, RegExp> = {
  HandlerDescription: /^(|VideoHandler|SoundHandler|DataHandler)$/,
  VendorID: /^(|FFMP)$/,
};

async function runExiftool(file: string): Promise<string> {
  // The persistent ExifTool when it can (src/wrappers/exiftool.ts): the same arguments, the same JSON.
  const r = await exiftool(['-j', '-a', '-G1', '-u', '-ee', '-n', '-api', 'LargeFileSupport=1', '-charset', 'filename=utf8'], path.resolve(file), {
    maxStdoutBytes: 32 << 20,
    timeoutMs: 5 * 60_000,
  });
  if (r.truncated) throw new KluisError('E_SANITIZE_RESIDUE', 'exiftool reports more than 32 MiB of tags for a sanitized file');
  // exiftool exits 1 when it found no file to process, with JSON of an error otherwise.
  if (r.status !== 0) throw new KluisError('E_SANITIZE_TOOL_FAILED', `exiftool failed (exit ${r.status}): ${r.stderr.trim().slice(0, 300)}`);
  return r.stdout.toString('utf8');
}

/** The first bytes of an output: how many bytes of its mdat are left out, and where the mdat box starts. */
export interface PrefixOf {
  missingBytes: number;
  mdatPayloadStart: number;
}

/**
 * Everything ExifTool reports that a sanitized video must not carry; empty means clean.
 * `prefixOf`: `file` holds only the first bytes of the output, whose mdat runs on past its end.
 * ExifTool then warns of exactly that truncation (by the bytes missing, or by the mdat box's
 * offset), and that one warning is not a finding; any other warning still is. (Reading the prefix
 * instead of the whole output keeps the check off the media data: with -ee ExifTool reads samples.)
 */
export async function exiftoolFindings(file: string, needles: readonly string[], prefixOf?: PrefixOf): Promise<string[]> {
  const text = await runExiftool(file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new KluisError('E_SANITIZE_TOOL_OUTPUT', 'exiftool printed something that is not JSON', { cause: e });
  }
  const rec = Array.isArray(parsed) ? (parsed[0] as Record<string, unknown> | undefined) : undefined;
  if (!rec || typeof rec !== 'object') throw new KluisError('E_SANITIZE_TOOL_OUTPUT', 'exiftool returned no record');
  const w = rec['ExifTool:Warning'];
  if (prefixOf && prefixOf.missingBytes > 0 && typeof w === 'string' && truncationWarnings(prefixOf).has(w)) delete rec['ExifTool:Warning'];
  return findingsIn(rec, needles);
}

/**
 * The warnings ExifTool (13.x, Image::ExifTool::QuickTime) gives for a file whose mdat box runs
 * past the end: by the bytes missing, or by the offset of the mdat box's header (8 bytes before
 * its payload, or 16 with a 64-bit size), each with or without "Unknown trailer with".
 */
export function truncationWarnings(p: PrefixOf): Set<string> {
  const forms = [`truncated 'mdat' data (missing ${p.missingBytes} bytes)`];
  for (const header of [8, 16]) forms.push(`truncated 'mdat' data at offset 0x${(p.mdatPayloadStart - header).toString(16)}`);
  return new Set(forms.flatMap((f) => [`Unknown trailer with ${f}`, `T${f.slice(1)}`]));
}

/** The rule, separate from the process so it can be tested on its own. */
export function findingsIn(rec: Record<string, unknown>, needles: readonly string[]): string[] {
  const found: string[] = [];
  for (const [key, value] of Object.entries(rec)) {
    if (key === 'SourceFile') continue;
    const [group = '', name = key] = key.includes(':') ? key.split(':', 2) : ['', key];
    if (!ALLOWED_GROUPS.test(group)) {
      found.push(`${key} (group ${group || '?'} is not structural)`);
      continue;
    }
    if (group === 'System' || group === 'File' || group === 'ExifTool') {
      if (group === 'ExifTool' && name !== 'ExifToolVersion') found.push(`${key}: ${String(value).slice(0, 80)}`);
      continue;
    }
    const neutral = NEUTRAL_VALUES[name];
    const v = Array.isArray(value) ? value.join(' ') : String(value);
    if (neutral) {
      if (!neutral.test(v)) found.push(`${key}: "${v.slice(0, 60)}" is not neutral`);
      continue;
    }
    if (FORBIDDEN_NAME.test(name) && !STRUCTURAL_NAMES.has(name)) {
      found.push(`${key}: ${String(value).slice(0, 80)}`);
      continue;
    }
    if (DATE_NAME.test(name) && !ZERO_DATE.test(v)) found.push(`${key}: ${v.slice(0, 40)} (a date is left)`);
    for (const n of needles) if (n.length >= 3 && v.includes(n)) found.push(`${key}: contains "${n}"`);
  }
  return found;
}
