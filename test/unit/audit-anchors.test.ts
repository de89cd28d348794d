// `kluis audit verify` against the targets (issue 15 item 6): a batch's signed manifest carries the
// audit log's head when the batch was closed. A log cut back to an earlier signed checkpoint is a
// valid chain on its own (the offline check passes) but lacks lines a manifest on the target
// names: found, exit EXIT.mismatch. A log rewritten from some point has another line at that seq:
// found too. Manifests of other stations in the same store are counted, not compared.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { register } from '../../src/cli/audit.js';
import { EXIT } from '../../src/errors.js';
import { AuditLog } from '../../src/audit/index.js';
import { createManifest, type ManifestInner } from '../../src/seal/manifest.js';
import { formatPublicKey, generateKey, type SecretKey } from '../../src/seal/keys.js';
import { layoutFor, writeSignedConfig } from '../../src/config/index.js';

let dir: string;
let configFile: string;
let auditFile: string;
const station = generateKey('station');
const neighbour = generateKey('station');
const recipient = generateKey('recipient');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command().exitOverride();
  register(program);
  let stdout = '';
  let stderr = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'kluis', ...args]);
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr };
}

function inner(batchId: string, key: SecretKey): ManifestInner {
  return {
    batchId,
    station: { name: 'st', key: formatPublicKey(key.publicKey) },
    createdAt: '2026-01-01T00:00:00.000Z',
    card: { fingerprint: 'f'.repeat(64), root: '/media/card' },
    tool: { name: 'kluis', version: '0' },
    files: [],
  };
}

/** Stores a manifest signed by `key`, carrying `head`, under store/<batchId>/manifest.json. */
async function storeManifest(batchId: string, head: { seq: number; hash: string } | undefined, key = station): Promise<void> {
  const m = createManifest(
    { batchId, createdAt: '2026-01-01T00:00:00.000Z', objects: [], inner: inner(batchId, key), ...(head ? { audit: { seq: head.seq, head: head.hash } } : {}) },
    [recipient.publicKey],
    key,
  );
  await fsp.mkdir(path.join(dir, 'store', batchId), { recursive: true });
  await fsp.writeFile(path.join(dir, 'store', batchId, 'manifest.json'), JSON.stringify(m));
}

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-anchors-'));
  const admin = generateKey('admin');
  await fsp.mkdir(path.join(dir, 'keys'));
  await fsp.writeFile(path.join(dir, 'keys', 'admin.pub'), `${formatPublicKey(admin.publicKey)}\n`);
  configFile = path.join(dir, 'kluis.json');
  await writeSignedConfig(
    configFile,
    { version: 1, station: 'st', stationKey: formatPublicKey(station.publicKey), recipients: [formatPublicKey(recipient.publicKey)], targets: [{ name: 'nas', type: 'fs', url: 'store' }] },
    admin,
  );
  auditFile = layoutFor(configFile).auditFile;
  // Checkpoint after every 4 lines: the log can be cut at a signed checkpoint.
  const log = await AuditLog.open(auditFile, { station: 'st', stationKey: station, checkpointEvery: 4 });
  for (let i = 0; i < 3; i++) await log.append('file-acquired', { batchId: 'B1', file: `f${i}`, sha256: 'a'.repeat(64) });
  await storeManifest('B1', await log.head());
  for (let i = 0; i < 6; i++) await log.append('file-acquired', { batchId: 'B2', file: `f${i}`, sha256: 'b'.repeat(64) });
  await storeManifest('B2', await log.head());
  await log.append('verified', { batchId: 'B2', object: 'B2/x', target: 'nas' });
  await log.close();
  // A neighbour station's batch in the same store, with a head far beyond this log.
  await storeManifest('N1', { seq: 9999, hash: 'c'.repeat(64) }, neighbour);
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function lines(): Promise<string[]> {
  return (await fsp.readFile(auditFile, 'utf8')).split('\n').filter(Boolean);
}

describe('kluis audit verify against the targets', () => {
  it('an intact log agrees with every head its manifests carry; a neighbour station is left alone', async () => {
    const res = await cli(['audit', 'verify', '--config', configFile, '--json']);
    expect(res.code, res.stdout + res.stderr).toBe(EXIT.ok);
    const doc = JSON.parse(res.stdout) as { ok: boolean; targets: { result: string; manifests: number; compared: number; foreign: number; problems: unknown[] } };
    expect(doc.ok).toBe(true);
    expect(doc.targets).toMatchObject({ result: 'verified', manifests: 2, compared: 2, foreign: 1, problems: [] });
  });

  it('a log cut back to an earlier signed checkpoint: a valid chain alone, a cut against the targets', async () => {
    const all = await lines();
    // The last checkpoint before B2's head: keep everything up to it.
    const b2Head = JSON.parse(await fsp.readFile(path.join(dir, 'store', 'B2', 'manifest.json'), 'utf8')).outer.audit.seq as number;
    const cut = all.findIndex((l, i) => i < b2Head && JSON.parse(l).type === 'checkpoint' && !all.slice(i + 1, b2Head).some((x) => JSON.parse(x).type === 'checkpoint'));
    expect(cut).toBeGreaterThan(0);
    await fsp.writeFile(auditFile, `${all.slice(0, cut + 1).join('\n')}\n`);

    const offline = await cli(['audit', 'verify', '--config', configFile, '--offline']);
    expect(offline.code).toBe(EXIT.ok); // what the log alone cannot show

    const res = await cli(['audit', 'verify', '--config', configFile]);
    expect(res.code).toBe(EXIT.mismatch);
    expect(res.stdout).toMatch(new RegExp(`seq ${b2Head}: cut-back: the log ends at seq ${cut}, but batch B2`));
    expect(res.stdout).not.toMatch(/batch B1/);
    expect(res.stdout).toMatch(/NOT OK/);
  });

  it('a log rewritten from some point (another line at a head) is found: diverged', async () => {
    // Same length, valid chain, other content: written afresh by someone with the station key.
    const n = (await lines()).length;
    await fsp.rm(auditFile);
    const log = await AuditLog.open(auditFile, { station: 'st', stationKey: station, checkpointEvery: 4 });
    while ((await log.head()).seq < n - 1) await log.append('file-acquired', { batchId: 'B9', file: 'other', sha256: 'd'.repeat(64) });
    await log.close();
    const res = await cli(['audit', 'verify', '--config', configFile, '--json']);
    expect(res.code).toBe(EXIT.mismatch);
    const doc = JSON.parse(res.stdout) as { logOk: boolean; targets: { problems: Array<{ code: string; batchId: string }> } };
    expect(doc.logOk).toBe(true);
    expect(doc.targets.problems.map((p) => `${p.code}:${p.batchId}`).sort()).toEqual(['diverged:B1', 'diverged:B2']);
  });
});
