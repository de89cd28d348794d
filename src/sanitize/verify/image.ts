/**
 * Independent re-read of a sanitized still image. Promises: three readers that share no code with
 * the sanitizer's decisions look at the output — the segment/IFD walker (structure is only what
 * the allow-list permits), exifr (parses every metadata kind it knows), ExifTool (the most complete
 * reader) — plus a raw byte search for every identifier value read from the original. Returns
 * what each found; an empty `found` everywhere is the only "clean". Never trusts silence: a reader
 * that fails throws.
 */
import exifr from 'exifr';
import { KluisError } from '../../errors.js';
import type { IndependentCheck, SanitizePolicy } from '../types.js';
import { isExifPayload, minimalOrientationApp1 } from '../jpeg/exif-orientation.js';
import { isIccChunk } from '../jpeg/icc.js';
import { hasAsciiIdentifier, knownThermalParams, serialLikeStrings, textLikeRuns } from '../jpeg/thermal.js';
import { M, SOF_MARKERS, markerName, payload, startsWithAscii, walkJpeg } from '../jpeg/walker.js';
import { readTiff, TIFF_KEEP, TIFF_KEEP_TAGS } from '../tiff/ifd.js';
import { exiftoolRead } from './tools.js';

const DECODE = new Set<number>([M.DQT, M.DHT, M.DAC, M.DRI, M.DNL, M.SOS, ...SOF_MARKERS]);

/** Own walker on a sanitized JPEG: only allow-listed structures, nothing after EOI. */
export function walkCheckJpeg(bytes: Uint8Array, policy: SanitizePolicy): IndependentCheck {
  const found: string[] = [];
  let layout;
  try {
    layout = walkJpeg(bytes);
  } catch (err) {
    return { tool: 'segment-walker', found: [`output does not parse: ${(err as Error).message}`] };
  }
  if (layout.trailing) found.push(`${layout.trailing} bytes after EOI`);
  const knownThermal = layout.segments.some((s) => s.marker === M.APP4 && knownThermalParams(payload(bytes, s)) !== undefined);
  for (const s of layout.segments) {
    const p = payload(bytes, s);
    const m = s.marker;
    const where = `${markerName(m)} at ${s.offset}`;
    if (DECODE.has(m)) continue;
    if (m === M.APP0 && startsWithAscii(p, 'JFIF\0') && p.length === 14 && p[12] === 0 && p[13] === 0) continue;
    if (m === M.APP1 && isExifPayload(p)) {
      const o = p.length === 32 ? p[6 + 19] : undefined;
      const seg = bytes.subarray(s.offset, s.end);
      if (o !== undefined && o >= 1 && o <= 8 && Buffer.compare(Buffer.from(seg), Buffer.from(minimalOrientationApp1(o))) === 0) continue;
      found.push(`${where}: EXIF other than the minimal Orientation-only form`);
      continue;
    }
    if (m === M.APP2 && isIccChunk(p)) continue;
    if (m === M.APP14 && startsWithAscii(p, 'Adobe') && p.length === 12) continue;
    if ((m === M.APP3 || m === M.APP4 || m === M.APP5) && policy.thermal === 'keep' && !hasAsciiIdentifier(p) && knownThermal) {
      if (m !== M.APP3) for (const x of serialLikeStrings(p)) found.push(`${where}+${x.offset}: serial-like text "${x.text}" in thermal segment`);
      for (const x of textLikeRuns(p)) found.push(`${where}+${x.offset}: text "${x.text}" in thermal segment`);
      continue;
    }
    found.push(`${where}: segment not on the allow-list`);
  }
  return { tool: 'segment-walker', found };
}

/** Own IFD walker on a sanitized TIFF: one chain of IFDs holding only allow-listed tags. */
export function walkCheckTiff(bytes: Uint8Array): IndependentCheck {
  const found: string[] = [];
  try {
    const t = readTiff(bytes);
    for (const ifd of t.ifds) {
      for (const e of ifd.entries) if (!TIFF_KEEP_TAGS.has(e.tag)) found.push(`${ifd.path}: tag ${e.tag} not on the allow-list`);
    }
  } catch (err) {
    found.push(`output does not parse: ${(err as Error).message}`);
  }
  return { tool: 'ifd-walker', found };
}

