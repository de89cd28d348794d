// ASC MHL v2 histories: generations and chain file validate against the official schemas with
// xmllint (libxml2); a changed, missing or added file and a changed manifest are each detected.
//
// The directory schema imports ASCMHL.xsd by its https URL; an XML catalog maps that URL to the
// local copy so xmllint never touches the network (--nonet).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeMhlGeneration, verifyMhl, MHL_FOLDER, CHAIN_FILE } from '../../src/evidence/mhl/index.js';
import { c4OfBytes, hashFile } from '../../src/evidence/mhl/hash.js';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '..', '..');
/** The official schemas, kept in the repository with their licence (test/fixtures/ascmhl-xsd/README.md). */
const XSD_DIR = path.join(repoRoot, 'test', 'fixtures', 'ascmhl-xsd');

let dir: string;
let root: string;

async function xmllint(file: string, schema: 'ASCMHL.xsd' | 'ASCMHLDirectory.xsd'): Promise<{ code: number; out: string }> {
  const catalog = path.join(dir, 'catalog.xml');
  await fsp.writeFile(
    catalog,
    `<?xml version="1.0"?>
<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">
  <system systemId="https://raw.githubusercontent.com/ascmitc/mhl/master/xsd/ASCMHL.xsd" uri="file://${path.join(XSD_DIR, 'ASCMHL.xsd')}"/>
  <uri name="https://raw.githubusercontent.com/ascmitc/mhl/master/xsd/ASCMHL.xsd" uri="file://${path.join(XSD_DIR, 'ASCMHL.xsd')}"/>
</catalog>
`,
  );
  try {
    const r = await run('xmllint', ['--nonet', '--noout', '--schema', path.join(XSD_DIR, schema), file], {
      env: { ...process.env, XML_CATALOG_FILES: catalog },
    });
    return { code: 0, out: r.stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, out: e.stderr };
  }
}

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-mhl-'));
  root = path.join(dir, 'export B-2024');
  await fsp.mkdir(path.join(root, 'DCIM', '100MEDIA'), { recursive: true });
  await fsp.writeFile(path.join(root, 'DCIM', '100MEDIA', 'DJI_0001.JPG'), Buffer.alloc(300_000, 7));
  await fsp.writeFile(path.join(root, 'DCIM', '100MEDIA', 'DJI_0002 & <b>.MP4'), 'video bytes');
  await fsp.writeFile(path.join(root, 'report.html'), '<html></html>');
  await fsp.writeFile(path.join(root, '.DS_Store'), 'ignored');
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const creator = { author: { name: 'J. Jansen', email: 'j.jansen@politie.example.nl', role: 'operator' }, location: 'Lelystad', comment: 'export of batch B-2024', hostname: 'station-1' };

