/**
 * `kluis config sign|check` and `kluis targets add|list|remove|test`, in-process through commander
 * with the real command modules, on a station made by the real `kluis init` module. Checks that a
 * tampered (one byte) or wrongly signed config is refused, that admin edits re-sign, that vendor
 * and plaintext-cloud targets are refused at add time, and what `targets test` reports.
 */
import { describe, it, expect, vi, beforeEach, afterEach } from 'vitest';
import { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as initCmd from '../../src/cli/init.js';
import * as configCmd from '../../src/cli/config.js';
import * as targetsCmd from '../../src/cli/targets.js';
import { loadConfig, readConfigFile, signatureMessage, writeSignedConfig } from '../../src/config/load.js';
import { formatPublicKey, generateKey, readSecretKeyFile, sign, writeSecretKeyFile } from '../../src/seal/keys.js';
import { REVISION_STATE_FILE } from '../../src/config/revision.js';
import { countryMmdb } from '../helpers/mmdb.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  process.exitCode = 0;
  try {
    const p = new Command().name('kluis').exitOverride();
    initCmd.register(p);
    configCmd.register(p);
    targetsCmd.register(p);
    try {
      await p.parseAsync(['node', 'kluis', ...argv]);
    } catch {
      process.exitCode = 2;
    }
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, out: out.join(''), err: err.join('') };
}

let dir = '';
let cfg = '';
let admin = '';

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-cfgcli-'));
  const r = await run('init', '--dir', dir, '--station', 'test-station', '--json');
  expect(r.code, r.err).toBe(0);
  cfg = path.join(dir, 'kluis.json');
  admin = path.join(dir, 'keys', 'admin.key');
});

afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('kluis config check / sign', () => {
  it('explains a freshly initialised config: signed by the pinned admin key, accepted, targets ok', async () => {
    const r = await run('config', 'check', '--config', cfg, '--json');
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ signed: true, accepted: true });
    expect(doc.signer).toBe(doc.pinnedAdmin);
    expect(doc.targets).toEqual([expect.objectContaining({ name: 'local', type: 'fs', allowed: true })]);
  });

  it('a config with one byte changed is refused (E_CONFIG_SIGNATURE) until the admin signs it again', async () => {
    const text = await fsp.readFile(cfg, 'utf8');
    const i = text.indexOf('test-station');
    await fsp.writeFile(cfg, text.slice(0, i) + 'T' + text.slice(i + 1));
    await expect(loadConfig(cfg)).rejects.toMatchObject({ code: 'E_CONFIG_SIGNATURE' });
    const r = await run('config', 'check', '--config', cfg, '--json');
    expect(r.code).toBe(7);
    expect(JSON.parse(r.out)).toMatchObject({ accepted: false, error: { code: 'E_CONFIG_SIGNATURE' } });
    const l = await run('targets', 'list', '--config', cfg);
    expect(l.code).toBe(7);
    expect(l.err).toMatch(/kluis: error: .*changed after it was signed.*\[E_CONFIG_SIGNATURE\]/);
    const s = await run('config', 'sign', '--config', cfg, '--admin-key', admin);
    expect(s.code, s.err).toBe(0);
    expect((await loadConfig(cfg)).config.station).toBe('Test-station');
  });

  it('a config signed by another admin key is refused (E_CONFIG_WRONG_SIGNER), and sign refuses that key', async () => {
    const other = generateKey('admin');
    const otherFile = path.join(dir, 'other-admin.key');
    await writeSecretKeyFile(otherFile, other);
    const { raw } = await readConfigFile(cfg);
    await writeSignedConfig(cfg, raw, other);
    await expect(loadConfig(cfg)).rejects.toMatchObject({ code: 'E_CONFIG_WRONG_SIGNER' });
    const c = await run('config', 'check', '--config', cfg, '--json');
    expect(c.code).toBe(7);
    expect(JSON.parse(c.out).error.code).toBe('E_CONFIG_WRONG_SIGNER');
    const s = await run('config', 'sign', '--config', cfg, '--admin-key', otherFile);
    expect(s.code).toBe(7);
    expect(s.err).toMatch(/E_CONFIG_WRONG_SIGNER/);
  });

  it('an unsigned config is refused (E_CONFIG_UNSIGNED)', async () => {
    const { raw } = await readConfigFile(cfg);
    await fsp.writeFile(cfg, JSON.stringify({ config: raw }));
    const r = await run('config', 'check', '--config', cfg, '--json');
    expect(r.code).toBe(7);
    expect(JSON.parse(r.out)).toMatchObject({ signed: false, accepted: false, error: { code: 'E_CONFIG_UNSIGNED' } });
  });

  it('sign refuses a config naming a vendor host or a plain-http cloud target, and leaves the file as it was', async () => {
    const before = await fsp.readFile(cfg, 'utf8');
    const { raw } = await readConfigFile(cfg);
    const withVendor = { ...(raw as object), targets: [...(raw as { targets: unknown[] }).targets, { name: 'dji', type: 's3', url: 'https://s3.djicdn.com', bucket: 'b', class: 'cloud' }] };
    const edited = JSON.stringify({ config: withVendor });
    await fsp.writeFile(cfg, edited);
    const r = await run('config', 'sign', '--config', cfg, '--admin-key', admin);
    expect(r.code).toBe(8);
    expect(r.err).toMatch(/E_EGRESS_VENDOR/);
    expect(await fsp.readFile(cfg, 'utf8')).toBe(edited);
    await fsp.writeFile(cfg, before);
  });

  it('sign refuses an admin IP-to-country table that does not match its pin, or is no MaxMind DB', async () => {
    const { raw } = await readConfigFile(cfg);
    const signWith = async (file: string, bytes: Buffer, pin: string): Promise<{ code: number; err: string }> => {
      await fsp.writeFile(path.join(dir, file), bytes);
      await fsp.writeFile(cfg, JSON.stringify({ config: { ...(raw as object), egress: { ipCountryDb: file, ipCountryDbSha256: pin } } }));
      return run('config', 'sign', '--config', cfg, '--admin-key', admin);
    };
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    const db = countryMmdb([['127.0.0.2/32', 'NL']]);
    const csv = Buffer.from('127.0.0.2,127.0.0.2,NL\n');
    const wrongPin = await signWith('ipdb.mmdb', db, sha(csv));
    expect(wrongPin.code).toBe(8);
    expect(wrongPin.err).toMatch(/E_EGRESS_IPDB_HASH/);
    const notMmdb = await signWith('ipdb.csv', csv, sha(csv));
    expect(notMmdb.code).toBe(7);
    expect(notMmdb.err).toMatch(/E_CONFIG_IPDB/);
    const good = await signWith('ipdb.mmdb', db, sha(db));
    expect(good.code, good.err).toBe(0);
  });
});

