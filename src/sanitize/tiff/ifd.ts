/**
 * TIFF/DNG IFD reader. Promises: returns every IFD reachable from the header (the IFD0 chain and
 * SubIFDs), each entry with its type, count and the absolute offset of its value bytes, after
 * checking that every offset and length lies inside the file; or throws E_SANITIZE_PARSE /
 * E_SANITIZE_UNSUPPORTED. Loops are bounded (visited-offset set, depth and count limits), so a
 * crafted file cannot make it spin. It never follows an offset it has not range-checked.
 */
import { KluisError } from '../../errors.js';

export const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4 };

/** Tags kept: what a reader needs to decode the image (baseline TIFF) and to develop a DNG. Name as ExifTool prints it. */
export const TIFF_KEEP: ReadonlyMap<number, string> = new Map<number, string>([
  [254, 'SubfileType'], [255, 'OldSubfileType'], [256, 'ImageWidth'], [257, 'ImageHeight'], [258, 'BitsPerSample'],
  [259, 'Compression'], [262, 'PhotometricInterpretation'], [263, 'Thresholding'], [264, 'CellWidth'], [265, 'CellLength'],
  [266, 'FillOrder'], [273, 'StripOffsets'], [274, 'Orientation'], [277, 'SamplesPerPixel'], [278, 'RowsPerStrip'],
  [279, 'StripByteCounts'], [282, 'XResolution'], [283, 'YResolution'], [284, 'PlanarConfiguration'],
  [290, 'GrayResponseUnit'], [291, 'GrayResponseCurve'], [296, 'ResolutionUnit'], [301, 'TransferFunction'],
  [317, 'Predictor'], [318, 'WhitePoint'], [319, 'PrimaryChromaticities'], [320, 'ColorMap'], [322, 'TileWidth'],
  [323, 'TileLength'], [324, 'TileOffsets'], [325, 'TileByteCounts'], [330, 'SubIFDs'], [338, 'ExtraSamples'],
  [339, 'SampleFormat'], [340, 'SMinSampleValue'], [341, 'SMaxSampleValue'], [347, 'JPEGTables'],
  [529, 'YCbCrCoefficients'], [530, 'YCbCrSubSampling'], [531, 'YCbCrPositioning'], [532, 'ReferenceBlackWhite'],
  [33421, 'CFARepeatPatternDim'], [33422, 'CFAPattern2'],
  // DNG: what a raw developer needs. Identifiers (UniqueCameraModel 50708, LocalizedCameraModel 50709,
  // CameraSerialNumber 50735, DNGPrivateData 50740, RawDataUniqueID 50781, OriginalRawFileName 50827,
  // ProfileName 50936, ProfileCopyright 50942) are not on this list.
  [50706, 'DNGVersion'], [50707, 'DNGBackwardVersion'], [50710, 'CFAPlaneColor'], [50711, 'CFALayout'],
  [50712, 'LinearizationTable'], [50713, 'BlackLevelRepeatDim'], [50714, 'BlackLevel'], [50715, 'BlackLevelDeltaH'],
  [50716, 'BlackLevelDeltaV'], [50717, 'WhiteLevel'], [50718, 'DefaultScale'], [50719, 'DefaultCropOrigin'],
  [50720, 'DefaultCropSize'], [50721, 'ColorMatrix1'], [50722, 'ColorMatrix2'], [50723, 'CameraCalibration1'],
  [50724, 'CameraCalibration2'], [50725, 'ReductionMatrix1'], [50726, 'ReductionMatrix2'], [50727, 'AnalogBalance'],
  [50728, 'AsShotNeutral'], [50729, 'AsShotWhiteXY'], [50730, 'BaselineExposure'], [50731, 'BaselineNoise'],
  [50732, 'BaselineSharpness'], [50733, 'BayerGreenSplit'], [50734, 'LinearResponseLimit'], [50737, 'ChromaBlurRadius'],
  [50738, 'AntiAliasStrength'], [50739, 'ShadowScale'], [50778, 'CalibrationIlluminant1'], [50779, 'CalibrationIlluminant2'],
  [50780, 'BestQualityScale'], [50829, 'ActiveArea'], [50830, 'MaskedAreas'], [50937, 'ProfileHueSatMapDims'],
  [50938, 'ProfileHueSatMapData1'], [50939, 'ProfileHueSatMapData2'], [50940, 'ProfileToneCurve'],
  [50964, 'ForwardMatrix1'], [50965, 'ForwardMatrix2'], [50981, 'ProfileLookTableDims'], [50982, 'ProfileLookTableData'],
  [51008, 'OpcodeList1'], [51009, 'OpcodeList2'], [51022, 'OpcodeList3'], [51041, 'NoiseProfile'],
  [51110, 'DefaultBlackRender'], [51125, 'DefaultUserCrop'],
]);
export const TIFF_KEEP_TAGS: ReadonlySet<number> = new Set(TIFF_KEEP.keys());

export interface IfdEntry {
  tag: number;
  type: number;
  count: number;
  /** Absolute offset of the value bytes (inline values: inside the entry). */
  valueOffset: number;
  /** count × type size. */
  size: number;
}

export interface Ifd {
  /** "IFD0", "IFD1", "IFD0/SubIFD0" … */
  path: string;
  offset: number;
  entries: IfdEntry[];
  children: Ifd[];
}

