/**
 * The strict XML reader (src/wrappers/xml.ts, fast-xml-parser): what it reads (local names, the
 * five XML entities and numeric references, CDATA, comments skipped, text kept as strings) and
 * what it refuses with the caller's error (DOCTYPE and every other declaration, undefined
 * entities and forbidden characters, anything not well-formed, too long, too deep). Each refusal is a real attack or
 * damage shape; a reader that expanded, fetched or guessed would fail here.
 */
import { describe, it, expect } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { buildXml, child, childrenNamed, MAX_DEPTH, parseXml } from '../../src/wrappers/xml.js';

const opts = { maxChars: 1_000_000, refuse: (why: string) => new KluisError('E_MHL_XML', why) };
const parse = (text: string, maxChars = opts.maxChars) => parseXml(text, { ...opts, maxChars });

function refused(text: string, why: RegExp, maxChars?: number): void {
  let err: unknown;
  try {
    parse(text, maxChars);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KluisError);
  expect((err as KluisError).code).toBe('E_MHL_XML');
  expect((err as KluisError).message).toMatch(why);
}

describe('parseXml reads', () => {
  it('elements by local name, attributes, text as strings, in document order', () => {
    const doc = parse(
      '<?xml version="1.0" encoding="UTF-8"?>\n<a:root xmlns:a="urn:x" xmlns="urn:y" n="0012"><a:item k="1">007</a:item><item k="2"> 1e5 </item><other/></a:root>',
    );
    expect(doc.name).toBe('root');
    expect(doc.attrs).toEqual({ n: '0012' });
    expect(childrenNamed(doc, 'item').map((i) => [i.attrs.k, i.text])).toEqual([
      ['1', '007'],
      ['2', '1e5'],
    ]);
    expect(doc.children.map((c) => c.name)).toEqual(['item', 'item', 'other']);
    expect(child(doc, 'other')).toEqual({ name: 'other', attrs: {}, children: [], text: '' });
  });

  it('the five XML entities and numeric references, in text and attributes', () => {
    const doc = parse('<r a="&quot;&#x41;&apos;"><p>&amp;&lt;b&gt; &#233;&#x1F600;</p></r>');
    expect(doc.attrs.a).toBe('"A\'');
    expect(child(doc, 'p')!.text).toBe('&<b> é😀');
  });

  it('CDATA as text, comments skipped (a declaration inside either is only text)', () => {
    const doc = parse('<r><!-- <!DOCTYPE x [<!ENTITY e "boom">]> &e; --><p><![CDATA[a <!ENTITY> & &e; ]]></p></r>');
    expect(child(doc, 'p')!.text).toBe('a <!ENTITY> & &e;');
  });
});

describe('parseXml refuses', () => {
  it('a DOCTYPE with entities (billion laughs), unexpanded', () => {
    const lol = [
      '<?xml version="1.0"?>',
      '<!DOCTYPE lolz [',
      ' <!ENTITY lol "lol">',
      ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">',
      ' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">',
      ']>',
      '<lolz>&lol2;</lolz>',
    ].join('\n');
    refused(lol, /DOCTYPE/);
  });

  it('an external entity (XXE) and a DOCTYPE without entities', () => {
    refused('<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>', /external entities/i);
    refused('<!DOCTYPE r SYSTEM "http://example.org/r.dtd"><r/>', /DOCTYPE/);
    refused('<r><!ENTITY e "x"></r>', /declaration <!ENTITY> is not accepted/);
    refused('<!ENTITY e "x"><r/>', /./);
  });

  it('a DOCTYPE inside the root element, also behind an attribute that looks like a comment', () => {
    refused('<r><!DOCTYPE x [<!ENTITY e "boom">]><y>&e;</y></r>', /DOCTYPE/);
    refused('<r a="<!--"><!DOCTYPE x [<!ENTITY e "boom">]><y b="-->">&e;</y></r>', /DOCTYPE/);
  });

  it('a reference to an entity XML does not define', () => {
    refused('<r>&nbsp;</r>', /undefined entity &nbsp;/);
    refused('<r a="&e;"/>', /undefined entity &e;/);
    refused('<r>&;</r>', /'&'/);
    refused('<r a="a & b"/>', /'&' that starts no reference/);
  });

  it('a reference to a character XML does not allow', () => {
    refused('<r>&#0;</r>', /does not allow \(&#0;\)/);
    refused('<r>&#xD800;</r>', /does not allow/);
    refused('<r a="&#99999999;"/>', /does not allow/);
    refused('<r>&#x1;</r>', /does not allow/);
  });

  it('anything not well-formed', () => {
    refused('<r><a></b></r>', /closing tag/i);
    refused('<r><a></r>', /./);
    refused('<r/><s/>', /root/i);
    refused('text<r/>', /./);
    refused('<r>', /unclosed/i);
    refused('', /./);
    refused('<r a="1></r>', /./);
    refused('<r>& x</r>', /'&'/);
    refused('<r><!-- never closed </r>', /unclosed/i);
    refused('<r><![CDATA[ never closed </r>', /unclosed/i);
  });

  it('a text longer than maxChars, and nesting deeper than MAX_DEPTH', () => {
    refused(`<r>${'x'.repeat(100)}</r>`, /more than the 50 accepted/, 50);
    refused(`${'<a>'.repeat(2 * MAX_DEPTH)}${'</a>'.repeat(2 * MAX_DEPTH)}`, /nested/i);
    refused('<a>'.repeat(20_000), /^.{1,301}$/s); // never closed, far too deep; the reason stays short
    expect(() => parse(`${'<a>'.repeat(MAX_DEPTH)}${'</a>'.repeat(MAX_DEPTH)}`)).not.toThrow();
  });
});

describe('buildXml', () => {
  it('writes what parseXml reads back, escaping text and attributes', () => {
    const nasty = `a & <b> "c" 'd' é`;
    const xml = buildXml({ r: { '@_xmlns': 'urn:x', '@_v': nasty, item: [{ '@_role': 'true', '#text': nasty }, 'plain'], empty: '' } });
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<r xmlns="urn:x" ')).toBe(true);
    expect(xml.endsWith('</r>\n')).toBe(true);
    expect(xml).toContain('<empty></empty>');
    const doc = parse(xml);
    expect(doc.attrs.v).toBe(nasty);
    expect(childrenNamed(doc, 'item').map((i) => [i.attrs.role, i.text])).toEqual([
      ['true', nasty],
      [undefined, 'plain'],
    ]);
  });
});