describe('kluis targets add / list / remove', () => {
  it('adds a Dutch cloud WebDAV target, re-signed so the station accepts it; list shows it; remove takes it out', async () => {
    const a = await run('targets', 'add', 'stack', '--config', cfg, '--type', 'webdav', '--url', 'https://dav.example.nl/remote.php/dav/files/kluis/', '--class', 'cloud', '--required', '--admin-key', admin, '--json');
    expect(a.code, a.err).toBe(0);
    const loaded = await loadConfig(cfg);
    expect(loaded.config.targets.map((t) => [t.name, t.class, t.required])).toEqual([
      ['local', 'onprem', true],
      ['stack', 'cloud', true],
    ]);
    const l = await run('targets', 'list', '--config', cfg, '--json');
    expect(JSON.parse(l.out).targets.map((t: { name: string }) => t.name)).toEqual(['local', 'stack']);
    const rm = await run('targets', 'remove', 'stack', '--config', cfg, '--admin-key', admin);
    expect(rm.code, rm.err).toBe(0);
    expect((await loadConfig(cfg)).config.targets.map((t) => t.name)).toEqual(['local']);
  });

  it('refuses vendor domains and plain-http cloud targets at add time; the config is untouched', async () => {
    const before = await fsp.readFile(cfg, 'utf8');
    const v = await run('targets', 'add', 'cloud', '--config', cfg, '--type', 's3', '--url', 'https://upload.dji.com', '--bucket', 'b', '--class', 'cloud', '--admin-key', admin);
    expect(v.code).toBe(8);
    expect(v.err).toMatch(/E_EGRESS_VENDOR/);
    const p = await run('targets', 'add', 'cloud', '--config', cfg, '--type', 'webdav', '--url', 'http://dav.example.nl/', '--class', 'cloud', '--admin-key', admin);
    expect(p.code).toBe(8);
    expect(p.err).toMatch(/E_EGRESS_PLAINTEXT/);
    const dup = await run('targets', 'add', 'local', '--config', cfg, '--type', 'fs', '--url', 'x', '--admin-key', admin);
    expect(dup.code).toBe(7);
    expect(await fsp.readFile(cfg, 'utf8')).toBe(before);
  });

  it('refuses to edit with a key other than the pinned admin key', async () => {
    const otherFile = path.join(dir, 'other-admin.key');
    await writeSecretKeyFile(otherFile, generateKey('admin'));
    const before = await fsp.readFile(cfg, 'utf8');
    const r = await run('targets', 'add', 'nas', '--config', cfg, '--type', 'fs', '--url', '/mnt/nas', '--admin-key', otherFile);
    expect(r.code).toBe(7);
    expect(r.err).toMatch(/E_CONFIG_WRONG_SIGNER/);
    expect(await fsp.readFile(cfg, 'utf8')).toBe(before);
  });
});

