/**
 * A target that is down while a card is ingested: the batch waits in the outbox, the card is
 * still announced "safe to remove" (and the card can go), `kluis status` shows the outbox with
 * the last error, and when the target comes back the running `kluis watch` secures the batch by
 * itself, with no command from anyone.
 *
 * Two targets are tested the same way:
 *  - hermetic: an fs target on a "NAS" folder whose mount point is a plain file while it is down
 *    (ENOTDIR: E_TARGET_UNREACHABLE, retryable), made a folder again to bring it back;
 *  - real Ceph RGW (from scripts/services/up.sh, see test/setup/services.ts) behind a loopback
 *    relay that the test stops and restarts on the same port, so the shared Ceph keeps running
 *    for other test files. Without the services this file fails (KLUIS_NO_SERVICES=1 runs the
 *    hermetic part alone, for a quick local run).
 * Retries are shortened with KLUIS_RETRY_BASE_MS and the outbox interval with KLUIS_WATCH_OUTBOX_MS.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { editConfig, listFiles, makeStation, parseJson, runKluis, spawnKluis, waitForEvent, type TestStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { loadServices } from '../setup/services.js';
import { rawS3Client } from '../helpers/s3.js';

const services = loadServices();
const FAST = { KLUIS_RETRY_BASE_MS: '200', KLUIS_WATCH_OUTBOX_MS: '500', KLUIS_WATCH_SETTLE_MS: '300' };
const procs: Array<ReturnType<typeof spawnKluis>> = [];
const relays: Relay[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  for (const r of relays.splice(0)) await r.stop();
});

interface Harness {
  /** Configures the station's only (required) target and leaves it down. */
  setup(st: TestStation): Promise<void>;
  up(): Promise<void>;
  /** Objects the target holds for this batch, as seen on the target itself. */
  objects(batchId: string): Promise<string[]>;
}

function fsHarness(): Harness {
  let nas = '';
  let st: TestStation;
  return {
    async setup(s) {
      st = s;
      nas = path.join(st.dir, 'nas');
      writeFileSync(nas, 'not mounted\n'); // the share is not there: its mount point is not even a folder
      await editConfig(st, (c) => {
        c.targets = [{ name: 'nas', type: 'fs', url: 'nas/store', class: 'onprem', required: true }];
      });
    },
    async up() {
      rmSync(nas);
      mkdirSync(nas);
    },
    async objects(batchId) {
      return listFiles(path.join(nas, 'store')).filter((p) => p.startsWith(`${batchId}/`) && !path.basename(p).startsWith('.'));
    },
  };
}

function cephHarness(s: NonNullable<typeof services>['s3']): Harness {
  const bucket = `kluis-down-${randomBytes(4).toString('hex')}`;
  const ceph = new URL(s.endpoint);
  let port = 0;
  const client = rawS3Client(s);
  return {
    async setup(st) {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      // Take a free port for the relay, then close it: the target is down until up().
      const probe = await startRelay({ host: ceph.hostname, port: Number(ceph.port) });
      port = probe.port;
      await probe.stop();
      await editConfig(st, (c) => {
        c.targets = [{ name: 'ceph', type: 's3', url: `http://127.0.0.1:${port}`, bucket, region: s.region, class: 'onprem', required: true }];
      });
    },
    async up() {
      relays.push(await startRelay({ host: ceph.hostname, port: Number(ceph.port) }, port));
    },
    async objects(batchId) {
      const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${batchId}/` }));
      return (r.Contents ?? []).map((o) => o.Key!).sort();
    },
  };
}

async function downThenBack(h: Harness): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-down-'));
  const st = makeStation(path.join(work, 'station'));
  await h.setup(st);
  const roots = path.join(work, 'media');
  const card = makeCard(path.join(roots, 'CARD'), [
    { kind: 'jpeg', name: 'DJI_0001.JPG' },
    { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 1 },
  ]);
  const env = { ...FAST, AWS_ACCESS_KEY_ID: services?.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: services?.s3.secretAccessKey };
  const watch = spawnKluis(['watch', '--config', st.config, '--roots', roots, '--json'], env);
  procs.push(watch);

  // The card is read and may go, although nothing could be delivered.
  const safe = await waitForEvent(watch, (e) => e.type === 'safe-to-remove');
  const done = await waitForEvent(watch, (e) => e.type === 'ingest-done');
  expect(done).toMatchObject({ status: 'partial', safeToRemove: true });
  expect(watch.stderr()).toContain('SAFE TO REMOVE');
  renameSync(card, path.join(work, 'card-taken-home'));

  // It waits in the outbox; status (another process, while watch holds the lock) shows it.
  await waitForEvent(watch, (e) => e.type === 'outbox-pass');
  const status = parseJson(runKluis(['status', '--config', st.config, '--json']));
  const target = status.targets[0];
  expect(target.outbox).toBeGreaterThan(0);
  expect(target.verified).toBe(0);
  expect(target.lastError.code).toMatch(/^E_TARGET_(UNREACHABLE|IO)$/);
  expect(status.batches[0]).toMatchObject({ batchId: safe.batchId, safeToRemove: true, status: 'partial' });

  // The target comes back; nobody does anything; the batch becomes secured.
  await h.up();
  await waitForEvent(watch, (e) => e.type === 'batch-status' && e.batchId === safe.batchId && e.status === 'secured');
  watch.child.kill('SIGTERM');
  const end = await watch.exited;
  expect(end.code, end.stderr).toBe(0);
  const after = parseJson(runKluis(['status', '--config', st.config, '--json']));
  expect(after.batches[0]).toMatchObject({ status: 'secured', counts: { footage: 2, secured: 2 } });
  expect(after.targets[0].outbox).toBe(0);
  expect(await h.objects(safe.batchId)).toHaveLength(2 + 3); // 2 footage + report + custody record + manifest, once each
}

describe('target down during ingest, back later', () => {
  it('fs target (NAS share missing): waits in the outbox, secured unattended when it returns', async () => {
    await downThenBack(fsHarness());
  });

  if (services) {
    it('Ceph S3 (relay stopped): waits in the outbox, secured unattended when it returns', async () => {
      await downThenBack(cephHarness(services.s3));
    });
  }
});
