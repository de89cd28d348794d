// `kluis keys …` and `kluis decrypt …` run in-process through commander with the real command
// modules (src/cli/keys.ts, src/cli/decrypt.ts), capturing stdout/stderr and the exit code.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as keysCmd from '../../src/cli/keys.js';
import * as decryptCmd from '../../src/cli/decrypt.js';
import { parsePublicKey, parseSecretKey, readSecretKeyFile } from '../../src/seal/keys.js';
import { sealFile } from '../../src/seal/index.js';
import { headerLength, CHUNK_CT_SIZE } from '../../src/seal/format.js';
import { deterministicBytes } from '../../src/seal/det-random.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  process.exitCode = 0;
  try {
    const p = new Command().name('kluis').exitOverride();
    keysCmd.register(p);
    decryptCmd.register(p);
    try {
      await p.parseAsync(['node', 'kluis', ...argv]);
    } catch {
      process.exitCode = 2;
    }
    return { code: Number(process.exitCode ?? 0), out: out.join(''), err: err.join('') };
  } finally {
    so.mockRestore();
    se.mockRestore();
    process.exitCode = 0;
  }
}

let dir = '';
afterEach(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
  dir = '';
});
async function tmp(): Promise<string> {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-cli-'));
  return dir;
}

describe('kluis keys', () => {
  test.each([
    ['new-recipient', 'recipient', 'kluis1'],
    ['new-station', 'station', 'kluisstation1'],
    ['new-admin', 'admin', 'kluisadmin1'],
  ] as const)('%s writes a 0600 secret key and prints its public key', async (cmd, kind, prefix) => {
    const d = await tmp();
    const f = path.join(d, 'k.key');
    const r = await run('keys', cmd, '--out', f);
    expect(r.code).toBe(0);
    const pub = r.out.trim();
    expect(pub.startsWith(prefix)).toBe(true);
    expect(parsePublicKey(pub).kind).toBe(kind);
    expect((await fsp.stat(f)).mode & 0o777).toBe(0o600);
    const sk = await readSecretKeyFile(f, kind);
    expect(sk.publicKey.bytes).toEqual(parsePublicKey(pub).bytes);
    expect(r.out).not.toMatch(/SECRET-KEY/i);
    const pr = await run('keys', 'public', f);
    expect(pr).toMatchObject({ code: 0, out: `${pub}\n` });
  });

  test('--json prints one JSON document; an existing file is never overwritten', async () => {
    const d = await tmp();
    const f = path.join(d, 'k.key');
    const r = await run('keys', 'new-recipient', '--out', f, '--json');
    const j = JSON.parse(r.out) as { kind: string; publicKey: string; file: string };
    expect(j).toMatchObject({ kind: 'recipient', file: f });
    const before = await fsp.readFile(f, 'utf8');
    const again = await run('keys', 'new-recipient', '--out', f);
    expect(again.code).toBe(9);
    expect(again.err).toMatch(/kluis: error: .*already exists.*\[E_KEY_EXISTS\]/);
    expect(await fsp.readFile(f, 'utf8')).toBe(before);
    const pj = await run('keys', 'public', f, '--json');
    expect(JSON.parse(pj.out)).toEqual({ kind: 'recipient', publicKey: j.publicKey, file: f });
  });

  test('keys public refuses a group/world-readable key file', async () => {
    const d = await tmp();
    const f = path.join(d, 'k.key');
    await run('keys', 'new-station', '--out', f);
    await fsp.chmod(f, 0o640);
    const r = await run('keys', 'public', f);
    expect(r.code).toBe(9);
    expect(r.err).toMatch(/\[E_KEY_PERMISSIONS\]/);
    expect(r.err).toMatch(/kluis: hint: run: chmod 600/);
  });
});