describe('kluis targets test', () => {
  it('reports a verdict per resolved address and connectivity, without storing anything', async () => {
    // An admin IP-to-country table (egress.ipCountryDb) placing 127.0.0.3 in DE.
    const ipdb = countryMmdb([['127.0.0.2/32', 'NL'], ['127.0.0.3/32', 'DE']]);
    await fsp.writeFile(path.join(dir, 'ipdb.mmdb'), ipdb);
    // A listener nobody answers on (it counts connections) stands in for a foreign server.
    let connections = 0;
    const srv = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.3', r));
    const port = (srv.address() as net.AddressInfo).port;
    // A closed port on loopback for an onprem server that is down.
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    try {
      const { raw } = await readConfigFile(cfg);
      const next = {
        ...(raw as object),
        egress: { ipCountryDb: 'ipdb.mmdb', ipCountryDbSha256: createHash('sha256').update(ipdb).digest('hex') },
        targets: [
          ...(raw as { targets: unknown[] }).targets,
          { name: 'abroad', type: 'webdav', url: `https://127.0.0.3:${port}/dav/`, class: 'cloud', required: false },
          { name: 'nas', type: 'webdav', url: `http://127.0.0.1:${closedPort}/dav/`, class: 'onprem', required: false },
        ],
      };
      await fsp.writeFile(cfg, JSON.stringify({ config: next }));
      expect((await run('config', 'sign', '--config', cfg, '--admin-key', admin)).code).toBe(0);
      const storeBefore = await fsp.readdir(path.join(dir, 'store'));
      const r = await run('targets', 'test', '--config', cfg, '--json');
      expect(r.code).toBe(8);
      const doc = JSON.parse(r.out) as { targets: Array<{ name: string; ok: boolean; method: string; addresses: Array<{ address: string; country?: string; allowed: boolean }>; error?: { code: string } }> };
      const by = Object.fromEntries(doc.targets.map((t) => [t.name, t]));
      expect(by.local).toMatchObject({ ok: true });
      expect(by.abroad).toMatchObject({ ok: false, method: 'PROPFIND Depth 0', addresses: [{ address: '127.0.0.3', country: 'DE', allowed: false }], error: { code: 'E_EGRESS_COUNTRY' } });
      expect(by.nas).toMatchObject({ ok: false, addresses: [{ address: '127.0.0.1', allowed: true }], error: { code: 'E_TARGET_UNREACHABLE' } });
      expect(connections).toBe(0);
      expect(await fsp.readdir(path.join(dir, 'store'))).toEqual(storeBefore);
      const text = await run('targets', 'test', '--config', cfg);
      expect(text.out).toMatch(/REFUSED 127\.0\.0\.3 \(DE\)/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});

/**
 * Issue 15 item 5: `targets add` let into the signed config a URL with user:pw@ (and `targets
 * list` printed it), an fs target of class cloud (no check at all), and a cloud metadata address
 * (fd00:ec2::254 counted as on-prem). All three are refused at add time; the file stays as it was.
 */
describe('targets add refuses what no config may hold', () => {
  it('a URL with user:password@, an fs target as cloud, cloud metadata addresses and names', async () => {
    const before = await fsp.readFile(cfg, 'utf8');
    const cred = await run('targets', 'add', 'nas', '--config', cfg, '--type', 'webdav', '--url', 'https://kluis:s3cret@nas.example.nl/dav/', '--admin-key', admin);
    expect(cred.code).toBe(7);
    expect(cred.err).toMatch(/E_CONFIG_CREDENTIALS/);
    expect(cred.err).not.toContain('s3cret');
    const fsCloud = await run('targets', 'add', 'mount', '--config', cfg, '--type', 'fs', '--url', '/mnt/cloud', '--class', 'cloud', '--admin-key', admin);
    expect(fsCloud.code).toBe(8);
    expect(fsCloud.err).toMatch(/E_POLICY_FS_CLOUD/);
    for (const url of ['http://[fd00:ec2::254]/', 'http://169.254.169.254/latest/', 'https://metadata.google.internal/', 'http://[::ffff:169.254.169.254]/']) {
      const m = await run('targets', 'add', 'meta', '--config', cfg, '--type', 's3', '--url', url, '--bucket', 'b', '--admin-key', admin);
      expect(m.code, url).toBe(8);
      expect(m.err, url).toMatch(/E_EGRESS_METADATA/);
    }
    expect(await fsp.readFile(cfg, 'utf8')).toBe(before);
    // The same targets written into the file by hand are refused by `config sign` too.
    const { raw } = await readConfigFile(cfg);
    for (const t of [
      { name: 'x', type: 'webdav', url: 'https://u:p@nas.example.nl/' },
      { name: 'x', type: 'fs', url: 'cloud', class: 'cloud' },
      { name: 'x', type: 'webdav', url: 'https://[fd00:ec2::254]/' },
    ]) {
      await fsp.writeFile(cfg, JSON.stringify({ config: { ...(raw as object), targets: [...(raw as { targets: unknown[] }).targets, t] } }));
      const r = await run('config', 'sign', '--config', cfg, '--admin-key', admin);
      expect(r.code, JSON.stringify(t)).not.toBe(0);
    }
  });

  it('targets list, targets test and config check never print the password of a URL signed before this check', async () => {
    const { raw } = await readConfigFile(cfg);
    const next = { ...(raw as object), targets: [...(raw as { targets: unknown[] }).targets, { name: 'old', type: 'webdav', url: 'https://kluis:s3cret@127.0.0.1:1/dav/', required: false }] };
    await writeSignedConfig(cfg, next, await readSecretKeyFile(admin, 'admin')); // as an older kluis let it in
    for (const argv of [['targets', 'list'], ['targets', 'list', '--json'], ['config', 'check'], ['config', 'check', '--json'], ['targets', 'test', '--json']]) {
      const r = await run(...argv, '--config', cfg);
      expect(r.out + r.err, argv.join(' ')).not.toContain('s3cret');
      expect(r.out, argv.join(' ')).toContain('127.0.0.1');
    }
  });
});

/**
 * Issue 15 item 3: add a target, remove it, put the older signed file back: it was accepted, and
 * ingest delivered to the removed target; `signedAt` sat outside the signature. Now `revision` and
 * `signedAt` are signed, every signing raises the revision, and the station remembers the highest
 * it accepted (state file and audit log) and refuses anything older.
 */
describe('config revisions', () => {
  it('each signing raises the revision; signedAt is signed', async () => {
    expect((await loadConfig(cfg)).config.revision).toBe(1);
    expect((await run('targets', 'add', 'nas', '--config', cfg, '--type', 'fs', '--url', 'nas', '--admin-key', admin)).code).toBe(0);
    expect((await loadConfig(cfg)).config.revision).toBe(2);
    expect((await run('targets', 'remove', 'nas', '--config', cfg, '--admin-key', admin)).code).toBe(0);
    expect((await loadConfig(cfg)).config.revision).toBe(3);
    const s = await run('config', 'sign', '--config', cfg, '--admin-key', admin, '--json');
    expect(JSON.parse(s.out)).toMatchObject({ revision: 4 });
    const doc = JSON.parse(await fsp.readFile(cfg, 'utf8')) as { config: { signedAt: string }; signature: Record<string, unknown> };
    expect(doc.signature.signedAt).toBeUndefined();
    doc.config.signedAt = '1999-01-01T00:00:00.000Z';
    await fsp.writeFile(cfg, JSON.stringify(doc));
    await expect(loadConfig(cfg)).rejects.toMatchObject({ code: 'E_CONFIG_SIGNATURE' });
  });

  it('an older signed config put back is refused (E_CONFIG_REPLAYED), also when the state file is gone; the audit log records both', async () => {
    expect((await run('targets', 'add', 'gone', '--config', cfg, '--type', 'fs', '--url', 'gone', '--admin-key', admin)).code).toBe(0);
    const withTarget = await fsp.readFile(cfg, 'utf8');
    expect((await run('targets', 'remove', 'gone', '--config', cfg, '--admin-key', admin)).code).toBe(0);
    await fsp.writeFile(cfg, withTarget);
    await expect(loadConfig(cfg)).rejects.toMatchObject({ code: 'E_CONFIG_REPLAYED', message: expect.stringMatching(/revision 2 .*older than revision 3/) });
    const l = await run('targets', 'list', '--config', cfg);
    expect(l.code).toBe(7);
    expect(l.err).toMatch(/\[E_CONFIG_REPLAYED\]/);
    expect(l.err).toMatch(/kluis: hint: .*kluis config sign gives it revision 4/);
    const c = await run('config', 'check', '--config', cfg, '--json');
    expect(JSON.parse(c.out)).toMatchObject({ accepted: false, revision: 2, stationRevision: 3, error: { code: 'E_CONFIG_REPLAYED' } });
    // The state file removed (or put back from an old copy): the audit log still remembers.
    await fsp.rm(path.join(dir, 'state', REVISION_STATE_FILE));
    await expect(loadConfig(cfg)).rejects.toMatchObject({ code: 'E_CONFIG_REPLAYED' });
    const audit = (await fsp.readFile(path.join(dir, 'state', 'audit.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((x) => JSON.parse(x) as { type: string; revision?: number });
    expect(audit.filter((e) => e.type === 'config-changed').map((e) => e.revision)).toEqual([1, 2, 3]);
    // The admin signs the file they mean: it gets a revision above everything seen, and is accepted.
    const s = await run('config', 'sign', '--config', cfg, '--admin-key', admin, '--json');
    expect(s.code, s.err).toBe(0);
    expect(JSON.parse(s.out).revision).toBe(4);
    expect((await loadConfig(cfg)).config.targets.map((t) => t.name)).toEqual(['local', 'gone']);
  });

  it('another config under a revision the station accepted is refused (E_CONFIG_REVISION_CONFLICT)', async () => {
    const key = await readSecretKeyFile(admin, 'admin');
    const { raw } = await readConfigFile(cfg);
    await writeSignedConfig(cfg, raw, key); // revision 2, remembered
    const accepted = JSON.parse(await fsp.readFile(cfg, 'utf8')) as { config: { revision: number } };
    // Signed away from this station (no state there), from the same revision-1 file: revision 2 too.
    const elsewhere = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-cfg-elsewhere-')), 'kluis.json');
    await writeSignedConfig(elsewhere, { ...(raw as object), policy: { thermal: 'remove' } }, key);
    expect((JSON.parse(await fsp.readFile(elsewhere, 'utf8')) as { config: { revision: number } }).config.revision).toBe(accepted.config.revision);
    await fsp.copyFile(elsewhere, cfg);
    await expect(loadConfig(cfg)).rejects.toMatchObject({ code: 'E_CONFIG_REVISION_CONFLICT' });
  });

  it('a config signed before revisions is refused with the hint to sign it again, which fixes it', async () => {
    const { raw } = await readConfigFile(cfg);
    const old = { ...(raw as Record<string, unknown>) };
    delete old.revision;
    delete old.signedAt;
    const key = await readSecretKeyFile(admin, 'admin');
    // What an older kluis wrote: no revision, signedAt beside the signature.
    const value = Buffer.from(sign(key, signatureMessage(old))).toString('base64');
    await fsp.writeFile(cfg, JSON.stringify({ config: old, signature: { alg: 'ed25519', key: formatPublicKey(key.publicKey), value, signedAt: '2025-01-01T00:00:00.000Z' } }));
    await expect(loadConfig(cfg)).rejects.toMatchObject({ code: 'E_CONFIG_NO_REVISION', hint: expect.stringContaining('kluis config sign') });
    const s = await run('config', 'sign', '--config', cfg, '--admin-key', admin);
    expect(s.code, s.err).toBe(0);
    expect((await loadConfig(cfg)).config.revision).toBe(2);
  });
});
