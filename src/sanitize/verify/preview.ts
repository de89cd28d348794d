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
 * input decodes, the sanitizer broke the picture (E_SANITIZE_DECODE, withheld); if neither does,
 * sharp cannot read this kind of picture: a TIFF/DNG (raw CFA data) then passes with a note (its
 * coded-bytes proof stands alone, as before for files ffmpeg could not decode), a JPEG goes to the
 * `fallback` decoder (ffmpeg, full decode), and fails closed when that cannot decode it either.
 * It never writes a file and never decodes at full scale unless sharp must.
 */
import sharp from 'sharp';
import { KluisError } from '../../errors.js';

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

function reason(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
}

export async function previewDecode(
  output: Uint8Array,
  input: Uint8Array,
  format: 'jpeg' | 'tiff' | 'dng',
  maxEdge: number,
  fallback: () => Promise<void>,
): Promise<PreviewOutcome> {
  let outErr: unknown;
  try {
    return { thumbnail: await renderPreview(output, maxEdge) };
  } catch (err) {
    outErr = err;
  }
  const inputDecodes = await renderPreview(input, maxEdge).then(
    () => true,
    () => false,
  );
  if (inputDecodes) {
    throw new KluisError('E_SANITIZE_DECODE', `the card file decodes but the sanitized picture does not (sharp: ${reason(outErr)})`, {
      hint: 'the file is withheld; this is a bug in kluis, please report it with the file',
    });
  }
  if (format !== 'jpeg') {
    return { note: `no decode check: sharp cannot decode this ${format.toUpperCase()} (${reason(outErr)}), neither the card file nor the output; the image data and decoding tags hash is the proof` };
  }
  try {
    await fallback();
  } catch (err) {
    throw new KluisError('E_SANITIZE_DECODE', `the sanitized picture does not decode (sharp: ${reason(outErr)}; ffmpeg: ${reason(err)})`, {
      hint: 'a picture no decoder kluis has can read cannot be checked, so it is withheld; the sealed original keeps it',
      cause: err,
    });
  }
  return { note: `decode check by ffmpeg (full decode): sharp cannot decode this JPEG (${reason(outErr)}), neither the card file nor the output` };
}
