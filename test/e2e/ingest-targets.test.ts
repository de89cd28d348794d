/**
 * The whole path onto real storage (issues 3 and 6): one station with three required targets,
 * its own fs store, Ceph S3 and Apache WebDAV over TLS (both started by scripts/services/up.sh).
 * The sample card is secured on all three, `kluis verify` re-reads every object from every target,
 * `kluis export` gets the footage back, and the objects on S3 carry no names or plaintext.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { S3Client, CreateBucketCommand, ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';
import { loadServices } from '../setup/services.js';
import { makeStation, runKluis, type TestStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

const services = loadServices();

describe.runIf(services)('ingest onto fs, Ceph S3 and Apache WebDAV', () => {
  let st: TestStation;
  let card: string;
  let env: NodeJS.ProcessEnv;
  const bucket = `kluis-e2e-${Date.now().toString(36)}`;
  let s3: S3Client;

  beforeAll(async () => {
    const s = services!;
    s3 = new S3Client({
      endpoint: s.s3.endpoint, region: s.s3.region, forcePathStyle: true,
      credentials: { accessKeyId: s.s3.accessKeyId, secretAccessKey: s.s3.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-targets-'));
    st = makeStation(path.join(work, 'station'));
    card = makeCard(path.join(work, 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 2 },
      { kind: 'srt', name: 'DJI_0002.SRT' },
    ]);
    env = {
      AWS_ACCESS_KEY_ID: s.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
      KLUIS_WEBDAV_USERNAME: s.webdav.username,
      KLUIS_WEBDAV_PASSWORD: s.webdav.password,
    };
    const add = (args: string[]) => {
      const r = runKluis(['targets', 'add', ...args, '--config', st.config, '--admin-key', st.adminKey, '--required'], env);
      expect(r.code, r.stderr).toBe(0);
    };
    add(['ceph', '--type', 's3', '--url', s.s3.endpoint, '--bucket', bucket, '--region', s.s3.region, '--class', 'onprem']);
    add(['nas', '--type', 'webdav', '--url', s.webdav.url, '--class', 'onprem', '--ca-file', s.webdav.caFile, '--tls-pin', s.webdav.pin]);
  });

  it('targets test passes for all three without uploading', () => {
    const r = runKluis(['targets', 'test', '--config', st.config, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
  });

  let batchId: string;
  it('secures the card on every target', () => {
    const r = runKluis(['ingest', card, '--config', st.config, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    batchId = out.batchId;
    expect(out.status).toBe('secured');
    for (const name of ['local', 'ceph', 'nas']) {
      const t = out.targets.find((x: any) => x.name === name);
      expect(t.status).toBe('verified');
      expect(t.verified).toBe(5); // 2 footage + report + custody record + manifest
    }
  });

  it('stores only opaque names and ciphertext on S3', async () => {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (list.Contents ?? []).map((o) => o.Key!);
    expect(keys).toHaveLength(5);
    for (const k of keys) {
      expect(k).toMatch(new RegExp(`^${batchId}/([0-9a-f]{32}|manifest\\.json|custody)$`)); // custody: the sealed custody record
      if (k.endsWith('manifest.json')) continue;
      const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: k }));
      const bytes = Buffer.from(await obj.Body!.transformToByteArray());
      expect(bytes.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))).toBe(false);
      expect(bytes.subarray(4, 8).toString('latin1')).not.toBe('ftyp');
    }
  });

  it('verify re-reads and decrypts every object on every target', () => {
    const r = runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey, '--card', card, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.result).toBe('verified');
  });

  it('export gets the footage back', () => {
    const dir = path.join(path.dirname(st.dir), 'export');
    const r = runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', dir, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.files.map((f: any) => f.path).sort()).toEqual(['DCIM/100MEDIA/DJI_0001.JPG', 'DCIM/100MEDIA/DJI_0002.MP4']);
    expect(readFileSync(path.join(dir, 'sanitized', 'DCIM', '100MEDIA', 'DJI_0001.JPG')).subarray(0, 2).equals(Buffer.from([0xff, 0xd8]))).toBe(true);
  });
});

describe('services are required in CI', () => {
  it('are present unless explicitly switched off for a local run', () => {
    if (process.env.KLUIS_NO_SERVICES !== '1') expect(services).not.toBeNull();
  });
});
