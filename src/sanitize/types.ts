/**
 * What the sanitize stage promises its callers. `sanitizeFile(input, output, policy)` either
 * returns a SanitizeResult whose proof holds (essence before = after, independent re-read found
 * nothing of the removed classes), or throws a KluisError with code E_SANITIZE_* and writes no
 * output. It never re-encodes picture or sound and never passes a file it could not fully check.
 */
export type MediaFormat = 'jpeg' | 'tiff' | 'dng' | 'mp4' | 'mov';

export interface RemovedItem {
  /** Where it was: e.g. "APP1/Exif/GPS", "moov/udta/©xyz", "track 3 (djmd)", "after EOI". */
  where: string;
  /** Class of what was removed: gps, serial, make-model, firmware, attitude, vendor-xmp, thumbnail, timed-metadata, comment, other. */
  what: string;
  bytes: number;
}

export interface EssenceProof {
  /** How the essence was hashed, e.g. "ffmpeg-streamhash-sha256", "decoded-pixels-sha256", "jpeg-scan-sha256". */
  method: string;
  before: string;
  after: string;
}

export interface IndependentCheck {
  /** exifr, exiftool, box-walker, segment-walker, ffprobe, ifd-walker */
  tool: string;
  /** Empty when clean. Each entry names what was found and where. */
  found: string[];
}

export interface SanitizeResult {
  format: MediaFormat;
  /** SHA-256 and size of the sanitized output file. */
  sha256: string;
  size: number;
  essence: EssenceProof[];
  removed: RemovedItem[];
  /** Structures deliberately kept that a reader might ask about (e.g. thermal APP3/4/5). */
  kept: string[];
  checks: IndependentCheck[];
}

export interface SanitizePolicy {
  thermal: 'keep' | 'remove';
}
