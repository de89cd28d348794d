/**
 * Egress guard decisions without any connection: vendor deny list, onprem ranges, the
 * IP-to-country table (injected, shipped, and an admin MaxMind DB), and "every address must pass".
 * No test here opens a socket.
 */
import { describe, it, expect } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EgressGuard, isMetadataAddress, metadataHostOf, redactUrl, vendorDomainOf, type Refusal, type Resolver } from '../../src/targets/egress.js';
import { countryTableFor, countryTableOf, loadCountryDb, loadShippedTable, sha256Hex, shippedDbInfo, SHIPPED_DB_PIN } from '../../src/targets/country.js';
import { countryMmdb } from '../helpers/mmdb.js';
import { EgressSchema } from '../../src/config/schema.js';
import { KluisError } from '../../src/errors.js';

const table = countryTableOf(
  countryMmdb([
    ['127.0.0.2/32', 'NL'],
    ['127.0.0.3/32', 'DE'],
    ['2001:db8:1::/112', 'NL'],
    ['2001:db8:2::/112', 'US'],
  ]),
  'test table',
);

function guard(cls: 'onprem' | 'cloud', resolver: Resolver, egress = {}, refusals: Refusal[] = []): EgressGuard {
  return new EgressGuard({
    target: 't1',
    targetClass: cls,
    egress: EgressSchema.parse(egress),
    configDir: '/nonexistent',
    countryTable: table,
    resolver,
    onRefusal: (r) => refusals.push(r),
  });
}

const fixed =
  (map: Record<string, string[]>): Resolver =>
  async (h) =>
    (map[h] ?? []).map((a) => ({ address: a, family: a.includes(':') ? 6 : 4 }));

async function refusedWith(p: Promise<unknown>): Promise<KluisError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(KluisError);
  return e as KluisError;
}

describe('vendor deny list', () => {
  it('matches the vendor domains and their subdomains, case and trailing dot insensitive', () => {
    for (const h of ['dji.com', 'www.dji.com', 'API.DJI.COM.', 'flysafe-api.dji.com', 'cdn.djicdn.com', 'x.djiservice.org', 'skypixel.com', 'a.b.dji.net', 'flir.com']) {
      expect(vendorDomainOf(h), h).toBeDefined();
    }
    for (const h of ['notdji.com', 'dji.com.example.nl', 'example.nl', 'djicom.nl']) {
      expect(vendorDomainOf(h), h).toBeUndefined();
    }
  });

  it('refuses a vendor host for any class, before resolving it, and reports the refusal', async () => {
    for (const cls of ['onprem', 'cloud'] as const) {
      const refusals: Refusal[] = [];
      let resolved = 0;
      const g = guard(cls, async () => {
        resolved++;
        return [{ address: '127.0.0.2', family: 4 }];
      }, {}, refusals);
      expect(() => g.checkUrl(new URL('https://upload.dji.com/x'))).toThrowError(expect.objectContaining({ code: 'E_EGRESS_VENDOR' }));
      const e = await refusedWith(g.resolveAndCheck('upload.dji.com'));
      expect(e.code).toBe('E_EGRESS_VENDOR');
      expect(resolved).toBe(0);
      expect(refusals.map((r) => r.code)).toEqual(['E_EGRESS_VENDOR', 'E_EGRESS_VENDOR']);
      expect(refusals[0]).toMatchObject({ target: 't1', host: 'upload.dji.com' });
    }
  });
});

