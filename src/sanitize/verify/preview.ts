/**
 * The one decode of a sanitized still image at ingest: a reduced-scale decode of the OUTPUT with
 * sharp (libvips). For JPEG, libvips lets libjpeg scale the inverse DCT down by up to 8
 * ("shrink-on-load"), but every bit of the entropy-coded data is still Huffman-decoded, so a scan
 * that does not decode fails here. It answers the one question the coded-bytes proof does not:
 * does the output decode at all? Its by-product is the preview: a small JPEG (longest side
 * `maxEdge`, EXIF orientation applied, no metadata).
 *
 * Promises: `failOn: 'warning'`, so any decoder warning (corrupt data, premature end) counts as
 * "does not decode". When the output does not decode it looks at the input the same way: if the
 * input's picture decodes, the sanitizer broke the picture (E_SANITIZE_DECODE, withheld). For a
 * JPEG that is the input up to its first EOI, the picture the output holds: libvips stops warning
 * about a corrupt scan when other data follows the EOI (found by scripts/fuzz.mjs), which made a
 * card file with a damaged scan and a second image behind it look decodable and the sanitizer
 * look guilty. If neither does,
 * sharp cannot read this kind of picture (raw CFA DNG, say) and the `fallback` decoder (ffmpeg,
 * full decode, a child process on this rare path only) gets the output: if it decodes, the result
 * says so in a note; if not, a JPEG fails closed, and a TIFF/DNG fails closed when ffmpeg decodes
 * its card file, else passes with a note (its coded-bytes proof stands alone, as before for files
 * ffmpeg could not decode). It never writes a file.
 */
import sharp from 'sharp';
import { KluisError } from '../../errors.js';
import { walkJpeg } from '../jpeg/walker.js';

// Every decode is of a different picture: libvips's operation cache would only hold memory.
sharp.cache(false);

export interface PreviewOutcome {
  /** The preview (JPEG bytes), when sharp decoded the output. */
  thumbnail?: Buffer;
  /** Said when the output was not decoded by sharp (why, and what checked it instead). */
  note?: string;
}

/** The largest picture the preview decodes (pixels), as the evidence report allowed. */
const MAX_PIXELS = 1e9;

export function renderPreview(bytes: Uint8Array, maxEdge: number): Promise<Buffer> {
  return sharp(bytes, { failOn: 'warning', limitInputPixels: MAX_PIXELS, sequentialRead: true })
    .rotate()
    .resize(maxEdge, maxEdge, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 75 })
    .toBuffer();
}

/** The card file's picture as the output holds it: a JPEG without what follows its first EOI. */
function picture(input: Uint8Array, format: 'jpeg' | 'tiff' | 'dng'): Uint8Array {
  if (format !== 'jpeg') return input;
  try {
    const layout = walkJpeg(input);
    return layout.trailing > 0 ? input.subarray(0, input.length - layout.trailing) : input;
  } catch {
    return input;
  }
}

function reason(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
}

/** Decodes the output or the card file by other means (ffmpeg, full decode); throws when it cannot. */
export type FallbackDecode = (which: 'output' | 'input') => Promise<void>;

export async function previewDecode(
  output: Uint8Array,
  input: Uint8Array,
  format: 'jpeg' | 'tiff' | 'dng',
  maxEdge: number,
  fallback: FallbackDecode,
): Promise<PreviewOutcome> {
  let outErr: unknown;
  try {
    return { thumbnail: await renderPreview(output, maxEdge) };
  } catch (err) {
    outErr = err;
  }
  const broken = (how: string): KluisError =>
    new KluisError('E_SANITIZE_DECODE', `the card file decodes but the sanitized picture does not (${how})`, {
      hint: 'the file is withheld; this is a bug in kluis, please report it with the file',
    });
  if (await renderPreview(picture(input, format), maxEdge).then(() => true, () => false)) throw broken(`sharp: ${reason(outErr)}`);
  // sharp reads neither: this kind of picture is beyond it. ffmpeg gets one try at the output.
  let ffErr: unknown;
  try {
    await fallback('output');
    return { note: `decode check by ffmpeg (full decode): sharp cannot decode this ${format.toUpperCase()} (${reason(outErr)}), neither the card file nor the output` };
  } catch (err) {
    ffErr = err;
  }
  if (format === 'jpeg') {
    throw new KluisError('E_SANITIZE_DECODE', `the sanitized picture does not decode (sharp: ${reason(outErr)}; ffmpeg: ${reason(ffErr)})`, {
      hint: 'a picture no decoder kluis has can read cannot be checked, so it is withheld; the sealed original keeps it',
      cause: ffErr,
    });
  }
  if (await fallback('input').then(() => true, () => false)) throw broken(`ffmpeg: ${reason(ffErr)}`);
  return {
    note: `no decode check: neither sharp nor ffmpeg decodes this ${format.toUpperCase()} (sharp: ${reason(outErr)}; ffmpeg: ${reason(ffErr)}), neither the card file nor the output; the image data and decoding tags hash is the proof`,
  };
}
