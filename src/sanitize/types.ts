/**
 * What the sanitize stage promises its callers. `sanitizeStream(src, sink, policy, opts)` and
 * `sanitizeFile(input, output, policy)` either return a SanitizeResult whose proof holds (essence
 * before = after, independent re-read found nothing of the removed classes), or throw a
 * KluisError with code E_SANITIZE_* (sanitizeFile then leaves no output; a sanitizeStream caller
 * discards what reached its sink). It never re-encodes picture or sound and never passes a file it
 * could not fully check.
 */
export type MediaFormat = 'jpeg' | 'tiff' | 'dng' | 'mp4' | 'mov';

export interface RemovedItem {
  /** Where it was: e.g. "APP1/Exif/GPS", "moov/udta/©xyz", "track 3 (djmd)", "after EOI". */
  where: string;
  /** Class of what was removed: gps, serial, make-model, firmware, attitude, vendor-xmp, thumbnail, timed-metadata, comment, other. */
  what: string;
  bytes: number;
}

/**
 * How an essence hash is taken, as data: the method id and its parameters (src/sanitize/essence.ts
 * lists every id and what it covers). Manifests written before this form carry one string instead,
 * "ID[:PARAM][ text]"; `essenceMethodOf` reads both.
 */
export type EssenceMethod =
  | { method: 'jpeg-decoder-segments-sha256' }
  | { method: 'tiff-image-data-and-decoding-tags-sha256' }
  /** `track`: the track's track_ID (tkhd), the same in the card file and the sanitized file. */
  | { method: 'mp4-samples-sha256'; track: number }
  /** `stream`: the stream's index in the sanitized file (the ffmpeg fallback). */
  | { method: 'ffmpeg-framehash-sha256'; stream: number };

/** The hashed track or stream of a video, for people (the report, verify's check names); never read to recompute. */
export interface EssenceAbout {
  kind: string;
  codec: string;
  /** Samples (mp4-samples-sha256) or packets (ffmpeg-framehash-sha256) hashed, and their bytes. */
  samples?: number;
  packets?: number;
  bytes: number;
  /** ffmpeg-framehash-sha256: the stream's index in the card file. */
  cardStream?: number;
}

/** One essence proof: how it was taken, and the hash before (card file) and after (sanitized file). */
export type EssenceProof = EssenceMethod & {
  before: string;
  after: string;
  about?: EssenceAbout;
};

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

/** Positional reads of the plaintext input (the spool working copy). */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `position`, or a rejection (never fewer bytes). */
  read(position: number, length: number): Promise<Buffer>;
  /**
   * Optional: the same read into the caller's `target` (exactly target.length bytes), so a
   * sanitizer streaming gigabytes can reuse a few buffers instead of allocating one per read
   * (a fresh buffer per MiB costs more in page faults than the copy itself).
   */
  readInto?(position: number, target: Buffer): Promise<void>;
  /**
   * Optional: a file holding exactly these bytes, unchanged while the sanitizer runs, for a reader
   * that needs a file (ExifTool); without it the sanitizer writes a scratch copy for that reader.
   */
  readonly path?: string;
}

/**
 * Receives the sanitized output bytes in order. The pipeline seals them as they arrive. The sink
 * is done with `chunk` when the promise resolves: the sanitizer may then reuse its memory.
 */
export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
}

export interface StreamSanitizeOptions {
  /** From sniff() on the first bytes. */
  format: MediaFormat;
  /**
   * A 0700 folder on the spool disk for short-lived files (e.g. what ExifTool must read); the
   * sanitizer deletes what it makes there.
   */
  scratchDir: string;
  /** Ask for a small JPEG preview (the one reduced-scale decode that proves the output decodes). */
  thumbnail?: { maxEdge: number };
}

export interface StreamSanitizeResult extends SanitizeResult {
  /** The preview asked for (JPEG bytes), when the format has a picture to show. */
  thumbnail?: Buffer;
}
