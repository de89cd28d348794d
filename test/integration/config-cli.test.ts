/**
 * `kluis config sign|check` and `kluis targets add|list|remove|test`, in-process through commander
 * with the real command modules, on a station made by the real `kluis init` module. Checks that a
 * tampered (one byte) or wrongly signed config is refused, that admin edits re-sign, that vendor
 * and plaintext-cloud targets are refused at add time, and what `targets test` reports.
 */
import { describe, it, expect, vi, beforeEach, afterEach } from 'vitest';
import { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as initCmd from '../../src/cli/init.js';
import * as configCmd from '../../src/cli/config.js';
import * as targetsCmd from '../../src/cli/targets.js';
import { loadConfig, readConfigFile, writeSignedConfig } from '../../src/config/load.js';
import { generateKey, writeSecretKeyFile } from '../../src/seal/keys.js';

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
    await fsp.writeFile(path.join(dir, 'ipdb.csv'), '127.0.0.2,127.0.0.2,NL\n127.0.0.3,127.0.0.3,DE\n');
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
        egress: { ipCountryDb: 'ipdb.csv' },
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
