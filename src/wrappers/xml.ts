/**
 * XML through fast-xml-parser: a strict reader into a small element tree, and the builder.
 *
 * `parseXml` promises to return the root element of a well-formed document, or to throw the
 * caller's own KluisError (its `refuse`). It refuses:
 * - a text longer than `maxChars`, before any parsing;
 * - anything not well-formed (fast-xml-parser's validator runs first: tags that do not match,
 *   more than one root, text outside the root, bad names), elements nested deeper than MAX_DEPTH;
 * - a DOCTYPE, wherever it stands, and any other markup declaration (<!ENTITY …>): no entity is
 *   ever defined, so nothing expands but the five XML entities and numeric character references,
 *   and nothing is fetched;
 * - a reference to any other entity, a bare '&', a reference to a character XML does not allow.
 * Element and attribute names are local names (the namespace prefix dropped: `D:href`,
 * `lp1:getcontentlength` and `href` are all `href`); xmlns declarations, comments and processing
 * instructions are not kept; text is trimmed and never converted (a hash stays a string).
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import type { KluisError } from '../errors.js';

export interface XmlElement {
  /** Local name, namespace prefix dropped. */
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (entities decoded, trimmed), without its children's. */
  text: string;
}

export interface ParseXmlOptions {
  /** Longest text accepted, in UTF-16 code units (string length). */
  maxChars: number;
  /** The caller's error for a refused document; `why` says what was wrong. */
  refuse: (why: string) => KluisError;
}

/** Element nesting accepted (fast-xml-parser's maxNestedTags; MHL needs 5 levels, a multistatus 6). */
export const MAX_DEPTH = 64;

/** The five entities XML predefines. */
const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const REFERENCE = /&(?:#x([0-9a-fA-F]+)|#([0-9]+)|([^\s&;#<>"']+));|&/g;

/** A character XML 1.0 allows (section 2.2). */
function xmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/**
 * The entity decoder handed to fast-xml-parser (its `entityDecoder` option; parsing is synchronous,
 * so one stateless decoder serves every parse). fast-xml-parser's own decoder leaves an unknown
 * reference as literal text and decodes numeric references only together with HTML's named
 * entities; this one keeps XML's rules: the five entities and numeric references to allowed
 * characters, and an error for anything else. It is also where the parser reports a DOCTYPE, so
 * every DOCTYPE is refused, wherever it stands, before any of its entities could be used.
 */
const strictEntities = {
  reset(): void {},
  setXmlVersion(): void {},
  setExternalEntities(): void {
    throw new Error('external entities are not accepted');
  },
  addInputEntities(): void {
    throw new Error('a DOCTYPE is not accepted (no entity is ever defined or expanded)');
  },
  decode(text: string): string {
    if (!text.includes('&')) return text;
    return text.replace(REFERENCE, (ref: string, hex?: string, dec?: string, name?: string) => {
      if (name !== undefined) {
        const c = XML_ENTITIES[name];
        if (c === undefined) throw new Error(`a reference to the undefined entity ${ref}`);
        return c;
      }
      if (hex === undefined && dec === undefined) throw new Error("a '&' that starts no reference");
      const cp = hex !== undefined ? Number.parseInt(hex, 16) : Number.parseInt(dec!, 10);
      if (!xmlChar(cp)) throw new Error(`a reference to a character XML does not allow (${ref})`);
      return String.fromCodePoint(cp);
    });
  },
};

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  entityDecoder: strictEntities,
  maxNestedTags: MAX_DEPTH,
  jPath: false, // no callback reads the path: skips building its string per element
});

/** An XML name without a prefix (NCName, approximately: letters beyond ASCII are all accepted). */
const LOCAL_NAME = /^[A-Za-z_\u00C0-\u{EFFFF}][\w.\-\u00B7-\u{EFFFF}]*$/u;

type OrderedNode = Record<string, unknown>;

/** fast-xml-parser's ordered output as an element tree; throws on a name that is not an XML name. */
function toElement(node: OrderedNode): XmlElement {
  const name = Object.keys(node).find((k) => k !== ':@') ?? '';
  // The parser reads a declaration other than DOCTYPE (<!ENTITY …> in the body) as an element.
  if (!LOCAL_NAME.test(name)) throw new Error(name.startsWith('!') ? `a declaration <${name}> is not accepted` : `<${name}> is not an XML name`);
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries((node[':@'] as Record<string, unknown> | undefined) ?? {})) attrs[k] = String(v);
  const el: XmlElement = { name, attrs, children: [], text: '' };
  for (const c of (node[name] as OrderedNode[] | undefined) ?? []) {
    if ('#text' in c) el.text += String(c['#text']);
    else el.children.push(toElement(c));
  }
  el.text = el.text.trim();
  return el;
}

/** A reason cut to a readable length (the validator lists every unclosed tag; hostile input has many). */
function short(why: string): string {
  return why.length > 300 ? `${why.slice(0, 300)}…` : why;
}

/** Parses a whole document into its root element; throws `refuse(why)` on anything refused. */
export function parseXml(text: string, opts: ParseXmlOptions): XmlElement {
  if (text.length > opts.maxChars) throw opts.refuse(`${text.length} characters, more than the ${opts.maxChars} accepted`);
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw opts.refuse(short(`${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`));
  try {
    const roots = (parser.parse(text) as OrderedNode[]).filter((n) => !('#text' in n));
    if (roots.length !== 1) throw new Error(`${roots.length} root elements`);
    return toElement(roots[0]!);
  } catch (err) {
    throw opts.refuse(short((err as Error).message));
  }
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

// suppressBooleanAttributes off: a value "true" (an operator's role, say) stays role="true".
const builder = new XMLBuilder({ ignoreAttributes: false, format: true, indentBy: '  ', suppressEmptyNode: false, suppressBooleanAttributes: false });

/**
 * Writes a document from a plain object (fast-xml-parser's builder): keys in insertion order are
 * elements, `@_name` keys attributes, `#text` an element's text, arrays repeated elements; text and
 * attribute values are escaped. Indented by two spaces, one element per line, ending in a newline.
 */
export function buildXml(doc: Record<string, unknown>): string {
  return builder.build({ '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' }, ...doc }) as string;
}