export interface TiffFile {
  le: boolean;
  /** The IFD0 chain in order; SubIFDs hang under `children`. */
  chain: Ifd[];
  /** Every IFD, flattened (chain and SubIFDs). */
  ifds: Ifd[];
}

const MAX_IFDS = 64;
const MAX_ENTRIES = 4096;
const MAX_DEPTH = 4;

function perr(message: string, offset?: number): KluisError {
  return new KluisError('E_SANITIZE_PARSE', `TIFF: ${message}${offset === undefined ? '' : ` (at byte ${offset})`}`, {
    hint: 'the file is not a TIFF that kluis can fully account for; it is withheld (fail closed)',
  });
}

export class TiffReader {
  constructor(readonly buf: Uint8Array, readonly le: boolean) {}
  u16(o: number): number {
    if (o + 2 > this.buf.length) throw perr('read past end', o);
    return this.le ? this.buf[o]! | (this.buf[o + 1]! << 8) : (this.buf[o]! << 8) | this.buf[o + 1]!;
  }
  u32(o: number): number {
    if (o + 4 > this.buf.length) throw perr('read past end', o);
    const b = this.buf;
    return this.le
      ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
      : ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  /** Unsigned integer values of a SHORT/LONG/IFD entry. */
  uints(e: IfdEntry): number[] {
    if (e.type !== 3 && e.type !== 4 && e.type !== 13) throw perr(`tag ${e.tag} has type ${e.type}, expected SHORT or LONG`);
    const out: number[] = [];
    for (let i = 0; i < e.count; i++) out.push(e.type === 3 ? this.u16(e.valueOffset + i * 2) : this.u32(e.valueOffset + i * 4));
    return out;
  }
}

export function tiffByteOrder(buf: Uint8Array): boolean | undefined {
  if (buf.length < 8) return undefined;
  if (buf[0] === 0x49 && buf[1] === 0x49 && buf[2] === 42 && buf[3] === 0) return true;
  if (buf[0] === 0x4d && buf[1] === 0x4d && buf[2] === 0 && buf[3] === 42) return false;
  return undefined;
}

export function readTiff(buf: Uint8Array): TiffFile {
  const le = tiffByteOrder(buf);
  if (le === undefined) {
    if (buf.length >= 4 && ((buf[0] === 0x49 && buf[2] === 43) || (buf[0] === 0x4d && buf[3] === 43))) {
      throw new KluisError('E_SANITIZE_UNSUPPORTED', 'BigTIFF is not supported', { hint: 'the file is withheld' });
    }
    throw perr('no TIFF header', 0);
  }
  const r = new TiffReader(buf, le);
  const visited = new Set<number>();
  const all: Ifd[] = [];

  const readIfd = (offset: number, path: string, depth: number): Ifd => {
    if (depth > MAX_DEPTH) throw perr('SubIFDs nested too deep', offset);
    if (all.length >= MAX_IFDS) throw perr('too many IFDs', offset);
    if (offset < 8 || offset + 2 > buf.length) throw perr(`IFD offset ${offset} outside the file`, offset);
    if (visited.has(offset)) throw perr('IFD loop', offset);
    visited.add(offset);
    const n = r.u16(offset);
    if (n === 0 || n > MAX_ENTRIES) throw perr(`IFD with ${n} entries`, offset);
    if (offset + 2 + n * 12 + 4 > buf.length) throw perr('IFD runs past the end of the file', offset);
    const entries: IfdEntry[] = [];
    let prevTag = -1;
    for (let i = 0; i < n; i++) {
      const e = offset + 2 + i * 12;
      const tag = r.u16(e);
      const type = r.u16(e + 2);
      const count = r.u32(e + 4);
      const ts = TYPE_SIZE[type];
      if (ts === undefined) throw perr(`tag ${tag} has unknown type ${type}`, e);
      if (tag <= prevTag) throw perr(`tags out of order (${tag} after ${prevTag})`, e);
      prevTag = tag;
      const size = ts * count;
      if (size > buf.length) throw perr(`tag ${tag} value larger than the file`, e);
      const valueOffset = size <= 4 ? e + 8 : r.u32(e + 8);
      if (valueOffset + size > buf.length) throw perr(`tag ${tag} value outside the file`, e);
      entries.push({ tag, type, count, valueOffset, size });
    }
    const ifd: Ifd = { path, offset, entries, children: [] };
    all.push(ifd);
    const sub = entries.find((x) => x.tag === 330);
    if (sub) r.uints(sub).forEach((o, i) => ifd.children.push(readIfd(o, `${path}/SubIFD${i}`, depth + 1)));
    return ifd;
  };

  const chain: Ifd[] = [];
  let next = r.u32(4);
  while (next !== 0) {
    const ifd = readIfd(next, `IFD${chain.length}`, 0);
    chain.push(ifd);
    next = r.u32(ifd.offset + 2 + ifd.entries.length * 12);
  }
  if (chain.length === 0) throw perr('no IFD0', 4);
  return { le, chain, ifds: all };
}

export function entry(ifd: Ifd, tag: number): IfdEntry | undefined {
  return ifd.entries.find((e) => e.tag === tag);
}
