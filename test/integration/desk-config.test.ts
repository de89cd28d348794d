/**
 * `kluis init` for a second station of one organisation and for an evidence desk, in-process
 * through commander with the real command modules. A second station is signed by the given admin
 * and seals to the given recipient (a file or a kluis1… key), with no evidence or admin key of its
 * own. A desk config is signed by the admin, holds no station key, trusts each station's key,
 * merges shared targets, leaves out a store inside a station's folder (saying so), refuses a
 * station of another admin, and is refused where a station config is needed. It is updated to a
 * new revision, and the older one put back is refused. Its targets refuse every write.
 */
import { describe, it, expect, vi, beforeEach, afterEach } from 'vitest';
import { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as initCmd from '../../src/cli/init.js';
import * as targetsCmd from '../../src/cli/targets.js';
import { loadConfig } from '../../src/config/load.js';
import { loadDeskConfig } from '../../src/config/desk.js';
import { loadSource, openSourceTarget } from '../../src/evidence/source.js';
import { readPublicKey } from '../../src/seal/keys.js';
import { EXIT } from '../../src/errors.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  process.exitCode = 0;
  try {
    const p = new Command().name('kluis').exitOverride();
    initCmd.register(p);
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
const at = (...p: string[]): string => path.join(dir, ...p);

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-desk-cfg-'));
  expect((await run('init', '--dir', at('A'), '--station', 'a')).code).toBe(0);
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('a second station of the same organisation', () => {
  it('is signed by the given admin and seals to the given recipient; it holds neither of their secret keys', async () => {
    const r = await run('init', '--dir', at('B'), '--station', 'b', '--admin-key', at('A', 'keys', 'admin.key'), '--recipient', at('A', 'keys', 'evidence.pub'), '--json');
    expect(r.code, r.err).toBe(0);
    const a = await loadConfig(at('A', 'kluis.json'));
    const b = await loadConfig(at('B', 'kluis.json'));
    expect(b.adminKey).toEqual(a.adminKey); // B pins A's admin key and its config verifies with it
    expect(b.config.recipients).toEqual(a.config.recipients);
    expect(b.config.stationKey).not.toBe(a.config.stationKey);
    expect((await fsp.readdir(at('B', 'keys'))).sort()).toEqual(['admin.pub', 'station.key', 'station.pub']);
    expect(r.err).not.toMatch(/belong elsewhere/);
  });

  it('takes --recipient as a kluis1… key too, and refuses --admin-key without one', async () => {
    const pub = (await fsp.readFile(at('A', 'keys', 'evidence.pub'), 'utf8')).trim();
    expect((await run('init', '--dir', at('C'), '--station', 'c', '--admin-key', at('A', 'keys', 'admin.key'), '--recipient', pub)).code).toBe(0);
    expect((await loadConfig(at('C', 'kluis.json'))).config.recipients).toEqual([pub]);
    const bad = await run('init', '--dir', at('D'), '--station', 'd', '--admin-key', at('A', 'keys', 'admin.key'));
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.err).toMatch(/give --recipient with --admin-key/);
    await expect(fsp.stat(at('D'))).rejects.toThrow(); // nothing half made
    const wrong = await run('init', '--dir', at('E'), '--station', 'e', '--admin-key', at('A', 'keys', 'admin.key'), '--recipient', at('A', 'keys', 'station.pub'));
    expect(wrong.code).not.toBe(0);
    await expect(fsp.stat(at('E'))).rejects.toThrow();
  });
});

describe('kluis init --desk', () => {
  beforeEach(async () => {
    expect((await run('init', '--dir', at('B'), '--station', 'b', '--admin-key', at('A', 'keys', 'admin.key'), '--recipient', at('A', 'keys', 'evidence.pub'))).code).toBe(0);
    await fsp.mkdir(at('nas'));
    for (const s of ['A', 'B']) {
      const r = await run('targets', 'add', 'nas', '--config', at(s, 'kluis.json'), '--type', 'fs', '--url', at('nas'), '--required', '--admin-key', at('A', 'keys', 'admin.key'));
      expect(r.code, r.err).toBe(0);
    }
    // Only B has this one, under a name A uses for another place.
    const r = await run('targets', 'add', 'local2', '--config', at('B', 'kluis.json'), '--type', 'fs', '--url', at('b-only'), '--admin-key', at('A', 'keys', 'admin.key'));
    expect(r.code, r.err).toBe(0);
  });

  it('signs a desk config trusting both stations, merging the shared target and leaving out each station-local store', async () => {
    const r = await run('init', '--desk', '--dir', at('D'), '--admin-key', at('A', 'keys', 'admin.key'), '--trust', at('A', 'kluis.json'), '--trust', at('B', 'kluis.json'), '--name', 'desk-1', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/target local of station a .* is left out: it lies inside the station's own folder/);
    expect(r.err).toMatch(/target local of station b .* is left out/);
    const desk = await loadDeskConfig(at('D', 'kluis.json'));
    const a = await loadConfig(at('A', 'kluis.json'));
    const b = await loadConfig(at('B', 'kluis.json'));
    expect(desk.adminKey).toEqual(a.adminKey);
    expect(desk.desk.desk).toBe('desk-1');
    expect(desk.desk.stations).toEqual([
      { name: 'a', key: a.config.stationKey, targets: ['nas'] },
      { name: 'b', key: b.config.stationKey, targets: ['nas', 'local2'] },
    ]);
    expect(desk.desk.targets.map((t) => [t.name, t.url])).toEqual([['nas', at('nas')], ['local2', at('b-only')]]);
    expect((await fsp.readdir(at('D', 'keys')))).toEqual(['admin.pub']);
    expect(await readPublicKey(at('D', 'keys', 'admin.pub'))).toEqual(a.adminKey);
    // A desk config is not a station config, and the other way round.
    await expect(loadConfig(at('D', 'kluis.json'))).rejects.toMatchObject({ code: 'E_CONFIG_DESK' });
    await expect(loadDeskConfig(at('A', 'kluis.json'))).rejects.toMatchObject({ code: 'E_CONFIG_NOT_DESK' });
    const t = await run('targets', 'list', '--config', at('D', 'kluis.json'));
    expect(t.code).toBe(EXIT.config);
    expect(t.err).toMatch(/E_CONFIG_DESK/);
  });

  it('a desk config changed by hand is refused', async () => {
    expect((await run('init', '--desk', '--dir', at('D'), '--admin-key', at('A', 'keys', 'admin.key'), '--trust', at('A', 'kluis.json'))).code).toBe(0);
    const file = at('D', 'kluis.json');
    const doc = JSON.parse(await fsp.readFile(file, 'utf8'));
    doc.config.stations[0].key = (await loadConfig(at('B', 'kluis.json'))).config.stationKey; // trust another station
    await fsp.writeFile(file, JSON.stringify(doc));
    await expect(loadSource(file)).rejects.toMatchObject({ code: 'E_CONFIG_SIGNATURE' });
  });

  it('is updated to a new revision, and the older desk config put back is refused (replay)', async () => {
    const file = at('D', 'kluis.json');
    expect((await run('init', '--desk', '--dir', at('D'), '--admin-key', at('A', 'keys', 'admin.key'), '--trust', at('A', 'kluis.json'), '--trust', at('B', 'kluis.json'))).code).toBe(0);
    const first = await fsp.readFile(file, 'utf8');
    expect((await loadDeskConfig(file)).desk).toMatchObject({ revision: 1, stations: [{ name: 'a' }, { name: 'b' }] });
    // Station b is no longer to be trusted: the admin makes the desk config again without it.
    const r = await run('init', '--desk', '--update', '--dir', at('D'), '--admin-key', at('A', 'keys', 'admin.key'), '--trust', at('A', 'kluis.json'), '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ revision: 2, stations: [{ name: 'a' }] });
    expect((await loadDeskConfig(file)).desk.stations.map((s) => s.name)).toEqual(['a']);
    await fsp.writeFile(file, first); // the older file, validly signed, trusting b again
    await expect(loadSource(file)).rejects.toMatchObject({ code: 'E_CONFIG_REPLAYED' });
    // Without --update an existing desk is never overwritten; another admin cannot update it.
    expect((await run('init', '--desk', '--dir', at('D'), '--admin-key', at('A', 'keys', 'admin.key'), '--trust', at('A', 'kluis.json'))).code).toBe(EXIT.config);
  });

  it("refuses a station of another organisation's admin", async () => {
    expect((await run('init', '--dir', at('X'), '--station', 'x')).code).toBe(0); // its own admin
    const r = await run('init', '--desk', '--dir', at('D'), '--admin-key', at('A', 'keys', 'admin.key'), '--trust', at('A', 'kluis.json'), '--trust', at('X', 'kluis.json'));
    expect(r.code).toBe(EXIT.config);
    expect(r.err).toMatch(/E_CONFIG_TRUST/);
    await expect(fsp.stat(at('D', 'kluis.json'))).rejects.toThrow();
  });

  it("opens the desk's targets read-only: every write is refused before it reaches the target", async () => {
    expect((await run('init', '--desk', '--dir', at('D'), '--admin-key', at('A', 'keys', 'admin.key'), '--trust', at('A', 'kluis.json'))).code).toBe(0);
    const source = await loadSource(at('D', 'kluis.json'));
    expect(source).toMatchObject({ kind: 'desk', readOnly: true });
    const t = openSourceTarget(source, source.targets[0]!);
    await expect(t.put('b1/x', () => Readable.from([Buffer.from('x')]), { size: 1, sha256: '0'.repeat(64) })).rejects.toMatchObject({ code: 'E_TARGET_READONLY' });
    await expect(t.delete('b1/x')).rejects.toMatchObject({ code: 'E_TARGET_READONLY' });
    expect(await fsp.readdir(at('nas'))).toEqual([]);
    expect(typeof t.listPage).toBe('function');
  });
});
