// `kluis audit verify|show`: the command reads the log next to a signed config, names the
// damaged line and exits EXIT.mismatch.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { register } from '../../src/cli/audit.js';
import { EXIT } from '../../src/errors.js';
import { AuditLog } from '../../src/audit/index.js';
import { formatPublicKey, generateKey } from '../../src/seal/keys.js';
import { layoutFor, writeSignedConfig } from '../../src/config/index.js';

let dir: string;
let configFile: string;
const station = generateKey('station');

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

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-audit-cli-'));
  const admin = generateKey('admin');
  const recipient = generateKey('recipient');
  await fsp.mkdir(path.join(dir, 'keys'));
  await fsp.writeFile(path.join(dir, 'keys', 'admin.pub'), `${formatPublicKey(admin.publicKey)}\n`);
  configFile = path.join(dir, 'kluis.json');
  await writeSignedConfig(
    configFile,
    {
      version: 1,
      station: 'st-1',
      stationKey: formatPublicKey(station.publicKey),
      recipients: [formatPublicKey(recipient.publicKey)],
      targets: [{ name: 'local', type: 'fs', url: path.join(dir, 'store') }],
    },
    admin,
  );
  const log = await AuditLog.open(layoutFor(configFile).auditFile, { station: 'st-1', stationKey: station });
  await log.append('card-seen', { card: 'u1', operator: 'Jansen' });
  await log.append('file-acquired', { batchId: 'B1', file: 'DCIM/100MEDIA/DJI_0001.JPG', sha256: 'ab'.repeat(32) });
  await log.append('file-acquired', { batchId: 'B2', file: 'DCIM/100MEDIA/DJI_0002.JPG', sha256: 'cd'.repeat(32) });
  await log.close();
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('kluis audit', () => {
  it('verify: ok on an intact log, mismatch with the line named after a removal', async () => {
    const ok = await cli(['audit', 'verify', '--config', configFile, '--json']);
    expect(ok.code).toBe(EXIT.ok);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, entries: 4, checkpoints: 1 });

    const file = layoutFor(configFile).auditFile;
    const original = await fsp.readFile(file, 'utf8');
    const ls = original.split('\n').filter(Boolean);
    ls.splice(1, 1);
    await fsp.writeFile(file, `${ls.join('\n')}\n`);
    try {
      const bad = await cli(['audit', 'verify', '--config', configFile]);
      expect(bad.code).toBe(EXIT.mismatch);
      expect(bad.stdout).toMatch(/line 2: gap: .*seq 1\) missing before line 2/);
      expect(bad.stdout).toMatch(/NOT OK/);
    } finally {
      await fsp.writeFile(file, original);
    }
  });

  it('show --batch lists only that batch', async () => {
    const res = await cli(['audit', 'show', '--config', configFile, '--batch', 'B2', '--json']);
    expect(res.code).toBe(EXIT.ok);
    const doc = JSON.parse(res.stdout) as { entries: Array<{ batchId: string; file: string }> };
    expect(doc.entries).toHaveLength(1);
    expect(doc.entries[0]).toMatchObject({ batchId: 'B2', file: 'DCIM/100MEDIA/DJI_0002.JPG' });
    const text = await cli(['audit', 'show', '--config', configFile]);
    expect(text.stdout.split('\n').filter(Boolean)).toHaveLength(4);
  });
});
