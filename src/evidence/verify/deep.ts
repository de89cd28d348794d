/**
 * `kluis verify --deep`: a decrypted footage file decoded in full (check `decode`); with a card
 * folder, a still image's decoded pixels compared with the card file's (check
 * `decode:card-pixels`). A file ffmpeg cannot decode fails; a kind it does not decode is said so.
 */
import type { FullDecode } from '../../sanitize/index.js';
import { errText, type Check, type DecodeFn } from './result.js';

export interface DeepArgs {
  decode: DecodeFn;
  /** The card file's full decode, when a card folder was given. */
  card: (() => Promise<FullDecode>) | null;
}

export async function deepChecks(tmpFile: string, deep: DeepArgs): Promise<Check[]> {
  const checks: Check[] = [];
  let mine: FullDecode;
  try {
    mine = await deep.decode(tmpFile);
    checks.push({ check: 'decode', result: 'verified', message: mine.how });
  } catch (err) {
    const code = (err as { code?: string }).code;
    checks.push({ check: 'decode', result: code === 'E_DECODE_FAILED' ? 'mismatch' : 'unchecked', message: errText(err) });
    return checks;
  }
  if (!deep.card || mine.pixelsSha256 === undefined) return checks;
  try {
    const card = await deep.card();
    if (card.pixelsSha256 === undefined) checks.push({ check: 'decode:card-pixels', result: 'unchecked', message: 'the card file gave no picture to compare' });
    else if (card.pixelsSha256 === mine.pixelsSha256) checks.push({ check: 'decode:card-pixels', result: 'verified' });
    else checks.push({ check: 'decode:card-pixels', result: 'mismatch', message: `decoded pixels ${mine.pixelsSha256}, the card file's ${card.pixelsSha256}` });
  } catch (err) {
    checks.push({ check: 'decode:card-pixels', result: 'unchecked', message: `the card file could not be decoded: ${errText(err)}` });
  }
  return checks;
}