/** Raw byte search for identifier values (serials read from the original, listed serials). */
export function rawSearch(bytes: Uint8Array, needles: string[]): IndependentCheck {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: string[] = [];
  for (const n of new Set(needles)) {
    if (n.length < 4) continue;
    for (const enc of ['latin1', 'utf16le'] as const) {
      const at = buf.indexOf(Buffer.from(n, enc));
      if (at >= 0) found.push(`identifier "${n}" (${enc}) at byte ${at}`);
    }
  }
  return { tool: 'byte-search', found };
}

const EXIFR_OPTIONS = {
  tiff: true, ifd0: true, exif: true, gps: true, interop: true, ifd1: true, makerNote: true, userComment: true,
  xmp: true, icc: true, iptc: true, jfif: true, ihdr: true, multiSegment: true, mergeOutput: false,
  sanitize: false, reviveValues: false, translateKeys: true, translateValues: false, silentErrors: false,
} as const;

/** Keys exifr may report on a clean output, per block. Everything else is residue. */
const EXIFR_ALLOWED: Record<string, (key: string) => boolean> = {
  ifd0: (k) => k === 'Orientation' || TIFF_ALLOWED_NAMES.has(k),
  jfif: () => true,
  icc: (k) => !/serial|gps/i.test(k),
};
const TIFF_ALLOWED_NAMES = new Set([
  'ImageWidth', 'ImageHeight', 'BitsPerSample', 'Compression', 'PhotometricInterpretation', 'StripOffsets', 'SamplesPerPixel',
  'RowsPerStrip', 'StripByteCounts', 'XResolution', 'YResolution', 'PlanarConfiguration', 'ResolutionUnit', 'SampleFormat',
  'Orientation', 'Predictor', 'ExtraSamples', 'ColorMap', 'TileWidth', 'TileLength', 'TileOffsets', 'TileByteCounts',
  'YCbCrCoefficients', 'YCbCrSubSampling', 'YCbCrPositioning', 'ReferenceBlackWhite', 'FillOrder', 'NewSubfileType',
  'SubfileType', 'Threshholding', 'CellWidth', 'CellLength', 'GrayResponseUnit', 'GrayResponseCurve', 'TransferFunction',
  'WhitePoint', 'PrimaryChromaticities', 'SubIFDs', 'DNGVersion', 'DNGBackwardVersion',
  // Every kept decoding tag under the name exifr gives it (the same as TIFF_KEEP's for the DNG tags).
  ...TIFF_KEEP.values(),
]);

/** exifr on the sanitized file, given as its path or (no file needed) its bytes. */
export async function exifrCheck(file: string | Buffer): Promise<IndependentCheck> {
  const found: string[] = [];
  let out: unknown;
  try {
    out = await exifr.parse(file, EXIFR_OPTIONS as unknown as Parameters<typeof exifr.parse>[1]);
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    // exifr refuses files with no metadata segment it knows; that is what a clean file looks like.
    if (/Unknown file format|No metadata|not a valid/i.test(msg)) return { tool: 'exifr', found };
    throw new KluisError('E_SANITIZE_TOOL', `exifr could not read the sanitized file: ${msg}`, { cause: err });
  }
  if (out && typeof out === 'object') {
    for (const [block, val] of Object.entries(out as Record<string, unknown>)) {
      if (val === undefined || val === null) continue;
      if (typeof val !== 'object') {
        found.push(`${block}: ${String(val).slice(0, 60)}`);
        continue;
      }
      const allow = EXIFR_ALLOWED[block];
      for (const k of Object.keys(val as object)) {
        if (!allow || !allow(k)) found.push(`${block}.${k}`);
      }
    }
  }
  return { tool: 'exifr', found };
}

