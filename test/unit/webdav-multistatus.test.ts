/**
 * Reading PROPFIND answers (src/targets/webdav-multistatus.ts, fast-xml-parser): the `DAV:`
 * prefixes servers write (Apache mod_dav's D: with lp1: for live properties, Nextcloud/Sabre's d:,
 * a default namespace without prefix) read alike; only the 200 propstat counts; markup in comments
 * and CDATA is not mistaken for elements; and a body that is not a well-formed multistatus, or is
 * hostile (DOCTYPE, entities), is refused with E_TARGET_IO instead of reading as an empty listing.
 * The answers are modelled on what those servers send (Apache's is the integration server's).
 */
import { describe, it, expect } from 'vitest';
import { parseMultistatus } from '../../src/targets/webdav-multistatus.js';

/** Apache mod_dav, Depth 1: D: for the structure, lp1: (also DAV:) for live properties. */
const APACHE = `<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:ns0="DAV:">
<D:response xmlns:lp1="DAV:" xmlns:lp2="http://apache.org/dav/props/">
<D:href>/dav/kluis/</D:href>
<D:propstat>
<D:prop>
<lp1:resourcetype><D:collection/></lp1:resourcetype>
</D:prop>
<D:status>HTTP/1.1 200 OK</D:status>
</D:propstat>
<D:propstat>
<D:prop>
<g0:getcontentlength xmlns:g0="DAV:"/>
</D:prop>
<D:status>HTTP/1.1 404 Not Found</D:status>
</D:propstat>
</D:response>
<D:response xmlns:lp1="DAV:" xmlns:lp2="http://apache.org/dav/props/">
<D:href>/dav/kluis/a%20b%26c.bin</D:href>
<D:propstat>
<D:prop>
<lp1:resourcetype/>
<lp1:getcontentlength>1048576</lp1:getcontentlength>
</D:prop>
<D:status>HTTP/1.1 200 OK</D:status>
</D:propstat>
</D:response>
</D:multistatus>
`;

/** Nextcloud (Sabre/DAV): d: on one line, other namespaces declared beside it. */
const NEXTCLOUD =
  '<?xml version="1.0"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:oc="http://owncloud.org/ns">' +
  '<d:response><d:href>/remote.php/dav/files/u/kluis/B-1/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>' +
  '<d:propstat><d:prop><d:getcontentlength/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>' +
  '<d:response><d:href>/remote.php/dav/files/u/kluis/B-1/x&amp;y.sealed</d:href><d:propstat><d:prop><d:resourcetype/><d:getcontentlength>42</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>' +
  '</d:multistatus>';

/** A default namespace, no prefixes at all. */
const PLAIN = `<multistatus xmlns="DAV:">
  <response><href>/k/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
  <response><href>/k/f</href><propstat><prop><getcontentlength> 7 </getcontentlength><resourcetype/></prop><status>HTTP/1.1 200 OK</status></propstat></response>
</multistatus>`;

function refusal(xml: string): unknown {
  try {
    parseMultistatus(xml, 'dav');
  } catch (err) {
    return err;
  }
  return null;
}

describe('parseMultistatus reads', () => {
  it("Apache's D: and lp1: prefixes, the 404 propstat ignored", () => {
    expect(parseMultistatus(APACHE, 'dav')).toEqual([
      { href: '/dav/kluis/', collection: true, size: 0 },
      { href: '/dav/kluis/a%20b%26c.bin', collection: false, size: 1048576 },
    ]);
  });

  it("Nextcloud's d: prefix, entities in an href decoded", () => {
    expect(parseMultistatus(NEXTCLOUD, 'dav')).toEqual([
      { href: '/remote.php/dav/files/u/kluis/B-1/', collection: true, size: 0 },
      { href: '/remote.php/dav/files/u/kluis/B-1/x&y.sealed', collection: false, size: 42 },
    ]);
  });

  it('a default namespace without prefixes', () => {
    expect(parseMultistatus(PLAIN, 'dav')).toEqual([
      { href: '/k/', collection: true, size: 0 },
      { href: '/k/f', collection: false, size: 7 },
    ]);
  });

  it('only what a 200 propstat says: a collection or a length in a 404 propstat does not count', () => {
    const xml = `<D:multistatus xmlns:D="DAV:"><D:response><D:href>/k/x</D:href>
      <D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype><D:getcontentlength>99</D:getcontentlength></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
      <D:propstat><D:prop><D:getcontentlength>5</D:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
    </D:response><D:response><D:href>/k/gone</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response></D:multistatus>`;
    expect(parseMultistatus(xml, 'dav')).toEqual([
      { href: '/k/x', collection: false, size: 5 },
      { href: '/k/gone', collection: false, size: 0 },
    ]);
  });

  it('markup inside comments and CDATA as text, never as elements', () => {
    const xml = `<D:multistatus xmlns:D="DAV:"><!-- <D:response><D:href>/k/ghost</D:href></D:response> -->
      <D:response><D:href><![CDATA[/k/a<b>]]></D:href><D:propstat><D:prop><D:getcontentlength>3</D:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
    </D:multistatus>`;
    expect(parseMultistatus(xml, 'dav')).toEqual([{ href: '/k/a<b>', collection: false, size: 3 }]);
  });

  it('an empty multistatus as no entries', () => {
    expect(parseMultistatus('<D:multistatus xmlns:D="DAV:"/>', 'dav')).toEqual([]);
  });
});

describe('parseMultistatus refuses (E_TARGET_IO)', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['a DOCTYPE with entity expansion', `<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>${APACHE.replace('/dav/kluis/</D:href>', '&b;</D:href>').replace(/^<\?xml[^>]*>/, '')}`, /DOCTYPE/],
    ['an external entity', `<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><D:multistatus xmlns:D="DAV:"><D:response><D:href>&x;</D:href></D:response></D:multistatus>`, /external entities/i],
    ['an undefined entity', '<D:multistatus xmlns:D="DAV:"><D:response><D:href>/k/&nbsp;</D:href></D:response></D:multistatus>', /undefined entity/],
    ['a body cut short', APACHE.slice(0, APACHE.indexOf('</D:propstat>')), /./],
    ['an HTML error page', '<html><body><h1>502 Bad Gateway</h1></body></html>', /root element is <html>/],
    ['an empty body', '', /./],
  ];
  for (const [what, xml, why] of cases) {
    it(what, () => {
      const err = refusal(xml);
      expect(err).toMatchObject({ code: 'E_TARGET_IO', details: { retryable: true } });
      expect((err as Error).message).toMatch(/^target dav: the server's PROPFIND answer is not a readable multistatus: /);
      expect((err as Error).message).toMatch(why);
    });
  }
});