describe('onprem ranges', () => {
  it('allows loopback, RFC1918 and ULA; refuses public, link-local and unspecified addresses', async () => {
    const g = guard('onprem', fixed({}));
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', 'fd00::1', '::ffff:10.0.0.1']) {
      expect((await g.verdict(a)).allowed, a).toBe(true);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '169.254.1.1', 'fe80::1', '2001:db8::1', '0.0.0.0', '::', '100.64.0.1']) {
      const v = await g.verdict(a);
      expect(v.allowed, a).toBe(false);
      expect(v.code).toBe('E_EGRESS_RANGE');
    }
  });

  it('allows admin-listed ranges (egress.onpremRanges) and nothing next to them', async () => {
    const g = guard('onprem', fixed({}), { onpremRanges: ['198.51.100.0/24', '2001:db8:aa::/48'] });
    expect((await g.verdict('198.51.100.77')).allowed).toBe(true);
    expect((await g.verdict('198.51.101.1')).allowed).toBe(false);
    expect((await g.verdict('2001:db8:aa:1::5')).allowed).toBe(true);
    expect((await g.verdict('2001:db8:ab::5')).allowed).toBe(false);
  });

  it('refuses a malformed range at guard construction', () => {
    expect(() => guard('onprem', fixed({}), { onpremRanges: ['10.0.0.0/33'] })).toThrowError(expect.objectContaining({ code: 'E_CONFIG_INVALID' }));
  });

  it('refuses a name when ANY of its addresses is outside the ranges (no connection is attempted here)', async () => {
    const refusals: Refusal[] = [];
    const g = guard('onprem', fixed({ 'nas.local': ['10.0.0.5', '203.0.113.9'] }), {}, refusals);
    const e = await refusedWith(g.resolveAndCheck('nas.local'));
    expect(e.code).toBe('E_EGRESS_RANGE');
    expect(refusals[0]).toMatchObject({ target: 't1', host: 'nas.local', address: '203.0.113.9', code: 'E_EGRESS_RANGE' });
  });

  it('a password over plain http only to loopback', async () => {
    const g = guard('onprem', fixed({ lo: ['127.0.0.1'], nas: ['10.0.0.5'] }));
    await expect(g.resolveAndCheck('lo', { plaintextPassword: true })).resolves.toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect((await refusedWith(g.resolveAndCheck('nas', { plaintextPassword: true }))).code).toBe('E_EGRESS_PLAINTEXT');
    await expect(g.resolveAndCheck('nas')).resolves.toHaveLength(1);
  });
});

describe('cloud: country check', () => {
  it('allows a name whose every address (v4 and v6) is in NL; returns exactly the checked addresses', async () => {
    const g = guard('cloud', fixed({ 'nl.test': ['127.0.0.2', '2001:db8:1::5'] }));
    expect(await g.resolveAndCheck('nl.test')).toEqual([
      { address: '127.0.0.2', family: 4 },
      { address: '2001:db8:1::5', family: 6 },
    ]);
  });

  it('refuses a name that resolves to NL and elsewhere, naming the foreign address', async () => {
    const refusals: Refusal[] = [];
    const g = guard('cloud', fixed({ 'both.test': ['127.0.0.2', '127.0.0.3'] }), {}, refusals);
    const e = await refusedWith(g.resolveAndCheck('both.test'));
    expect(e.code).toBe('E_EGRESS_COUNTRY');
    expect(e.details).toMatchObject({ address: '127.0.0.3', retryable: false });
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.reason).toMatch(/DE/);
  });

  it('refuses a v6 address placed abroad, and an address the table does not know', async () => {
    const g = guard('cloud', fixed({ six: ['2001:db8:1::1', '2001:db8:2::1'], unknown: ['127.0.0.9'] }));
    expect((await refusedWith(g.resolveAndCheck('six'))).code).toBe('E_EGRESS_COUNTRY');
    const e = await refusedWith(g.resolveAndCheck('unknown'));
    expect(e.code).toBe('E_EGRESS_COUNTRY');
    expect(e.message).toMatch(/not in the IP-to-country table/);
  });

  it('loopback and private addresses are not automatically allowed for cloud targets', async () => {
    const g = guard('cloud', fixed({}));
    expect((await g.verdict('127.0.0.1')).allowed).toBe(false);
    expect((await g.verdict('10.0.0.1')).allowed).toBe(false);
  });

  it('other countries only when the config lists them', async () => {
    const g = guard('cloud', fixed({ de: ['127.0.0.3'] }), { countries: ['NL', 'DE'] });
    await expect(g.resolveAndCheck('de')).resolves.toHaveLength(1);
  });

  it('plain http is refused for cloud targets', () => {
    const g = guard('cloud', fixed({}));
    expect(() => g.checkUrl(new URL('http://nl.test/'))).toThrowError(expect.objectContaining({ code: 'E_EGRESS_PLAINTEXT' }));
    expect(() => g.checkUrl(new URL('https://nl.test/'))).not.toThrow();
  });

  it('a name that resolves to nothing or fails to resolve is unreachable (retryable), not allowed', async () => {
    const g = guard('cloud', async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    });
    const e = await refusedWith(g.resolveAndCheck('x.test'));
    expect(e.code).toBe('E_TARGET_UNREACHABLE');
    expect(e.details?.retryable).toBe(true);
    const g2 = guard('cloud', fixed({}));
    expect((await refusedWith(g2.resolveAndCheck('empty.test'))).code).toBe('E_TARGET_UNREACHABLE');
  });
});

