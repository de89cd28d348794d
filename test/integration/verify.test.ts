// kluis verify: a batch built with the real seal, manifest and target APIs (the ingest stage is
// written in parallel), verified from two fs targets - and from Ceph RGW when the services are
// up (scripts/services/up.sh wrote .services.env; test/setup/services.ts fails the suite without
// them unless KLUIS_NO_SERVICES=1). Then each damage is detected and named: an
// object deleted, a byte flipped in an object, a manifest line changed, an audit line removed,
// a card file changed, and a wrong identity (could not check).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fsp, createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { loadServices } from '../setup/services.js';
import { createHash, randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { generateKey, formatPublicKey, writeSecretKeyFile, type SecretKey } from '../../src/seal/keys.js';
import { sealFile, sealBytes } from '../../src/seal/index.js';
import { createManifest, type ManifestInner } from '../../src/seal/manifest.js';
import { loadConfig, writeSignedConfig, type LoadedConfig } from '../../src/config/load.js';
import { openTarget } from '../../src/targets/index.js';
import { AuditLog } from '../../src/audit/index.js';
import { verifyBatch } from '../../src/evidence/verify.js';
import { register } from '../../src/cli/verify.js';
import { EXIT } from '../../src/errors.js';

const services = loadServices();

interface Station {
  dir: string;
  configFile: string;
  config: LoadedConfig;
  station: SecretKey;
  recipient: SecretKey;
  identityFile: string;
  card: string;
  batchId: string;
  objects: Record<string, string>; // card path -> object id
}

const sha256 = async (file: string): Promise<string> => {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
};

async function makeStation(extraTargets: Array<Record<string, unknown>> = [], env?: NodeJS.ProcessEnv): Promise<Station> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-verify-'));
  const admin = generateKey('admin');
  const station = generateKey('station');
  const recipient = generateKey('recipient');
  await fsp.mkdir(path.join(dir, 'keys'));
  await fsp.mkdir(path.join(dir, 'state'));
  await fsp.writeFile(path.join(dir, 'keys', 'admin.pub'), `${formatPublicKey(admin.publicKey)}\n`);
  await writeSecretKeyFile(path.join(dir, 'keys', 'station.key'), station);
  const identityFile = path.join(dir, 'evidence.key');
  await writeSecretKeyFile(identityFile, recipient);
  const configFile = path.join(dir, 'kluis.json');
  await writeSignedConfig(
    configFile,
    {
      version: 1,
      station: 'station-test',
      stationKey: formatPublicKey(station.publicKey),
      recipients: [formatPublicKey(recipient.publicKey)],
      targets: [
        { name: 'nas', type: 'fs', url: 'store-a' },
        { name: 'nas2', type: 'fs', url: 'store-b' },
        ...extraTargets,
      ],
    },
    admin,
  );
  const config = await loadConfig(configFile);

  // The card as the drone wrote it.
  const card = path.join(dir, 'card');
  await fsp.mkdir(path.join(card, 'DCIM', '100MEDIA'), { recursive: true });
  const files = {
    'DCIM/100MEDIA/DJI_0001.JPG': randomBytes(200_000),
    'DCIM/100MEDIA/DJI_0002.MP4': randomBytes(3 * 64 * 1024 + 17), // more than one seal chunk
    'DCIM/100MEDIA/DJI_0002.SRT': Buffer.from('1\n00:00:00,000 --> 00:00:01,000\nGPS(4.1,52.3)\n'),
  };
  for (const [p, b] of Object.entries(files)) await fsp.writeFile(path.join(card, p), b);

  // What ingest would do: sanitize (stand-in: drop the last 100 bytes), seal, store, sign.
  const batchId = `B${Date.now()}-${randomBytes(3).toString('hex')}`;
  const work = path.join(dir, 'work');
  await fsp.mkdir(work);
  const targets = config.config.targets.map((t) => openTarget(t, { configDir: config.layout.root, egress: config.config.egress, ...(env ? { env } : {}) }));
  const objects: Station['objects'] = {};
  const outerObjects: Array<{ id: string; size: number; sha256: string }> = [];
  const innerFiles: ManifestInner['files'] = [];
  for (const [p, b] of Object.entries(files)) {
    const cardSha = createHash('sha256').update(b).digest('hex');
    if (p.endsWith('.SRT')) {
      innerFiles.push({ path: p, class: 'sidecar', status: 'withheld', cardSha256: cardSha, size: b.length });
      continue;
    }
    const sanitized = path.join(work, path.basename(p));
    await fsp.writeFile(sanitized, b.subarray(0, b.length - 100));
    const sealed = `${sanitized}.sealed`;
    await sealFile(sanitized, sealed, [recipient.publicKey]);
    const id = randomBytes(12).toString('hex');
    const st = await fsp.stat(sealed);
    const sealedSha = await sha256(sealed);
    for (const t of targets) await t.put(`${batchId}/${id}`, () => createReadStream(sealed), { size: st.size, sha256: sealedSha });
    objects[p] = id;
    outerObjects.push({ id, size: st.size, sha256: sealedSha });
    innerFiles.push({
      path: p,
      class: 'footage',
      status: 'secured',
      objectId: id,
      cardSha256: cardSha,
      size: b.length,
      format: p.endsWith('.JPG') ? 'jpeg' : 'mp4',
      sanitizedSha256: await sha256(sanitized),
      sanitizedSize: b.length - 100,
      essence: [{ method: 'test-essence', before: 'e1', after: 'e1' }],
      removed: [{ where: 'end', what: 'other', bytes: 100 }],
    });
  }
  // The sealed report, stored like the footage and listed only in the outer manifest.
  const reportId = randomBytes(16).toString('hex');
  const sealedReport = Buffer.from(sealBytes(Buffer.from(JSON.stringify({ html: '<html></html>', json: '{}' })), [recipient.publicKey]));
  const reportSha = createHash('sha256').update(sealedReport).digest('hex');
  for (const t of targets) await t.put(`${batchId}/${reportId}`, () => Readable.from([sealedReport]), { size: sealedReport.length, sha256: reportSha });
  outerObjects.push({ id: reportId, size: sealedReport.length, sha256: reportSha });
  const createdAt = new Date().toISOString();
  const manifest = createManifest(
    {
      batchId,
      createdAt,
      objects: outerObjects,
      inner: {
        batchId,
        station: { name: 'station-test', key: formatPublicKey(station.publicKey) },
        createdAt,
        operator: 'J. Jansen',
        card: { label: 'DJI', fingerprint: 'f'.repeat(64), root: card },
        tool: { name: 'kluis', version: '0.1.0' },
        files: innerFiles,
        extra: { reportObject: reportId },
      },
    },
    [recipient.publicKey],
    station,
  );
  const mbytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const msha = createHash('sha256').update(mbytes).digest('hex');
  for (const t of targets) {
    await t.put(`${batchId}/manifest.json`, () => Readable.from([mbytes]), { size: mbytes.length, sha256: msha });
    await t.close();
  }
  const log = await AuditLog.open(config.layout.auditFile, { station: 'station-test', stationKey: station, checkpointEvery: 4 });
  for (const f of innerFiles) await log.append('file-acquired', { batchId, file: f.path, sha256: f.cardSha256 });
  await log.append('batch-secured', { batchId });
  await log.close();
  return { dir, configFile, config, station, recipient, identityFile, card, batchId, objects };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  const program = new Command().exitOverride();
  register(program);
  let stdout = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'kluis', ...args]);
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout };
}

