/**
 * Just enough XML for ASC MHL: escaping for the writer and a small reader for the flat element
 * structure of MHL manifests and chain files (elements, attributes, text, the five predefined
 * entities and numeric references). It refuses DOCTYPEs (no entity expansion, no external
 * fetches) and anything it does not understand rather than guessing.
 */
import { KluisError } from '../../errors.js';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface XmlElement {
  name: string; // local name, namespace prefix dropped
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

function unescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    return String.fromCodePoint(e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10));
  });
}

/** Parses a document into its root element. Throws E_MHL_XML on anything malformed. */
export function parseXml(text: string, what: string): XmlElement {
  const fail = (msg: string): never => {
    throw new KluisError('E_MHL_XML', `${what}: ${msg}`, { hint: 'the ASC MHL file is damaged or not an ASC MHL file' });
  };
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const tagRe = /<\/?([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/y;
  const attrRe = /([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = text.slice(i, lt < 0 ? text.length : lt);
    if (stack.length > 0) stack[stack.length - 1]!.text += unescape(chunk);
    else if (chunk.trim() !== '') fail('text outside the root element');
    if (lt < 0) break;
    if (text.startsWith('<?', lt)) {
      const end = text.indexOf('?>', lt);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
      continue;
    }
    if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<![CDATA[', lt)) {
      const end = text.indexOf(']]>', lt);
      if (end < 0 || stack.length === 0) fail('bad CDATA section');
      stack[stack.length - 1]!.text += text.slice(lt + 9, end);
      i = end + 3;
      continue;
    }
    if (text.startsWith('<!', lt)) fail('DOCTYPE and declarations are not accepted');
    tagRe.lastIndex = lt;
    const m = tagRe.exec(text);
    if (!m) fail(`malformed tag at offset ${lt}`);
    const [whole, qname, attrText, selfClose] = m as RegExpExecArray;
    const name = qname!.includes(':') ? qname!.slice(qname!.indexOf(':') + 1) : qname!;
    if (whole.startsWith('</')) {
      const open = stack.pop();
      if (!open || open.name !== name) fail(`closing </${qname}> does not match`);
      if (stack.length === 0) root = open!;
    } else {
      const attrs: Record<string, string> = {};
      for (const a of (attrText ?? '').matchAll(attrRe)) attrs[a[1]!] = unescape(a[2] ?? a[3] ?? '');
      const el: XmlElement = { name, attrs, children: [], text: '' };
      if (stack.length > 0) stack[stack.length - 1]!.children.push(el);
      else if (root) fail('more than one root element');
      if (selfClose) {
        if (stack.length === 0) root = el;
      } else stack.push(el);
    }
    i = lt + whole.length;
  }
  if (stack.length > 0 || !root) fail('unexpected end of document');
  return root!;
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