describe('IP-to-country tables', () => {
  it('places every textual form of an address alike (compressed, expanded, upper case, IPv4-mapped)', () => {
    expect(table.lookup('2001:db8:1::1')).toBe('NL');
    expect(table.lookup('2001:0db8:0001:0000:0000:0000:0000:0001')).toBe('NL');
    expect(table.lookup('2001:DB8:2::1')).toBe('US');
    expect(table.lookup('::ffff:127.0.0.3')).toBe('DE');
    expect(table.lookup('2001:db8:1::1:0')).toBeUndefined();
    expect(table.lookup('not an address')).toBeUndefined();
  });

  it('loads an admin MaxMind DB (egress.ipCountryDb, relative to the config folder) and uses it, in either publisher shape', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-ipdb-'));
    try {
      for (const shape of ['ip-location-db', 'geoip2'] as const) {
        const db = countryMmdb([['127.0.0.2/32', 'NL'], ['127.0.0.3/32', 'BE']], { shape });
        await fsp.writeFile(path.join(dir, `${shape}.mmdb`), db);
        const t = await countryTableFor(EgressSchema.parse({ ipCountryDb: `${shape}.mmdb`, ipCountryDbSha256: sha256Hex(db) }), dir);
        expect(t.lookup('127.0.0.2'), shape).toBe('NL');
        expect(t.lookup('127.0.0.3'), shape).toBe('BE');
        expect(t.lookup('127.0.0.4'), shape).toBeUndefined();
      }
      // A pinned file that is no MaxMind DB (here a table in the CSV form kluis once read).
      const csv = '127.0.0.2,127.0.0.2,NL\n';
      await fsp.writeFile(path.join(dir, 'table.csv'), csv);
      await expect(loadCountryDb(path.join(dir, 'table.csv'), sha256Hex(Buffer.from(csv)))).rejects.toMatchObject({ code: 'E_CONFIG_IPDB' });
      await expect(loadCountryDb(path.join(dir, 'missing.mmdb'), '0'.repeat(64))).rejects.toMatchObject({ code: 'E_CONFIG_IPDB' });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('the shipped table places well-known RIPE NCC address space in NL and other space elsewhere', async () => {
    const info = await shippedDbInfo();
    expect(info.version).toMatch(/^\d+\.\d+\.\d{10}$/);
    const t = await countryTableFor(EgressSchema.parse({}), '/');
    // 193.0.0.0/21 is the RIPE NCC's own network in Amsterdam; 2001:67c:2e8::/48 likewise.
    expect(t.lookup('193.0.6.139')).toBe('NL');
    expect(t.lookup('2001:67c:2e8:22::c100:68b')).toBe('NL');
    // 1.0.0.0/24 is APNIC/Cloudflare space in Australia per the RIR data.
    expect(t.lookup('1.0.0.1')).not.toBe('NL');
    expect(t.lookup('127.0.0.1')).toBeUndefined();
  });
});

/**
 * Issue 15 item 5: fd00:ec2::254 (AWS's instance metadata over IPv6) is a ULA address, so it
 * counted as on-prem; link-local 169.254.169.254 could be let in by listing 169.254/16 in
 * egress.onpremRanges. Metadata services hand out credentials: refused for every class, always.
 */
describe('cloud metadata services', () => {
  it('are refused for onprem targets although ULA, and although an admin range lists them', async () => {
    const g = guard('onprem', fixed({}), { onpremRanges: ['169.254.0.0/16', 'fd00:ec2::/32'] });
    for (const a of ['fd00:ec2::254', 'fd00:0ec2:0000:0000:0000:0000:0000:0254', '169.254.169.254', '::ffff:169.254.169.254', '169.254.170.2', 'fd20:ce::254', '100.100.100.200', '168.63.129.16']) {
      const v = await g.verdict(a);
      expect(v.allowed, a).toBe(false);
      expect(v.code, a).toBe('E_EGRESS_METADATA');
    }
    // Neighbours stay what they were: ULA and an admin-listed link-local address.
    expect((await g.verdict('fd00::1')).allowed).toBe(true);
    expect((await g.verdict('fd00:ec3::254')).allowed).toBe(true);
    expect((await g.verdict('169.254.1.1')).allowed).toBe(true);
  });

  it('are refused for cloud targets even where the country table places them in an allowed country', async () => {
    const nlEverywhere = countryTableOf(countryMmdb([['::/0', 'NL'], ['0.0.0.0/0', 'NL']]), 'NL everywhere');
    const g = new EgressGuard({ target: 't1', targetClass: 'cloud', egress: EgressSchema.parse({}), configDir: '/nonexistent', countryTable: nlEverywhere, resolver: fixed({}) });
    expect(await g.verdict('169.254.169.254')).toMatchObject({ allowed: false, code: 'E_EGRESS_METADATA' });
    expect(await g.verdict('fd00:ec2::254')).toMatchObject({ allowed: false, code: 'E_EGRESS_METADATA' });
    expect(await g.verdict('193.0.6.139')).toMatchObject({ allowed: true, country: 'NL' });
  });

  it('a name that resolves to a metadata address is refused before any connection; metadata host names at once', async () => {
    const refusals: Refusal[] = [];
    const g = guard('onprem', fixed({ 'nas.example': ['10.0.0.5', 'fd00:ec2::254'] }), {}, refusals);
    expect((await refusedWith(g.resolveAndCheck('nas.example'))).code).toBe('E_EGRESS_METADATA');
    expect(refusals.map((r) => r.code)).toEqual(['E_EGRESS_METADATA']);
    expect(() => g.checkUrl(new URL('http://metadata.google.internal/computeMetadata/v1/'))).toThrowError(expect.objectContaining({ code: 'E_EGRESS_METADATA' }));
    expect(() => g.checkUrl(new URL('http://[fd00:ec2::254]/latest/meta-data/'))).toThrowError(expect.objectContaining({ code: 'E_EGRESS_METADATA' }));
    expect(() => g.checkUrl(new URL('http://2852039166/'))).toThrowError(expect.objectContaining({ code: 'E_EGRESS_METADATA' })); // 169.254.169.254 as one number
  });

  it('names what it matched', () => {
    expect(isMetadataAddress('fd00:ec2::254')).toBe(true);
    expect(isMetadataAddress('192.168.1.1')).toBe(false);
    expect(metadataHostOf('[FD00:EC2::254]')).toMatch(/metadata address/);
    expect(metadataHostOf('Metadata.Google.Internal.')).toMatch(/metadata\.google\.internal/);
    expect(metadataHostOf('s3.example.nl')).toBeUndefined();
  });
});

describe('URLs printed', () => {
  it('never carry a user name or password', () => {
    expect(redactUrl('https://alice:s3cret@s3.example.nl:8443/bucket?x=1')).toBe('https://REDACTED@s3.example.nl:8443/bucket?x=1');
    expect(redactUrl('https://:s3cret@dav.example.nl/')).not.toContain('s3cret');
    expect(redactUrl('https://dav.example.nl/dav/')).toBe('https://dav.example.nl/dav/');
    expect(redactUrl('store')).toBe('store');
  });
});

/**
 * Issue 15 item 5: the IP-to-country table was not covered by anything; a table rewritten to
 * `0.0.0.0-255.255.255.255 NL` placed 8.8.8.8 in the Netherlands. Now the shipped table is
 * pinned in code and an admin table in the signed config; a changed table is refused (fail closed).
 */
describe('IP-to-country tables are pinned', () => {
  it('the pin in the code is the installed package (version and the SHA-256 of its file)', async () => {
    const info = await shippedDbInfo();
    expect(info.version).toBe(SHIPPED_DB_PIN.version);
    expect(sha256Hex(await fsp.readFile(info.file)), info.file).toBe(SHIPPED_DB_PIN.sha256);
  });

  it('a shipped table rewritten to place everything in NL is refused (E_EGRESS_IPDB_HASH), never used', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-ipdb-shipped-'));
    try {
      const info = await shippedDbInfo();
      const copy = path.join(dir, path.basename(info.file));
      await fsp.copyFile(info.file, copy);
      expect((await loadShippedTable(dir)).lookup('8.8.8.8')).not.toBe('NL');
      const nlEverywhere = countryMmdb([['0.0.0.0/0', 'NL'], ['::/0', 'NL']]);
      expect(countryTableOf(nlEverywhere, 'rewritten').lookup('8.8.8.8')).toBe('NL'); // what it would do if used
      await fsp.writeFile(copy, nlEverywhere);
      await expect(loadShippedTable(dir)).rejects.toMatchObject({ code: 'E_EGRESS_IPDB_HASH' });
      // One byte changed in place is refused as well.
      const bytes = await fsp.readFile(info.file);
      const mid = bytes.length >> 1;
      bytes.writeUInt8(bytes[mid]! ^ 1, mid);
      await fsp.writeFile(copy, bytes);
      await expect(loadShippedTable(dir)).rejects.toMatchObject({ code: 'E_EGRESS_IPDB_HASH' });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('an admin table must be pinned in the config, and is refused once changed: a cloud target then gets no verdict but the refusal', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-ipdb-admin-'));
    try {
      const db = countryMmdb([['8.8.8.0/24', 'US']]);
      await fsp.writeFile(path.join(dir, 'ipdb.mmdb'), db);
      expect(EgressSchema.safeParse({ ipCountryDb: 'ipdb.mmdb' }).success).toBe(false);
      const egress = EgressSchema.parse({ ipCountryDb: 'ipdb.mmdb', ipCountryDbSha256: sha256Hex(db) });
      const g = new EgressGuard({ target: 't1', targetClass: 'cloud', egress, configDir: dir, resolver: fixed({}) });
      expect(await g.verdict('8.8.8.8')).toMatchObject({ allowed: false, country: 'US' });
      // The same config on a station whose table was rewritten (a table loaded and checked
      // once stays in memory as it was checked; a changed file is met at the next start).
      const other = path.join(dir, 'other');
      await fsp.mkdir(other);
      await fsp.writeFile(path.join(other, 'ipdb.mmdb'), countryMmdb([['0.0.0.0/0', 'NL'], ['::/0', 'NL']]));
      const g2 = new EgressGuard({ target: 't1', targetClass: 'cloud', egress, configDir: other, resolver: fixed({}) });
      await expect(g2.verdict('8.8.8.8')).rejects.toMatchObject({ code: 'E_EGRESS_IPDB_HASH' });
      await expect(g2.resolveAndCheck('8.8.8.8')).rejects.toMatchObject({ code: 'E_EGRESS_IPDB_HASH' });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