let s: Station;
beforeEach(async () => {
  s = await makeStation();
});
afterEach(async () => {
  await fsp.rm(s.dir, { recursive: true, force: true });
});

const objectFile = (store: string, id: string): string => path.join(s.dir, store, s.batchId, id);
const JPG = 'DCIM/100MEDIA/DJI_0001.JPG';
const MP4 = 'DCIM/100MEDIA/DJI_0002.MP4';

describe('verify a batch', () => {
  it('verifies every object on every target, and says what it did not recheck', async () => {
    const r = await verifyBatch({ config: s.config, batchId: s.batchId, identities: [s.recipient], card: s.card, essence: null });
    expect(r.problems).toEqual([]);
    expect(r.result).toBe('verified');
    expect(r.manifests).toEqual([
      { target: 'nas', result: 'verified' },
      { target: 'nas2', result: 'verified' },
    ]);
    expect(r.files.map((f) => [f.path, f.result])).toEqual([
      [JPG, 'verified'],
      [MP4, 'verified'],
      ['DCIM/100MEDIA/DJI_0002.SRT', 'verified'],
    ]);
    const jpg = r.files[0]!;
    expect(jpg.targets.map((t) => t.target)).toEqual(['nas', 'nas2']);
    const checks = jpg.targets[0]!.checks.map((c) => [c.check, c.result]);
    expect(checks).toEqual(
      expect.arrayContaining([
        ['ciphertext-sha256', 'verified'],
        ['plaintext-sha256', 'verified'],
        ['essence:test-essence', 'unchecked'],
      ]),
    );
    expect(jpg.card).toEqual({ check: 'card-sha256', result: 'verified' });
    expect(r.files[2]!.targets).toEqual([]); // withheld: not stored anywhere
    expect(r.objects).toHaveLength(1);
    expect(r.objects[0]!.path).toMatch(/^\(sealed report [0-9a-f]{32}\)$/);
    expect(r.objects[0]!.targets.map((t) => [t.target, t.result])).toEqual([
      ['nas', 'verified'],
      ['nas2', 'verified'],
    ]);
    expect(r.objects[0]!.targets[0]!.checks.map((c) => c.check)).toEqual(['ciphertext-size', 'ciphertext-sha256', 'decrypt']);
    expect(r.essence).toBe('not rechecked');
    expect(r.audit).toMatchObject({ result: 'verified', batchEntries: 4 });
  });

  it('rechecks the essence with an essence function and names a mismatch', async () => {
    const r = await verifyBatch({
      config: s.config,
      batchId: s.batchId,
      identities: [s.recipient],
      essence: async (file, format) => ((await fsp.stat(file)).size > 0 && format === 'jpeg' ? 'e1' : 'zz'),
    });
    expect(r.essence).toBe('rechecked');
    expect(r.files[0]!.targets[0]!.checks).toContainEqual({ check: 'essence:test-essence', result: 'verified' });
    expect(r.result).toBe('mismatch');
    expect(r.problems).toContainEqual(expect.objectContaining({ path: MP4, target: 'nas', message: expect.stringMatching(/essence:test-essence: recomputed zz, manifest says e1/) }));
  });

  it('names a deleted object: missing, on that target only', async () => {
    await fsp.rm(objectFile('store-a', s.objects[JPG]!));
    const r = await verifyBatch({ config: s.config, batchId: s.batchId, identities: [s.recipient], essence: null });
    expect(r.result).toBe('missing');
    expect(r.problems).toEqual([expect.objectContaining({ result: 'missing', target: 'nas', path: JPG, objectId: s.objects[JPG] })]);
    expect(r.files[0]!.targets.map((t) => t.result)).toEqual(['missing', 'verified']);
  });

  it('names a flipped byte in an object: ciphertext hash and decryption both fail', async () => {
    const f = objectFile('store-b', s.objects[MP4]!);
    const buf = await fsp.readFile(f);
    buf[buf.length - 1000]! ^= 0x01;
    await fsp.writeFile(f, buf);
    const r = await verifyBatch({ config: s.config, batchId: s.batchId, identities: [s.recipient], essence: null });
    expect(r.result).toBe('mismatch');
    const mp4 = r.files.find((x) => x.path === MP4)!;
    expect(mp4.targets.map((t) => t.result)).toEqual(['verified', 'mismatch']);
    const bad = mp4.targets[1]!.checks.filter((c) => c.result === 'mismatch').map((c) => c.check);
    expect(bad).toEqual(expect.arrayContaining(['ciphertext-sha256', 'decrypt']));
    expect(r.problems.every((p) => p.target === 'nas2' && p.path === MP4)).toBe(true);
  });

  it('names a changed manifest line and what in it changed', async () => {
    const mf = path.join(s.dir, 'store-a', s.batchId, 'manifest.json');
    const text = await fsp.readFile(mf, 'utf8');
    const doc = JSON.parse(text) as { outer: { objects: Array<{ sha256: string }> } };
    const old = doc.outer.objects[1]!.sha256;
    const changed = text.replace(old, `${old.slice(0, 63)}${old[63] === '0' ? '1' : '0'}`);
    expect(changed).not.toBe(text);
    await fsp.writeFile(mf, changed);
    const r = await verifyBatch({ config: s.config, batchId: s.batchId, identities: [s.recipient], essence: null });
    expect(r.result).toBe('mismatch');
    expect(r.manifests[0]).toMatchObject({ target: 'nas', result: 'mismatch' });
    expect(r.manifests[0]!.message).toMatch(/E_MANIFEST_SIGNATURE/);
    expect(r.manifests[0]!.message).toMatch(new RegExp(`objects\\[1\\]\\.sha256 of object ${s.objects[MP4]}`));
    // The objects themselves are still checked against the good copy from nas2.
    expect(r.files.map((f) => f.result)).toEqual(['verified', 'verified', 'verified']);
  });

  it('names a removed audit line', async () => {
    const lines = (await fsp.readFile(s.config.layout.auditFile, 'utf8')).split('\n').filter(Boolean);
    lines.splice(1, 1);
    await fsp.writeFile(s.config.layout.auditFile, `${lines.join('\n')}\n`);
    const r = await verifyBatch({ config: s.config, batchId: s.batchId, identities: [s.recipient], essence: null });
    expect(r.result).toBe('mismatch');
    expect(r.audit!.result).toBe('mismatch');
    expect(r.problems).toContainEqual(expect.objectContaining({ path: 'audit log line 2', message: expect.stringMatching(/gap/) }));
  });

  it('names a card file that differs from what was acquired', async () => {
    await fsp.appendFile(path.join(s.card, JPG), 'x');
    await fsp.rm(path.join(s.card, MP4));
    const r = await verifyBatch({ config: s.config, batchId: s.batchId, identities: [s.recipient], card: s.card, essence: null });
    expect(r.files[0]!.card).toMatchObject({ result: 'mismatch' });
    expect(r.files[1]!.card).toMatchObject({ result: 'missing' });
    expect(r.result).toBe('mismatch');
  });

  it('kluis verify: exit codes for verified, missing, mismatch and could-not-check', async () => {
    const ok = await cli(['verify', s.batchId, '--config', s.configFile, '--identity', s.identityFile, '--json']);
    expect(ok.code).toBe(EXIT.ok);
    expect(JSON.parse(ok.stdout)).toMatchObject({ result: 'verified', batchId: s.batchId });
    // The run is recorded in the audit log, and the log still verifies.
    const lastLines = (await fsp.readFile(s.config.layout.auditFile, 'utf8')).trim().split('\n');
    expect(lastLines.map((l) => (JSON.parse(l) as { type: string }).type)).toContain('verified');

    const other = generateKey('recipient');
    const otherFile = path.join(s.dir, 'other.key');
    await writeSecretKeyFile(otherFile, other);
    const unchecked = await cli(['verify', s.batchId, '--config', s.configFile, '--identity', otherFile]);
    expect(unchecked.code).toBe(EXIT.couldNotCheck);
    expect(unchecked.stdout).toMatch(/cannot open the inner manifest/);

    await fsp.rm(objectFile('store-b', s.objects[JPG]!));
    const missing = await cli(['verify', s.batchId, '--config', s.configFile, '--identity', s.identityFile]);
    expect(missing.code).toBe(EXIT.missing);
    expect(missing.stdout).toContain(`${JPG} on nas2`);

    const f = objectFile('store-a', s.objects[MP4]!);
    const buf = await fsp.readFile(f);
    buf[200]! ^= 0x80;
    await fsp.writeFile(f, buf);
    const mismatch = await cli(['verify', s.batchId, '--config', s.configFile, '--identity', s.identityFile]);
    expect(mismatch.code).toBe(EXIT.mismatch);
    expect(mismatch.stdout).toContain(`${MP4} on nas: ciphertext-sha256`);
  });
});