describe('kluis decrypt', () => {
  async function setup() {
    const d = await tmp();
    const ev = path.join(d, 'ev.key');
    const old = path.join(d, 'old.key');
    const other = path.join(d, 'other.key');
    const st = path.join(d, 'st.key');
    const evPub = (await run('keys', 'new-recipient', '--out', ev)).out.trim();
    await run('keys', 'new-recipient', '--out', old);
    await run('keys', 'new-recipient', '--out', other);
    await run('keys', 'new-station', '--out', st);
    const plain = deterministicBytes('cli', 200_000);
    await fsp.writeFile(path.join(d, 'plain'), plain);
    await sealFile(path.join(d, 'plain'), path.join(d, 'sealed'), [parsePublicKey(evPub)]);
    return { d, ev, old, other, st, plain, sha: createHash('sha256').update(plain).digest('hex') };
  }

  test('decrypts with the evidence key (also among several identities)', async () => {
    const s = await setup();
    const out = path.join(s.d, 'out');
    const r = await run('decrypt', path.join(s.d, 'sealed'), '--identity', s.old, '--identity', s.ev, '-o', out);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${s.sha}  ${out}\n`);
    expect((await fsp.readFile(out)).equals(Buffer.from(s.plain))).toBe(true);
  });

  test('a wrong key: clear error with hint, exit 9, nothing written', async () => {
    const s = await setup();
    const out = path.join(s.d, 'out');
    const r = await run('decrypt', path.join(s.d, 'sealed'), '--identity', s.other, '-o', out);
    expect(r.code).toBe(9);
    expect(r.err).toMatch(/^kluis: error: .*\[E_SEAL_NO_RECIPIENT\]\nkluis: hint: .*--identity/m);
    expect(r.out).toBe('');
    expect((await fsp.readdir(s.d)).sort()).toEqual(['ev.key', 'old.key', 'other.key', 'plain', 'sealed', 'st.key']);
  });

  test('the station key is refused as identity (E_KEY_KIND), and so is a readable key file', async () => {
    const s = await setup();
    const r = await run('decrypt', path.join(s.d, 'sealed'), '--identity', s.st, '-o', path.join(s.d, 'out'));
    expect(r.code).toBe(9);
    expect(r.err).toMatch(/\[E_KEY_KIND\]/);
    await fsp.chmod(s.ev, 0o604);
    const r2 = await run('decrypt', path.join(s.d, 'sealed'), '--identity', s.ev, '-o', path.join(s.d, 'out'));
    expect(r2.err).toMatch(/\[E_KEY_PERMISSIONS\]/);
    expect(await fsp.readdir(s.d)).not.toContain('out');
  });

  test('refuses to overwrite OUT without --force; --force replaces it', async () => {
    const s = await setup();
    const out = path.join(s.d, 'out');
    await fsp.writeFile(out, 'keep me');
    const r = await run('decrypt', path.join(s.d, 'sealed'), '-i', s.ev, '-o', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/\[E_OUTPUT_EXISTS\]/);
    expect(await fsp.readFile(out, 'utf8')).toBe('keep me');
    const f = await run('decrypt', path.join(s.d, 'sealed'), '-i', s.ev, '-o', out, '--force', '--json');
    expect(f.code).toBe(0);
    expect(JSON.parse(f.out)).toMatchObject({ size: 200_000, sha256: s.sha });
  });

  test('a file cut at a chunk boundary: E_SEAL_TRUNCATED, exit 4, no output and no temp file', async () => {
    const s = await setup();
    const sealed = await fsp.readFile(path.join(s.d, 'sealed'));
    await fsp.writeFile(path.join(s.d, 'cut'), sealed.subarray(0, headerLength(1) + 2 * CHUNK_CT_SIZE));
    const r = await run('decrypt', path.join(s.d, 'cut'), '-i', s.ev, '-o', path.join(s.d, 'out'));
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/\[E_SEAL_TRUNCATED\]/);
    expect((await fsp.readdir(s.d)).filter((n) => n.includes('out'))).toEqual([]);
    expect(parseSecretKey((await fsp.readFile(s.ev, 'utf8')).split('\n')[2]!).kind).toBe('recipient');
  });
});
