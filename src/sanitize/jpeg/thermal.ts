/**
 * Thermal (radiometric) APP3/APP4/APP5 segments of DJI R-JPEGs. Promises: names the DJI thermal
 * parameter layouts it knows (a file without one keeps no thermal segment), decides per segment
 * whether it is thermal data (binary, kept under policy thermal=keep) or a typed vendor segment
 * (starts with an ASCII identifier such as "Meta\0", "SCALADO\0", "RMETA\0": removed), and blanks
 * the identifiers DJI writes into the device header of the ThermalParams APP4 (sensor serial,
 * firmware version, build hash) and the thermal core's IDString of the "iirp"/ThermalParams2
 * parameter blocks. Never changes the temperature data or the calibration values.
 */

/** "aa 55 12 06": DJI ThermalParams (APP4) temperature-header magic. */
const PARAMS_MAGIC = [0xaa, 0x55, 0x12, 0x06];
/** "55 aa 12 06" at 0x500: the device header that follows it. */
const DEVICE_MAGIC = [0x55, 0xaa, 0x12, 0x06];
export const DEVICE_HEADER_OFFSET = 0x500;
/** "ff d2 d1 ff iirp": DJI thermal parameters of the M30T, M3T, M4T, H20N and H30T (256 or 1280 bytes). */
const IIRP_MAGIC = [0xff, 0xd2, 0xd1, 0xff, 0x69, 0x69, 0x72, 0x70];
/** "ff d2 d1 ff hirp": DJI thermal parameters of the Matrice 3TD (floats only). */
const HIRP_MAGIC = [0xff, 0xd2, 0xd1, 0xff, 0x68, 0x69, 0x72, 0x70];
/** ExifTool's ThermalParams3 (some M30T files): "aa 55 38 00" at 0x20. */
const PARAMS3_SIGNATURE = [0xaa, 0x55, 0x38, 0x00];
/** ExifTool's ThermalParams2 signature at 0x20 of a block without the iirp prefix (M2EA). */
const PARAMS2_SIGNATURE = [0x2c, 0x01, 0x20, 0x00];
/** The 16-byte IDString (ExifTool's name) of those blocks: "Mini_640" on the M2EA/M30T/M3T, "G1280S_24D010SWR" on the H30T. */
const ID_STRING_LENGTH = 16;

/** True when a segment payload starts like a typed APPn segment: 3+ printable ASCII bytes, then NUL, within the first 32 bytes. */
export function hasAsciiIdentifier(p: Uint8Array): boolean {
  let i = 0;
  while (i < p.length && i < 32 && p[i]! >= 0x20 && p[i]! <= 0x7e) i++;
  return i >= 3 && i < p.length && p[i] === 0x00;
}

function at(p: Uint8Array, o: number, magic: number[]): boolean {
  return o + magic.length <= p.length && magic.every((b, i) => p[o + i] === b);
}

export interface Blanked {
  /** Which field: "device header" (ThermalParams) or "IDString" (iirp/ThermalParams2). */
  field: string;
  offset: number;
  text: string;
}

export type ScrubResult =
  | { kind: 'unchanged' }
  | { kind: 'scrubbed'; payload: Uint8Array; blanked: Blanked[] }
  | { kind: 'refuse'; reason: string };

/**
 * The name of the DJI thermal parameter layout an APP4 payload has, or undefined. Untyped
 * APP3/APP4/APP5 are kept as radiometric data only in a file that has one of these blocks:
 * another maker's thermal segments are structures kluis does not know, and are removed.
 */
export function knownThermalParams(p: Uint8Array): string | undefined {
  if (at(p, 0, PARAMS_MAGIC)) return 'ThermalParams';
  if (at(p, 0, IIRP_MAGIC)) return 'iirp';
  if (at(p, 0, HIRP_MAGIC)) return 'hirp';
  if (at(p, 0x20, PARAMS2_SIGNATURE)) return 'ThermalParams2';
  if (at(p, 0x20, PARAMS3_SIGNATURE)) return 'ThermalParams3';
  return undefined;
}

/** Offset of the IDString in a DJI iirp/ThermalParams2 APP4, or undefined for other layouts. */
function idStringOffset(p: Uint8Array): number | undefined {
  if (at(p, 0, IIRP_MAGIC)) return 0x85;
  if (at(p, 0x20, PARAMS2_SIGNATURE)) return 0x65;
  return undefined;
}

/**
 * The iirp/ThermalParams2 IDString (16 bytes, NUL-padded ASCII): every printable byte of it is
 * overwritten with NUL. ExifTool names the field an ID; on the H30T it carries more than a
 * model name, so it is treated as an identifier, like the ThermalParams device header.
 */
