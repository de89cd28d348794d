// The station-loss drill (issue 17), with the issue's own commands, on the shared test Ceph
// (scripts/services/up.sh; a fresh bucket, removed afterwards):
//  1. two stations of one organisation ingest different cards, with different case numbers, into
//     the same bucket;
//  2. station A's folder is deleted entirely;
//  3. from a desk folder holding only the desk config (with its admin pin) and the evidence key:
//     `kluis catalog --case` finds each batch; `kluis verify` exits 0 for both, custody record
//     included; `kluis export` gives the files and `kluis mhl verify` on each export is clean;
//     the custody record names the operator, the case, the card and the times;
//  4. a custody record altered on the target is detected (code and hint).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { S3Client, CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { loadServices } from '../setup/services.js';
import { listFiles, parseJson, runKluis, type RunResult } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { EXIT } from '../../src/errors.js';

const services = loadServices();

describe.runIf(services)('station-loss drill: the desk works from the storage alone', () => {
  const s = services!;
  const bucket = `kluis-drill-${Date.now().toString(36)}-${process.pid}`;
  const env = { AWS_ACCESS_KEY_ID: s.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s.s3.secretAccessKey };
  let tmp: string;
  let s3: S3Client;
  const ingested: Record<'A' | 'B', { batchId: string; fingerprint: string; operator: string; case: string }> = {
    A: { batchId: '', fingerprint: '', operator: 'alice', case: 'DRILL-2026-0101' },
    B: { batchId: '', fingerprint: '', operator: 'bob', case: 'DRILL-2026-0202' },
  };
  let key = '';

  /** `kluis ARGS` in the drill's working folder (the relative paths: A/, B/, D/). */
  const kluis = (args: string[], cwd = tmp): RunResult => runKluis(args, env, { cwd });
  const ok = (args: string[], cwd = tmp): RunResult => {
    const r = kluis(args, cwd);
    if (r.code !== 0) throw new Error(`kluis ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kluis-drill-'));
    s3 = new S3Client({
      endpoint: s.s3.endpoint,
      region: s.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s.s3.accessKeyId, secretAccessKey: s.s3.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    // 1. Two stations, one organisation, one bucket; two different cards.
    ok(['init', '--dir', 'A', '--station', 'a']);
    ok(['init', '--dir', 'B', '--station', 'b', '--admin-key', 'A/keys/admin.key', '--recipient', 'A/keys/evidence.pub']);
    for (const st of ['A', 'B']) {
      ok(['targets', 'add', 'ceph', '--config', `${st}/kluis.json`, '--type', 's3', '--url', s.s3.endpoint, '--bucket', bucket, '--class', 'onprem', '--required', '--admin-key', 'A/keys/admin.key']);
    }
    makeCard(path.join(tmp, 'cardA'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }, { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 1 }, { kind: 'srt', name: 'DJI_0002.SRT' }]);
    makeCard(path.join(tmp, 'cardB'), [{ kind: 'big', name: 'DJI_0101.JPG' }]);
    for (const st of ['A', 'B'] as const) {
      const r = kluis(['ingest', `card${st}`, '--config', `${st}/kluis.json`, '--operator', ingested[st].operator, '--case', ingested[st].case, '--json']);
      const j = parseJson<{ batchId: string; status: string; card: { fingerprint: string } }>(r);
      expect(j.status, r.stderr).toBe('secured');
      ingested[st].batchId = j.batchId;
      ingested[st].fingerprint = j.card.fingerprint;
    }
    // The desk, made while the admin key is at hand; the evidence key is handed to it.
    ok(['init', '--desk', '--dir', 'D', '--admin-key', 'A/keys/admin.key', '--trust', 'A/kluis.json', '--trust', 'B/kluis.json']);
    copyFileSync(path.join(tmp, 'A', 'keys', 'evidence.key'), path.join(tmp, 'D', 'evidence.key'));
    chmodSync(path.join(tmp, 'D', 'evidence.key'), 0o600);
    key = 'evidence.key';
    // 2. Station A is lost: its whole folder (keys, journal, audit log, spool, local store).
    rmSync(path.join(tmp, 'A'), { recursive: true, force: true });
  }, 300_000);

  afterAll(async () => {
    if (s3) {
      for (;;) {
        const l = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
        for (const o of l.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
        if (!l.IsTruncated) break;
      }
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
      s3.destroy();
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the desk folder holds only the desk config, its admin pin and the evidence key; nothing of it points into A', () => {
    expect(existsSync(path.join(tmp, 'A'))).toBe(false);
    const d = path.join(tmp, 'D');
    expect(listFiles(d).filter((f) => !f.startsWith('state/'))).toEqual(['evidence.key', 'keys/admin.pub', 'kluis.json']);
    const cfg = JSON.parse(readFileSync(path.join(d, 'kluis.json'), 'utf8')) as { config: { kind: string; stations: Array<{ name: string; targets: string[] }>; targets: Array<{ name: string; url: string }> } };
    expect(cfg.config.kind).toBe('desk');
    expect(cfg.config.stations.map((x) => [x.name, x.targets])).toEqual([['a', ['ceph']], ['b', ['ceph']]]);
    expect(JSON.stringify(cfg)).not.toContain(path.join(tmp, 'A'));
    expect(readdirSync(path.join(d, 'keys'))).toEqual(['admin.pub']); // no station key
  });

  for (const st of ['A', 'B'] as const) {
    it(`catalog --case finds station ${st.toLowerCase()}'s batch, with who and when`, () => {
      const r = kluis(['catalog', '--config', 'kluis.json', '--identity', key, '--case', ingested[st].case, '--json'], path.join(tmp, 'D'));
      expect(r.code, r.stderr).toBe(0);
      const doc = parseJson<{ batches: Array<Record<string, unknown>>; problems: unknown[] }>(r);
      expect(doc.batches).toHaveLength(1);
      expect(doc.batches[0]).toMatchObject({
        batchId: ingested[st].batchId,
        station: st.toLowerCase(),
        case: ingested[st].case,
        operator: ingested[st].operator,
        status: 'complete',
        files: st === 'A' ? 3 : 1,
        targets: ['ceph'],
      });
      expect(Date.parse(String(doc.batches[0]!.startedAt))).toBeGreaterThan(0);
      expect(doc.problems).toEqual([]);
    });

    it(`verify exits 0 for station ${st.toLowerCase()}'s batch, custody record included, and the record names operator, case, card and times`, () => {
      const r = kluis(['verify', ingested[st].batchId, '--config', 'D/kluis.json', '--identity', `D/${key}`, '--json']);
      expect(r.code, r.stdout.slice(0, 3000)).toBe(0);
      const v = parseJson<{
        result: string;
        station: { name: string };
        custody: { result: string; targets: Array<{ target: string; result: string }>; record: { operator: string; case: string; card: { fingerprint: string; root: string }; times: { cardSeen: string; safeToRemove: string; lastSealed: string }; station: { name: string }; files: Array<{ path: string; acquired?: { sha256: string }; withheld?: { sha256?: string } }>; deliveries: Array<{ target: string; verified?: string }> } };
      }>(r);
      expect(v.result).toBe('verified');
      expect(v.station.name).toBe(st.toLowerCase());
      expect(v.custody.result).toBe('verified');
      expect(v.custody.targets).toEqual([{ target: 'ceph', result: 'verified' }]);
      const rec = v.custody.record;
      expect(rec.station.name).toBe(st.toLowerCase());
      expect(rec.operator).toBe(ingested[st].operator);
      expect(rec.case).toBe(ingested[st].case);
      expect(rec.card.fingerprint).toBe(ingested[st].fingerprint);
      expect(rec.card.root).toBe(path.join(tmp, `card${st}`));
      for (const t of [rec.times.cardSeen, rec.times.safeToRemove, rec.times.lastSealed]) expect(Date.parse(t)).toBeGreaterThan(0);
      expect(Date.parse(rec.times.cardSeen)).toBeLessThanOrEqual(Date.parse(rec.times.safeToRemove));
      // Every file of the card, read and hashed (footage acquired, the telemetry sidecar withheld).
      expect(rec.files.map((f) => f.path).sort()).toEqual(st === 'A' ? ['DCIM/100MEDIA/DJI_0001.JPG', 'DCIM/100MEDIA/DJI_0002.MP4', 'DCIM/100MEDIA/DJI_0002.SRT'] : ['DCIM/100MEDIA/DJI_0101.JPG']);
      expect(rec.files.every((f) => /^[0-9a-f]{64}$/.test(f.acquired?.sha256 ?? f.withheld?.sha256 ?? ''))).toBe(true);
      expect(rec.deliveries.some((d) => d.target === 'ceph' && d.verified)).toBe(true);
    });

    it(`export gives station ${st.toLowerCase()}'s files, and mhl verify on the export is clean`, () => {
      const out = `out-${st}`;
      ok(['export', ingested[st].batchId, '--config', 'kluis.json', '--identity', key, '--out', out], path.join(tmp, 'D'));
      const files = listFiles(path.join(tmp, 'D', out));
      const want = st === 'A' ? ['sanitized/DCIM/100MEDIA/DJI_0001.JPG', 'sanitized/DCIM/100MEDIA/DJI_0002.MP4'] : ['sanitized/DCIM/100MEDIA/DJI_0101.JPG'];
      expect(files).toEqual(expect.arrayContaining([...want, 'custody.json', 'report.html', 'report.json']));
      const mhl = kluis(['mhl', 'verify', out], path.join(tmp, 'D'));
      expect(mhl.code, mhl.stdout).toBe(0);
      const custody = JSON.parse(readFileSync(path.join(tmp, 'D', out, 'custody.json'), 'utf8')) as { record: { batchId: string; lines: Array<{ type: string; operator?: string }> } };
      expect(custody.record.batchId).toBe(ingested[st].batchId);
      expect(custody.record.lines[0]).toMatchObject({ type: 'card-seen', operator: ingested[st].operator });
    });
  }

  it('a custody record altered on the target is detected, with its code and a hint', async () => {
    const objKey = `${ingested.A.batchId}/custody`;
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: objKey }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    const altered = Buffer.from(bytes);
    altered[altered.length - 20]! ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: objKey, Body: altered }));
    try {
      const r = kluis(['verify', ingested.A.batchId, '--config', 'D/kluis.json', '--identity', `D/${key}`, '--json']);
      expect(r.code).toBe(EXIT.mismatch);
      const v = parseJson<{ custody: { result: string }; problems: Array<{ code?: string; hint?: string; message: string }> }>(r);
      expect(v.custody.result).toBe('mismatch');
      const p = v.problems.find((x) => x.code === 'E_CUSTODY_ALTERED');
      expect(p, JSON.stringify(v.problems)).toBeDefined();
      expect(p!.hint).toMatch(/changed or replaced on this target/);
      const human = kluis(['verify', ingested.A.batchId, '--config', 'D/kluis.json', '--identity', `D/${key}`]);
      expect(human.stdout).toMatch(/custody record: mismatch/);
      expect(human.stdout).toMatch(/\[E_CUSTODY_ALTERED\]/);
      // Export reads the record first: the batch is not decrypted while its record does not hold.
      const exp = kluis(['export', ingested.A.batchId, '--config', 'D/kluis.json', '--identity', `D/${key}`, '--out', 'D/out-altered']);
      expect(exp.code).toBe(EXIT.mismatch);
      expect(exp.stderr).toMatch(/E_CUSTODY_ALTERED/);
      expect(listFiles(path.join(tmp, 'D', 'out-altered'))).toEqual([]);
      // Station b's batch, in the same bucket, is untouched.
      expect(kluis(['verify', ingested.B.batchId, '--config', 'D/kluis.json', '--identity', `D/${key}`]).code).toBe(0);
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: objKey, Body: bytes }));
    }
  });

  it('the desk cannot ingest, and records what it verified and exported in its own log', () => {
    mkdirSync(path.join(tmp, 'cardC', 'DCIM'), { recursive: true });
    const r = kluis(['ingest', 'cardC', '--config', 'D/kluis.json']);
    expect(r.code).toBe(EXIT.config);
    expect(r.stderr).toMatch(/E_CONFIG_DESK/);
    const log = readFileSync(path.join(tmp, 'D', 'state', 'desk-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; batchId: string; station: string });
    expect(log.every((l) => l.station.startsWith('desk:'))).toBe(true);
    expect(log.filter((l) => l.type === 'export').map((l) => l.batchId).sort()).toEqual([ingested.A.batchId, ingested.B.batchId].sort());
    const failed = log.filter((l) => l.type === 'verify-failed').map((l) => l.batchId);
    expect(failed.length).toBeGreaterThan(0);
    expect(new Set(failed)).toEqual(new Set([ingested.A.batchId]));
  });
});
