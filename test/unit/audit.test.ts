// The audit log: hash chain, signed checkpoints, tamper detection naming the line, torn-line
// recovery and appends from several processes at once.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AuditLog, verifyAuditLog, ZERO_HASH, entryHash, readAuditLog } from '../../src/audit/index.js';
import { generateKey } from '../../src/seal/keys.js';

const run = promisify(execFile);
let dir: string;
let file: string;
const station = generateKey('station');

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-audit-'));
  file = path.join(dir, 'state', 'audit.jsonl');
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function lines(): Promise<string[]> {
  return (await fsp.readFile(file, 'utf8')).split('\n').filter((l) => l.length > 0);
}

async function writeSample(n: number, checkpointEvery = 100): Promise<void> {
  const log = await AuditLog.open(file, { station: 'st-1', stationKey: station, checkpointEvery });
  for (let i = 0; i < n; i++) {
    await log.append('file-acquired', { batchId: 'B1', file: `DCIM/100MEDIA/DJI_${String(i).padStart(4, '0')}.JPG`, sha256: 'ab'.repeat(32), operator: 'Jansen' });
  }
  await log.close();
}

describe('audit log', () => {
  it('chains entries: seq, UTC time, prev = previous hash, hash over canonical JSON', async () => {
    const log = await AuditLog.open(file, { station: 'st-1' });
    const a = await log.append('card-seen', { card: 'uuid-1', operator: 'Jansen', case: 'PV-2024-17' });
    const b = await log.append('file-acquired', { batchId: 'B1', file: 'DCIM/a.JPG', sha256: 'aa' });
    await log.close();
    expect(a.seq).toBe(0);
    expect(a.prev).toBe(ZERO_HASH);
    expect(b.seq).toBe(1);
    expect(b.prev).toBe(a.hash);
    expect(a.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(a.operator).toBe('Jansen');
    expect(a.case).toBe('PV-2024-17');
    const { hash, ...body } = b;
    expect(entryHash(body)).toBe(hash);
    const ls = await lines();
    expect(ls).toHaveLength(2); // no key: no checkpoint at close
    expect(JSON.parse(ls[1]!)).toEqual(b);
    const res = await verifyAuditLog(file);
    expect(res).toMatchObject({ ok: true, entries: 2, checkpoints: 0, problems: [] });
  });

  it('refuses reserved fields and unknown types', async () => {
    const log = await AuditLog.open(file, { station: 'st-1' });
    await expect(log.append('card-seen', { seq: 5 })).rejects.toMatchObject({ code: 'E_AUDIT_USAGE' });
    await expect(log.append('nonsense' as 'card-seen', {})).rejects.toMatchObject({ code: 'E_AUDIT_USAGE' });
    await log.close();
  });

  it('writes signed checkpoints every N entries and at close, checked with the station key', async () => {
    await writeSample(8, 3);
    const entries = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    const types = entries.map((e) => e.type);
    // entries at seq 0,1,2 -> checkpoint seq 3; 4,5 -> cp 6; 7,8 -> cp 9; 10 -> cp 11 at close
    expect(types.filter((t) => t === 'checkpoint').length).toBe(4);
    expect(types[types.length - 1]).toBe('checkpoint');
    const res = await verifyAuditLog(file, station.publicKey);
    expect(res.ok).toBe(true);
    expect(res.checkpoints).toBe(4);
    expect(res.unsignedTail).toBe(0);
    expect(res.signaturesChecked).toBe(true);

    const other = generateKey('station');
    const bad = await verifyAuditLog(file, other.publicKey);
    expect(bad.ok).toBe(false);
    expect(bad.problems.filter((p) => p.code === 'bad-signature')).toHaveLength(4);
  });

  it('names a removed line', async () => {
    await writeSample(5);
    const ls = await lines();
    ls.splice(2, 1); // remove seq 2
    await fsp.writeFile(file, `${ls.join('\n')}\n`);
    const res = await verifyAuditLog(file, station.publicKey);
    expect(res.ok).toBe(false);
    expect(res.problems).toContainEqual(expect.objectContaining({ line: 3, code: 'gap' }));
    expect(res.problems).toContainEqual(expect.objectContaining({ line: 3, code: 'broken-chain' }));
    expect(res.problems.find((p) => p.code === 'gap')!.message).toMatch(/seq 2\) missing before line 3/);
  });

  it('names a changed line, even when the editor recomputed its hash', async () => {
    await writeSample(5);
    const ls = await lines();
    const e = JSON.parse(ls[1]!) as Record<string, unknown>;
    e.sha256 = 'cd'.repeat(32);
    await fsp.writeFile(file, `${[ls[0], JSON.stringify(e), ...ls.slice(2)].join('\n')}\n`);
    let res = await verifyAuditLog(file, station.publicKey);
    expect(res.ok).toBe(false);
    expect(res.problems).toEqual([expect.objectContaining({ line: 2, code: 'hash-mismatch' })]);

    // A careful forger recomputes the hash: the next line no longer points at it.
    const { hash: _h, ...body } = e;
    e.hash = entryHash(body);
    await fsp.writeFile(file, `${[ls[0], JSON.stringify(e), ...ls.slice(2)].join('\n')}\n`);
    res = await verifyAuditLog(file, station.publicKey);
    expect(res.ok).toBe(false);
    expect(res.problems).toContainEqual(expect.objectContaining({ line: 3, code: 'broken-chain' }));
  });

  it('names reordered lines', async () => {
    await writeSample(5);
    const ls = await lines();
    [ls[1], ls[2]] = [ls[2]!, ls[1]!];
    await fsp.writeFile(file, `${ls.join('\n')}\n`);
    const res = await verifyAuditLog(file, station.publicKey);
    expect(res.ok).toBe(false);
    const named = new Set(res.problems.map((p) => p.line));
    expect(named.has(2)).toBe(true);
    expect(res.problems).toContainEqual(expect.objectContaining({ line: 3, code: 'order' }));
  });

  it('a checkpoint detects a rewrite of the whole chain by someone without the station key', async () => {
    await writeSample(3);
    // Rebuild every hash after changing line 1: chain consistent, checkpoint signature not.
    const entries = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    entries[0]!.file = 'DCIM/100MEDIA/OTHER.JPG';
    let prev = ZERO_HASH;
    for (const e of entries) {
      e.prev = prev;
      if (e.type === 'checkpoint') e.head = prev;
      const { hash: _h, ...body } = e;
      e.hash = entryHash(body);
      prev = e.hash as string;
    }
    const { canonicalJson } = await import('../../src/util/canonical-json.js');
    await fsp.writeFile(file, `${entries.map((e) => canonicalJson(e)).join('\n')}\n`);
    const res = await verifyAuditLog(file, station.publicKey);
    expect(res.ok).toBe(false);
    expect(res.problems).toEqual([expect.objectContaining({ line: 4, code: 'bad-signature' })]);
  });

  it('moves a torn final line aside and records it, never dropping it silently', async () => {
    await writeSample(2);
    const torn = '{"seq":3,"time":"2024-01-01T00:00:00.000Z","type":"file-ac';
    await fsp.appendFile(file, torn);
    const before = await verifyAuditLog(file, station.publicKey);
    expect(before.problems).toContainEqual(expect.objectContaining({ code: 'torn' }));

    const log = await AuditLog.open(file, { station: 'st-1', stationKey: station });
    await log.append('card-seen', { card: 'u2' });
    await log.close();
    const files = await fsp.readdir(path.dirname(file));
    const tornFile = files.find((f) => f.startsWith('audit.jsonl.torn-'));
    expect(tornFile).toBeDefined();
    expect(await fsp.readFile(path.join(path.dirname(file), tornFile!), 'utf8')).toBe(torn);
    const entries = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    const rec = entries.find((e) => e.type === 'recovered');
    expect(rec).toMatchObject({ tornFile, tornBytes: torn.length });
    const after = await verifyAuditLog(file, station.publicKey);
    expect(after.ok).toBe(true);
  });

  it('keeps one chain when several processes append at once', async () => {
    // Compile the module so that plain node child processes can load it.
    const out = path.join(dir, 'build');
    const repo = path.resolve(__dirname, '..', '..');
    await run(
      path.join(repo, 'node_modules', '.bin', 'tsc'),
      ['--outDir', out, '--rootDir', path.join(repo, 'src'), '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--esModuleInterop', '--skipLibCheck', path.join(repo, 'src', 'audit', 'index.ts')],
      { cwd: repo },
    );
    await fsp.symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
    await fsp.writeFile(path.join(dir, 'package.json'), '{"type":"module"}');
    const script = path.join(dir, 'writer.mjs');
    await fsp.writeFile(
      script,
      `import { AuditLog } from ${JSON.stringify(path.join(out, 'audit', 'index.js'))};
       const log = await AuditLog.open(process.argv[2], { station: 'st-1' });
       for (let i = 0; i < 25; i++) await log.append('file-acquired', { file: process.argv[3] + '-' + i });
       await log.close();`,
    );
    await Promise.all(['a', 'b', 'c', 'd'].map((w) => run(process.execPath, [script, file, w])));
    const res = await verifyAuditLog(file);
    expect(res.problems).toEqual([]);
    expect(res.entries).toBe(100);
    const files = new Set<string>();
    for await (const { entry } of readAuditLog(file)) files.add(String(entry!.file));
    expect(files.size).toBe(100);
  });
});