function scrubIdString(p: Uint8Array, o: number): ScrubResult {
  if (o + ID_STRING_LENGTH > p.length) return { kind: 'refuse', reason: `DJI thermal APP4 (${p.length} bytes) is too short for its IDString at 0x${o.toString(16)}` };
  const field = p.subarray(o, o + ID_STRING_LENGTH);
  const text = Buffer.from(field).toString('latin1').replace(/[^\x20-\x7e]+/g, '');
  if (text.length === 0) return { kind: 'unchanged' };
  const out = Uint8Array.from(p);
  for (let i = o; i < o + ID_STRING_LENGTH; i++) if (out[i]! >= 0x20 && out[i]! <= 0x7e) out[i] = 0;
  return { kind: 'scrubbed', payload: out, blanked: [{ field: 'IDString', offset: o, text }] };
}

/**
 * DJI ThermalParams APP4: 0x000-0x4FF temperature parameters (kept as they are), 0x500.. a device
 * header carrying the thermal core's serial, firmware and build id as NUL-terminated ASCII.
 * Printable runs of 6 or more bytes in the device header are overwritten with NULs; everything
 * else (magic numbers, binary fields, short markers like "ZZZZ") stays.
 */
export function scrubThermalApp4(p: Uint8Array): ScrubResult {
  const id = idStringOffset(p);
  if (id !== undefined) return scrubIdString(p, id);
  if (!at(p, 0, PARAMS_MAGIC)) return { kind: 'unchanged' };
  if (p.length <= DEVICE_HEADER_OFFSET) return { kind: 'unchanged' };
  if (!at(p, DEVICE_HEADER_OFFSET, DEVICE_MAGIC)) {
    return { kind: 'refuse', reason: 'DJI ThermalParams APP4 has data after 0x500 without the known device-header magic' };
  }
  const out = Uint8Array.from(p);
  const blanked: Blanked[] = [];
  let i = DEVICE_HEADER_OFFSET + DEVICE_MAGIC.length;
  while (i < out.length) {
    if (out[i]! >= 0x20 && out[i]! <= 0x7e) {
      let j = i;
      while (j < out.length && out[j]! >= 0x20 && out[j]! <= 0x7e) j++;
      if (j - i >= 6) {
        blanked.push({ field: 'device header', offset: i, text: Buffer.from(out.subarray(i, j)).toString('latin1') });
        out.fill(0, i, j);
      }
      i = j;
    } else i++;
  }
  return blanked.length ? { kind: 'scrubbed', payload: out, blanked } : { kind: 'unchanged' };
}

/**
 * Serial-like text in a kept APP4/APP5 thermal segment: a run of 8+ letters and digits bordered by
 * binary (non-printable) bytes,
 * with at least two of each, at most 32 long and with 6+ distinct characters (the shape of DJI/FLIR
 * serials; calibration tables form long periodic runs instead). Used by the residue check; APP3
 * (raw 16-bit temperatures) is not searched this way because pixel values form such runs by chance.
 */
export function serialLikeStrings(p: Uint8Array): Array<{ offset: number; text: string }> {
  const found: Array<{ offset: number; text: string }> = [];
  const isAlnum = (b: number): boolean => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
  let i = 0;
  while (i < p.length) {
    if (!isAlnum(p[i]!)) {
      i++;
      continue;
    }
    let j = i;
    while (j < p.length && isAlnum(p[j]!)) j++;
    const before = i === 0 ? 0 : p[i - 1]!;
    const after = j >= p.length ? 0 : p[j]!;
    const printable = (b: number): boolean => b >= 0x20 && b <= 0x7e;
    if (j - i >= 8 && !printable(before) && !printable(after)) {
      const text = Buffer.from(p.subarray(i, j)).toString('latin1');
      const digits = text.replace(/[^0-9]/g, '').length;
      const letters = text.length - digits;
      // Calibration tables form long periodic runs ("3o2o2o…"); serials have many distinct characters.
      if (digits >= 2 && letters >= 2 && j - i <= 32 && new Set(text).size >= 6) found.push({ offset: i, text });
    }
    i = j;
  }
  return found;
}

/**
 * Runs of printable text in binary data: 12+ printable bytes whose even and odd positions each
 * hold 5+ distinct characters spread over 16+ code points. Raw 16-bit thermal values and
 * calibration tables make printable runs too, but one of the two byte lanes stays in a narrow
 * band there (the high byte of values in a narrow range: "GpGmGOGY…", "G<HJI}J;K"); written
 * text varies widely in both lanes.
 */
export function textLikeRuns(p: Uint8Array): Array<{ offset: number; text: string }> {
  const found: Array<{ offset: number; text: string }> = [];
  let i = 0;
  while (i < p.length) {
    if (p[i]! < 0x20 || p[i]! > 0x7e) {
      i++;
      continue;
    }
    let j = i;
    while (j < p.length && p[j]! >= 0x20 && p[j]! <= 0x7e) j++;
    if (j - i >= 12) {
      const even = new Set<number>();
      const odd = new Set<number>();
      for (let k = i; k < j; k++) (k % 2 ? odd : even).add(p[k]!);
      const spread = (x: Set<number>): number => Math.max(...x) - Math.min(...x);
      if (even.size >= 5 && odd.size >= 5 && spread(even) >= 16 && spread(odd) >= 16) found.push({ offset: i, text: Buffer.from(p.subarray(i, Math.min(j, i + 64))).toString('latin1') });
    }
    i = j;
  }
  return found;
}