/** ExifTool groups a clean output may show. IFD0 (TIFF) tags are checked by name. */
const EXIFTOOL_GROUPS = new Set(['SourceFile', 'ExifTool', 'System', 'File', 'JFIF', 'Composite', 'Adobe', 'APP14', 'DJI']);
/** CFAPattern is ExifTool's reading of the kept CFARepeatPatternDim + CFAPattern2 (DNG). */
const COMPOSITE_ALLOWED = new Set(['ImageSize', 'Megapixels', 'CFAPattern']);
const DJI_THERMAL = new Set([
  'K1', 'K2', 'K3', 'K4', 'KF', 'B1', 'B2', 'ObjectDistance', 'RelativeHumidity', 'Emissivity', 'Reflection',
  'AmbientTemperature', 'D2', 'KJ', 'DB', 'KK', 'ThermalData', 'ThermalCalibration',
]);
const EXIFTOOL_IFD0_JPEG = new Set(['Orientation']);
const EXIFTOOL_TIFF_TAGS = new Set([
  'ImageWidth', 'ImageHeight', 'BitsPerSample', 'Compression', 'PhotometricInterpretation', 'StripOffsets', 'SamplesPerPixel',
  'RowsPerStrip', 'StripByteCounts', 'XResolution', 'YResolution', 'PlanarConfiguration', 'ResolutionUnit', 'SampleFormat',
  'Orientation', 'Predictor', 'ExtraSamples', 'ColorMap', 'TileWidth', 'TileLength', 'TileOffsets', 'TileByteCounts',
  'YCbCrCoefficients', 'YCbCrSubSampling', 'YCbCrPositioning', 'ReferenceBlackWhite', 'FillOrder', 'SubfileType',
  'OldSubfileType', 'Thresholding', 'CellWidth', 'CellLength', 'GrayResponseUnit', 'GrayResponseCurve', 'TransferFunction',
  'WhitePoint', 'PrimaryChromaticities', 'SubIFDs',
]);

export async function exiftoolCheck(file: string, kind: 'jpeg' | 'tiff'): Promise<IndependentCheck> {
  const tags = await exiftoolRead(file);
  const found: string[] = [];
  for (const [key, value] of Object.entries(tags)) {
    const [group, name] = key.includes(':') ? [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)] : [key, key];
    if (group === 'File' && name === 'Comment') {
      found.push(`${key} = ${String(value).slice(0, 60)}`);
      continue;
    }
    if (group === 'Composite' && !COMPOSITE_ALLOWED.has(name)) {
      found.push(key);
      continue;
    }
    if (group === 'DJI' && !DJI_THERMAL.has(name)) {
      found.push(key);
      continue;
    }
    if (/^ICC(_Profile|-)/.test(group)) {
      if (/serial|gps/i.test(name)) found.push(key);
      continue;
    }
    if (group === 'IFD0' || /^SubIFD\d*$/.test(group) || /^IFD\d+$/.test(group)) {
      const ok = kind === 'jpeg' ? group === 'IFD0' && EXIFTOOL_IFD0_JPEG.has(name) : EXIFTOOL_TIFF_TAGS.has(name) || /^DNG|^CFA|Black|White|ColorMatrix|Calibration|Neutral|Crop|ActiveArea|Linearization|BaselineExposure|BaselineNoise|BaselineSharpness|LinearResponse|AnalogBalance|ForwardMatrix|ReductionMatrix|Illuminant|BayerGreenSplit|ChromaBlurRadius|AntiAliasStrength|ShadowScale|BestQualityScale|DefaultScale|DefaultUserCrop|ProfileHueSat|ProfileLookTable|ProfileToneCurve|OpcodeList|NoiseProfile|NoiseReductionApplied|RawDataUniqueID/.test(name);
      if (!ok || /serial|uniqueid/i.test(name)) found.push(key);
      continue;
    }
    if (!EXIFTOOL_GROUPS.has(group)) found.push(key);
  }
  return { tool: 'exiftool', found };
}
