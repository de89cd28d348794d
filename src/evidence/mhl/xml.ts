/**
 * The XML of ASC MHL files, read and written through the strict XML wrapper (fast-xml-parser).
 * Reading refuses, with E_MHL_XML, a file over MAX_MHL_BYTES (before reading it), a DOCTYPE or any
 * other declaration, an undefined entity and anything not well-formed; it never guesses.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../../errors.js';
import { parseXml, type XmlElement } from '../../wrappers/xml.js';

export { buildXml, child, childrenNamed, type XmlElement } from '../../wrappers/xml.js';

/**
 * Largest MHL file read: a generation lists each file in about 400 bytes, so this holds some
 * 150,000 files, far more than a card; a larger file is refused rather than held in memory.
 */
export const MAX_MHL_BYTES = 64 * 1024 * 1024;

function refusal(what: string, why: string): KluisError {
  return new KluisError('E_MHL_XML', `${what}: ${why}`, { hint: 'the ASC MHL file is damaged or not an ASC MHL file' });
}

/** Parses an MHL manifest or chain file into its root element. Throws E_MHL_XML on anything refused. */
export function parseMhlXml(text: string, what: string): XmlElement {
  // A character is at least one byte in UTF-8, so the byte limit bounds the text too.
  return parseXml(text, { maxChars: MAX_MHL_BYTES, refuse: (why) => refusal(what, why) });
}

/** Reads and parses an MHL file; one larger than MAX_MHL_BYTES is refused unread (E_MHL_XML). */
export async function readMhlXml(file: string, what: string): Promise<XmlElement> {
  const fh = await fsp.open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size > MAX_MHL_BYTES) throw refusal(what, `${size} bytes, more than the ${MAX_MHL_BYTES} accepted`);
    return parseMhlXml(await fh.readFile('utf8'), what);
  } finally {
    await fh.close();
  }
}