if (services) {
  const c = services.s3;
  describe('verify a batch on Ceph RGW (S3) and fs', () => {
    const env = { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
    const client = (): S3Client =>
      new S3Client({
        endpoint: c.endpoint,
        region: c.region,
        forcePathStyle: true,
        credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });

    it('verifies on Ceph, then names a deleted and a byte-flipped object there', async () => {
      const bucket = `kluis-verify-${randomBytes(4).toString('hex')}`;
      const s3 = client();
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const st = await makeStation([{ name: 'ceph', type: 's3', url: c.endpoint, bucket, region: c.region, class: 'onprem' }], env);
      try {
        const ok = await verifyBatch({ config: st.config, batchId: st.batchId, identities: [st.recipient], essence: null, env });
        expect(ok.problems).toEqual([]);
        expect(ok.manifests.map((m) => [m.target, m.result])).toEqual([
          ['nas', 'verified'],
          ['nas2', 'verified'],
          ['ceph', 'verified'],
        ]);
        expect(ok.files[0]!.targets.map((t) => [t.target, t.result])).toContainEqual(['ceph', 'verified']);

        // One object deleted on Ceph.
        const ceph = openTarget(st.config.config.targets[2]!, { configDir: st.config.layout.root, egress: st.config.config.egress, env });
        await ceph.delete(`${st.batchId}/${st.objects[JPG]}`);
        // One byte flipped in another object on Ceph (replaced behind kluis's back).
        const key = `${st.batchId}/${st.objects[MP4]}`;
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const buf = Buffer.from(await got.Body!.transformToByteArray());
        buf[buf.length - 10]! ^= 0x04;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: buf }));
        await ceph.close();

        const bad = await verifyBatch({ config: st.config, batchId: st.batchId, identities: [st.recipient], essence: null, env });
        expect(bad.result).toBe('mismatch');
        expect(bad.problems).toContainEqual(expect.objectContaining({ result: 'missing', target: 'ceph', path: JPG }));
        expect(bad.problems).toContainEqual(expect.objectContaining({ result: 'mismatch', target: 'ceph', path: MP4, message: expect.stringMatching(/ciphertext-sha256/) }));
        expect(bad.problems.every((p) => p.target === 'ceph')).toBe(true);
      } finally {
        s3.destroy();
        await fsp.rm(st.dir, { recursive: true, force: true });
      }
    });
  });
}
