/**
 * Reads the one EXIF value kluis carries over (Orientation, IFD0 tag 0x0112) and writes a fresh,
 * minimal EXIF APP1 that holds only that value. Promises: the EXIF it writes is built from scratch
 * (26 bytes of TIFF), never copied, so nothing else of the original EXIF can come along.
 * Never throws on a malformed EXIF: it answers `undefined` (orientation unknown) instead.
 */

const EXIF_HEADER = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00]; // "Exif\0\0"

export function isExifPayload(p: Uint8Array): boolean {
  return p.length >= 6 && EXIF_HEADER.every((b, i) => p[i] === b);
}

/** Orientation 1..8 from an APP1 Exif payload, or undefined when absent or unreadable. */
export function readOrientation(p: Uint8Array): number | undefined {
  if (!isExifPayload(p)) return undefined;
  const t = p.subarray(6);
  if (t.length < 8) return undefined;
  const le = t[0] === 0x49 && t[1] === 0x49;
  const be = t[0] === 0x4d && t[1] === 0x4d;
  if (!le && !be) return undefined;
  const u16 = (o: number): number => (le ? t[o]! | (t[o + 1]! << 8) : (t[o]! << 8) | t[o + 1]!);
  const u32 = (o: number): number =>
    le
      ? (t[o]! | (t[o + 1]! << 8) | (t[o + 2]! << 16) | (t[o + 3]! << 24)) >>> 0
      : ((t[o]! << 24) | (t[o + 1]! << 16) | (t[o + 2]! << 8) | t[o + 3]!) >>> 0;
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd < 8 || ifd + 2 > t.length) return undefined;
  const n = u16(ifd);
  if (ifd + 2 + n * 12 > t.length) return undefined;
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (u16(e) !== 0x0112) continue;
    if (u16(e + 2) !== 3 || u32(e + 4) !== 1) return undefined;
    const v = u16(e + 8);
    return v >= 1 && v <= 8 ? v : undefined;
  }
  return undefined;
}

/** A complete APP1 segment (FF E1, length, "Exif\0\0", big-endian TIFF with IFD0 = {Orientation}). */
export function minimalOrientationApp1(orientation: number): Uint8Array {
  if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8) throw new RangeError('orientation must be 1..8');
  const tiff = [
    0x4d, 0x4d, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08, // MM, 42, IFD0 at 8
    0x00, 0x01, // one entry
    0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, orientation, 0x00, 0x00, // Orientation SHORT 1
    0x00, 0x00, 0x00, 0x00, // no next IFD (no IFD1, no thumbnail)
  ];
  const body = [...EXIF_HEADER, ...tiff];
  const segLen = body.length + 2;
  return Uint8Array.from([0xff, 0xe1, segLen >> 8, segLen & 0xff, ...body]);
}
