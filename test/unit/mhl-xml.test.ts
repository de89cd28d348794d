/**
 * The XML side of ASC MHL histories (src/evidence/mhl/, read and written with fast-xml-parser):
 * a generation whose paths need escaping reads back exactly (verify passes, the chain holds its
 * C4), a manifest written in the reference implementation's layout by another tool is read, and a
 * damaged or hostile manifest or chain file (DOCTYPE, undefined entity, truncated, too large) is
 * refused with E_MHL_XML instead of being read as an empty or partial history. The schema
 * validation with xmllint is in test/integration/mhl.test.ts.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeMhlGeneration, verifyMhl, MHL_FOLDER, CHAIN_FILE } from '../../src/evidence/mhl/index.js';
import { readHistory } from '../../src/evidence/mhl/history.js';
import { c4OfBytes } from '../../src/evidence/mhl/hash.js';
import { MAX_MHL_BYTES } from '../../src/evidence/mhl/xml.js';

let root: string;
const creator = { hostname: 'station-1', author: { name: `O'Brien & "Co" <ops>`, role: 'true' }, date: new Date('2024-01-01T00:00:00Z') };
const NAMES = [`it's "quoted" & <tagged>.MP4`, 'café/ø 1.JPG', 'plain.txt'];

beforeEach(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-mhl-xml-'));
  for (const n of NAMES) {
    await fsp.mkdir(path.dirname(path.join(root, n)), { recursive: true });
    await fsp.writeFile(path.join(root, n), `bytes of ${n}`);
  }
});
afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

async function expectRefused(p: Promise<unknown>, why: RegExp): Promise<void> {
  await expect(p).rejects.toMatchObject({ code: 'E_MHL_XML', message: expect.stringMatching(why) });
}

describe('ASC MHL XML', () => {
  it('reads back what it wrote: escaped paths, the author, hashes, chain C4', async () => {
    const g = await writeMhlGeneration(root, { creator, process: 'transfer' });
    const xml = await fsp.readFile(g.manifestPath, 'utf8');
    expect(xml).toContain('&amp; &lt;tagged&gt;.MP4</path>');
    expect(xml).toMatch(/<author role="true">O(&apos;|')Brien &amp; (&quot;|")Co(&quot;|") &lt;ops&gt;<\/author>/);
    const h = await readHistory(root);
    expect([...h!.latest.keys()].sort()).toEqual([...NAMES].sort());
    expect(h!.latest.get(NAMES[0]!)).toMatchObject({ generation: 1, action: 'original', size: Buffer.byteLength(`bytes of ${NAMES[0]}`) });
    expect(h!.latest.get(NAMES[0]!)!.hashes.xxh128).toMatch(/^[0-9a-f]{32}$/);
    expect(h!.chain).toEqual([{ sequencenr: 1, path: path.basename(g.manifestPath), c4: c4OfBytes(await fsp.readFile(g.manifestPath)) }]);
    expect(await verifyMhl(root)).toMatchObject({ ok: true, checked: 3, problems: [] });
    const g2 = await writeMhlGeneration(root, { creator, process: 'in-place' });
    expect(g2).toMatchObject({ generation: 2, failed: [] });
    expect((await readHistory(root))!.chain.map((c) => c.sequencenr)).toEqual([1, 2]);
  });

  it("reads another tool's manifest: prefixes, comments, numeric references", async () => {
    await fsp.mkdir(path.join(root, MHL_FOLDER));
    const size = Buffer.byteLength('bytes of plain.txt');
    await fsp.writeFile(
      path.join(root, MHL_FOLDER, '0001_other_2024-01-01_000000Z.mhl'),
      `<?xml version="1.0" encoding="UTF-8"?>
<!-- written by another tool -->
<m:hashlist version="2.0" xmlns:m="urn:ASC:MHL:v2.0">
  <m:creatorinfo><m:creationdate>2024-01-01T00:00:00Z</m:creationdate><m:hostname>h</m:hostname><m:tool version="1">t</m:tool></m:creatorinfo>
  <m:processinfo><m:process>transfer</m:process><m:ignore><m:pattern>.DS_Store</m:pattern><m:pattern>&#x2a;.tmp</m:pattern></m:ignore></m:processinfo>
  <m:hashes>
    <m:hash><m:path size="${size}">pl&#97;in.txt</m:path><m:md5 action="original">0123</m:md5></m:hash>
  </m:hashes>
</m:hashlist>
`,
    );
    const h = await readHistory(root);
    expect(h!.ignore).toEqual(['.DS_Store', '*.tmp']);
    expect(h!.latest.get('plain.txt')).toEqual({ generation: 1, size, hashes: { md5: '0123' }, action: 'original' });
  });

  it('refuses a manifest with a DOCTYPE, an undefined entity, or cut short', async () => {
    await writeMhlGeneration(root, { creator, process: 'transfer' });
    const [name] = (await fsp.readdir(path.join(root, MHL_FOLDER))).filter((f) => f.endsWith('.mhl'));
    const file = path.join(root, MHL_FOLDER, name!);
    const good = await fsp.readFile(file, 'utf8');
    await fsp.writeFile(file, good.replace('<hashlist', '<!DOCTYPE hashlist [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<hashlist').replace('<process>', '<process>&x;'));
    await expectRefused(verifyMhl(root), /external entities/i);
    await fsp.writeFile(file, good.replace('<hashlist', '<!DOCTYPE hashlist [<!ENTITY x "boom">]>\n<hashlist').replace('<process>', '<process>&x;'));
    await expectRefused(verifyMhl(root), /DOCTYPE is not accepted/);
    await fsp.writeFile(file, good.replace('<process>', '<process>&x;'));
    await expectRefused(verifyMhl(root), /undefined entity &x;/);
    await fsp.writeFile(file, good.slice(0, good.length / 2));
    await expectRefused(verifyMhl(root), new RegExp(name!));
    await expectRefused(writeMhlGeneration(root, { creator, process: 'in-place' }), /./);
  });

  it('refuses a damaged chain file, and a manifest too large to read', async () => {
    await writeMhlGeneration(root, { creator, process: 'transfer' });
    const chain = path.join(root, MHL_FOLDER, CHAIN_FILE);
    const good = await fsp.readFile(chain, 'utf8');
    await fsp.writeFile(chain, good.replace('</ascmhldirectory>', '</ascmhldirectory><ascmhldirectory/>'));
    await expectRefused(verifyMhl(root), new RegExp(`${CHAIN_FILE}: .*root`, 'i'));
    await fsp.writeFile(chain, good);
    const huge = path.join(root, MHL_FOLDER, '0002_huge.mhl');
    const fh = await fsp.open(huge, 'w');
    await fh.truncate(MAX_MHL_BYTES + 1); // sparse: refused by its size, never read
    await fh.close();
    await expectRefused(verifyMhl(root), /0002_huge\.mhl: \d+ bytes, more than/);
  });
});