describe('ASC MHL', () => {
  it('hashes match the reference vectors (C4, xxh128)', async () => {
    expect(c4OfBytes(Buffer.alloc(0))).toBe('c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDuni4Hirj75GEmTc1sFT');
    expect(c4OfBytes(Buffer.from('hello'))).toBe('c447Fm3BJZQ62765jMZJH4m28hrDM7Szbj9CUmj4F4gnvyDYXYz4WfnK2nYRhFvRgYEectEXYBYWLDpLo6XGNAfKdt');
    const f = path.join(dir, 'empty');
    await fsp.writeFile(f, '');
    const h = await hashFile(f, ['xxh128', 'sha1', 'md5', 'c4']);
    expect(h.hashes).toEqual({
      xxh128: '99aa06d3014798d86001c324468d497f',
      sha1: 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
      md5: 'd41d8cd98f00b204e9800998ecf8427e',
      c4: 'c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDuni4Hirj75GEmTc1sFT',
    });
  });

  it('writes generations that validate against the ASC MHL v2 schemas', async () => {
    const g1 = await writeMhlGeneration(root, { creator, process: 'transfer' });
    expect(g1.generation).toBe(1);
    expect(path.basename(g1.manifestPath)).toMatch(/^0001_export_B-2024_\d{4}-\d\d-\d\d_\d{6}Z\.mhl$/);
    const v1 = await xmllint(g1.manifestPath, 'ASCMHL.xsd');
    expect(v1.out).toMatch(/validates/);
    expect(v1.code).toBe(0);
    const chain = path.join(root, MHL_FOLDER, CHAIN_FILE);
    const vc = await xmllint(chain, 'ASCMHLDirectory.xsd');
    expect(vc.out).toMatch(/validates/);
    expect(vc.code).toBe(0);

    const xml = await fsp.readFile(g1.manifestPath, 'utf8');
    expect(xml).toContain('<tool version="0.1.0">kluis</tool>');
    expect(xml).toContain('<author email="j.jansen@politie.example.nl" role="operator">J. Jansen</author>');
    expect(xml).toContain('<process>transfer</process>');
    expect(xml).toContain('DJI_0002 &amp; &lt;b&gt;.MP4');
    expect(xml).not.toContain('.DS_Store</path>');
    expect(xml).toMatch(/<xxh128 action="original" hashdate="[^"]+Z">[0-9a-f]{32}<\/xxh128>/);
    expect(xml).toContain('<roothash>');
    expect(g1.files).toBe(3);

    // A second generation records the re-check as verified and extends the chain.
    const g2 = await writeMhlGeneration(root, { creator, process: 'in-place' });
    expect(g2.generation).toBe(2);
    expect(g2.failed).toEqual([]);
    expect(await fsp.readFile(g2.manifestPath, 'utf8')).toMatch(/action="verified"/);
    expect((await xmllint(g2.manifestPath, 'ASCMHL.xsd')).code).toBe(0);
    expect((await xmllint(chain, 'ASCMHLDirectory.xsd')).code).toBe(0);
    const chainXml = await fsp.readFile(chain, 'utf8');
    expect(chainXml).toContain(`<c4>${c4OfBytes(await fsp.readFile(g1.manifestPath))}</c4>`);
    expect(chainXml).toContain('sequencenr="2"');
  });

  it('verify passes on an intact folder and names a changed, a missing and a new file', async () => {
    await writeMhlGeneration(root, { creator, process: 'transfer' });
    const ok = await verifyMhl(root);
    expect(ok).toMatchObject({ ok: true, checked: 3, problems: [] });

    // Same size, one byte different.
    const jpg = path.join(root, 'DCIM', '100MEDIA', 'DJI_0001.JPG');
    const fh = await fsp.open(jpg, 'r+');
    await fh.write(Buffer.from([8]), 0, 1, 150_000);
    await fh.close();
    await fsp.rm(path.join(root, 'report.html'));
    await fsp.writeFile(path.join(root, 'DCIM', 'extra.txt'), 'x');
    const bad = await verifyMhl(root);
    expect(bad.ok).toBe(false);
    expect(bad.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'DCIM/100MEDIA/DJI_0001.JPG', code: 'changed' }),
        expect.objectContaining({ path: 'report.html', code: 'missing' }),
        expect.objectContaining({ path: 'DCIM/extra.txt', code: 'new' }),
      ]),
    );
    expect(bad.problems).toHaveLength(3);

    // Recording the failed check as a generation keeps "failed" in the history.
    const g2 = await writeMhlGeneration(root, { creator, process: 'in-place' });
    expect(g2.failed).toEqual(['DCIM/100MEDIA/DJI_0001.JPG']);
    expect(await fsp.readFile(g2.manifestPath, 'utf8')).toMatch(/action="failed"/);
  });

  it('detects a manifest changed after the chain recorded it, and a missing history', async () => {
    const g1 = await writeMhlGeneration(root, { creator, process: 'transfer' });
    const xml = await fsp.readFile(g1.manifestPath, 'utf8');
    await fsp.writeFile(g1.manifestPath, xml.replace('J. Jansen', 'Someone Else'));
    const res = await verifyMhl(root);
    expect(res.problems).toEqual([expect.objectContaining({ code: 'manifest-changed', path: `ascmhl/${path.basename(g1.manifestPath)}` })]);
    await expect(verifyMhl(path.join(root, 'DCIM'))).rejects.toMatchObject({ code: 'E_MHL_NO_HISTORY' });
  });
});

describe('kluis mhl verify', () => {
  async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
    const { Command } = await import('commander');
    const { register } = await import('../../src/cli/mhl.js');
    const program = new Command().exitOverride();
    register(program);
    let stdout = '';
    const ow = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
    process.exitCode = 0;
    try {
      await program.parseAsync(['node', 'kluis', ...args]);
    } finally {
      process.stdout.write = ow;
    }
    const code = Number(process.exitCode ?? 0);
    process.exitCode = 0;
    return { code, stdout };
  }

  it('exits 0 on a good folder and EXIT.mismatch naming a changed file', async () => {
    const { EXIT } = await import('../../src/errors.js');
    await writeMhlGeneration(root, { creator, process: 'transfer' });
    const ok = await cli(['mhl', 'verify', root, '--json']);
    expect(ok.code).toBe(EXIT.ok);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, checked: 3 });
    await fsp.appendFile(path.join(root, 'report.html'), ' ');
    const bad = await cli(['mhl', 'verify', root]);
    expect(bad.code).toBe(EXIT.mismatch);
    expect(bad.stdout).toMatch(/changed: report\.html differs from generation 1/);
  });
});
