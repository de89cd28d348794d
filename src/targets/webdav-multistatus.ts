/**
 * Reads a WebDAV PROPFIND answer (207 multistatus, RFC 4918) through the strict XML wrapper
 * (fast-xml-parser): per <response> its href, whether it is a collection and its length, taken
 * from the propstat whose status is 200 only (a 404 propstat lists the props the server lacks).
 *
 * Elements are matched by local name, so every prefix servers use for `DAV:` reads alike (d:, D:,
 * lp1: as Apache writes getcontentlength, a default namespace without prefix). A body that is not
 * a well-formed multistatus, or holds a DOCTYPE, an entity other than XML's own, or more than
 * MAX_MULTISTATUS_CHARS, is refused with E_TARGET_IO (retryable: a server's answer may be whole
 * the next time); it is never read as an empty listing.
 */
import { KluisError } from '../errors.js';
import { child, childrenNamed, parseXml, type XmlElement } from '../wrappers/xml.js';

export interface DavEntry {
  href: string;
  collection: boolean;
  size: number;
}

/** Longest answer read, as http.ts readBody's default limit: a listing of some 100,000 names. */
export const MAX_MULTISTATUS_CHARS = 32 * 1024 * 1024;

function okProps(response: XmlElement): XmlElement[] {
  return childrenNamed(response, 'propstat')
    .filter((ps) => /\b200\b/.test(child(ps, 'status')?.text ?? ''))
    .flatMap((ps) => childrenNamed(ps, 'prop'));
}

/** The entries of a multistatus body; `target` names the target in a refusal. */
export function parseMultistatus(xml: string, target: string): DavEntry[] {
  const refuse = (why: string): KluisError =>
    new KluisError('E_TARGET_IO', `target ${target}: the server's PROPFIND answer is not a readable multistatus: ${why}`, {
      hint: 'check that the URL names a WebDAV collection and that nothing between kluis and the server rewrites its answers',
      details: { retryable: true },
    });
  const doc = parseXml(xml, { maxChars: MAX_MULTISTATUS_CHARS, refuse });
  if (doc.name !== 'multistatus') throw refuse(`its root element is <${doc.name}>`);
  const out: DavEntry[] = [];
  for (const response of childrenNamed(doc, 'response')) {
    const href = child(response, 'href')?.text;
    if (!href) continue;
    const props = okProps(response);
    const collection = props.some((p) => {
      const type = child(p, 'resourcetype');
      return type !== undefined && child(type, 'collection') !== undefined;
    });
    const len = props.map((p) => child(p, 'getcontentlength')?.text).find((t) => t !== undefined);
    out.push({ href, collection, size: len !== undefined && /^\d+$/.test(len) ? Number(len) : 0 });
  }
  return out;
}
