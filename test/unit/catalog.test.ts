// The catalog over the targets: batches found from signed manifests alone, across trusted
// stations, filtered by case, station, operator and date; paged listings (page size 1, 2, 3…)
// give the same answer as one big page; a batch on two targets names both; a copy that lacks an
// object is `incomplete` unless another target holds it all; a card with a failed file is
// `partial`; a foreign station's manifest and a damaged one are named, never listed. And the
// outer filters (station, start date) decide before anything is decrypted.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { catalog, parseDateBound } from '../../src/evidence/catalog.js';
import type { EvidenceSource } from '../../src/evidence/source.js';
import { createManifest, type ManifestInner } from '../../src/seal/manifest.js';
import { formatPublicKey, generateKey, type SecretKey } from '../../src/seal/keys.js';
import { EgressSchema, TargetConfigSchema } from '../../src/config/schema.js';
import { KluisError } from '../../src/errors.js';

const evidence = generateKey('recipient');
const stranger = generateKey('recipient');
const stA = generateKey('station');
const stB = generateKey('station');
const foreign = generateKey('station');
let dir: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-catalog-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

interface Spec {
  id: string;
  station: SecretKey;
  name: string;
  case?: string;
  operator?: string;
  started: string;
  closed?: string;
  objects?: number;
  failed?: boolean;
  held?: boolean;
}

/** Writes a batch as a station would leave it on an fs target: objects, then the signed manifest. */
async function putBatch(store: string, b: Spec, opts: { skipObject?: boolean } = {}): Promise<void> {
  const n = b.objects ?? 2;
  const objects = Array.from({ length: n }, (_, i) => ({ id: `obj${i}`, size: 10 + i, sha256: 'a'.repeat(64) }));
  const inner: ManifestInner = {
    batchId: b.id,
    station: { name: b.name, key: formatPublicKey(b.station.publicKey) },
    createdAt: b.started,
    ...(b.case ? { case: b.case } : {}),
    ...(b.operator ? { operator: b.operator } : {}),
    card: { fingerprint: 'f'.repeat(64), root: '/media/card', label: 'DJI' },
    tool: { name: 'kluis', version: '0' },
    files: [
      ...objects.map((o, i) => ({ path: `DCIM/100MEDIA/F${i}.JPG`, class: 'footage' as const, status: 'sealed', objectId: o.id, size: 100 })),
      ...(b.failed ? [{ path: 'DCIM/100MEDIA/BAD.MP4', class: 'footage' as const, status: 'failed', size: 5, error: { code: 'E_SANITIZE_BOX_TRUNCATED', message: 'cut short' } }] : []),
      ...(b.held ? [{ path: 'DCIM/100MEDIA/CUT.MP4', class: 'footage' as const, status: 'held', size: 5, error: { code: 'E_SANITIZE_BOX_TRUNCATED', message: 'cut short; the original is held sealed' } }] : []),
    ],
  };
  const m = createManifest({ batchId: b.id, createdAt: b.closed ?? b.started, objects, inner, audit: { seq: 1, head: 'b'.repeat(64) } }, [evidence.publicKey], b.station);
  await fsp.mkdir(path.join(store, b.id), { recursive: true });
  for (const [i, o] of objects.entries()) {
    if (opts.skipObject && i === 0) continue;
    await fsp.writeFile(path.join(store, b.id, o.id), Buffer.alloc(o.size));
  }
  await fsp.writeFile(path.join(store, b.id, 'manifest.json'), JSON.stringify(m));
}

function source(targets: string[], opts: { originals?: string[] } = {}): EvidenceSource {
  const tcs = targets.map((t) => TargetConfigSchema.parse({ name: t, type: 'fs', url: path.join(dir, t), ...(opts.originals?.includes(t) ? { originalsAllowed: true } : {}) }));
  return {
    kind: 'desk',
    configFile: path.join(dir, 'kluis.json'),
    root: dir,
    egress: EgressSchema.parse({}),
    stations: [
      { name: 'a', key: formatPublicKey(stA.publicKey), targets },
      { name: 'b', key: formatPublicKey(stB.publicKey), targets },
    ],
    targets: tcs,
    readOnly: true,
    record: { file: path.join(dir, 'state', 'log.jsonl'), name: 'desk:test' },
  };
}

const BATCHES: Spec[] = [
  { id: 'b01', station: stA, name: 'a', case: 'PV-1', operator: 'alice', started: '2026-03-01T09:00:00.000Z' },
  { id: 'b02', station: stA, name: 'a', case: 'PV-2', operator: 'alice', started: '2026-03-02T09:00:00.000Z', objects: 5 },
  { id: 'b03', station: stB, name: 'b', case: 'PV-1', operator: 'bob', started: '2026-03-02T23:59:00.000Z' },
  { id: 'b04', station: stB, name: 'b', case: 'PV-3', operator: 'bob', started: '2026-03-03T00:00:00.000Z', objects: 1 },
  { id: 'b05', station: stA, name: 'a', operator: 'carol', started: '2026-03-04T10:00:00.000Z', objects: 0 },
];

describe('catalog', () => {
  it('lists every trusted batch with who and when, the same whatever the page size', async () => {
    const store = path.join(dir, 'nas');
    for (const b of BATCHES) await putBatch(store, b);
    const all = await catalog(source(['nas']), [evidence]);
    expect(all.problems).toEqual([]);
    expect(all.batches.map((b) => b.batchId)).toEqual(['b01', 'b02', 'b03', 'b04', 'b05']);
    expect(all.batches[2]).toEqual({
      batchId: 'b03', station: 'b', stationKey: formatPublicKey(stB.publicKey), case: 'PV-1', operator: 'bob',
      startedAt: '2026-03-02T23:59:00.000Z', closedAt: '2026-03-02T23:59:00.000Z', status: 'complete', files: 2, targets: ['nas'], card: { label: 'DJI' },
    });
    for (const pageSize of [1, 2, 3, 7]) {
      const paged = await catalog(source(['nas']), [evidence], {}, { pageSize, concurrency: 2 });
      expect(paged.batches, `page size ${pageSize}`).toEqual(all.batches);
      expect(paged.scanned.pages).toBeGreaterThan(1);
    }
  });

  it('filters by case, station, operator and start date (whole days, UTC)', async () => {
    const store = path.join(dir, 'nas');
    for (const b of BATCHES) await putBatch(store, b);
    const ids = async (f: Parameters<typeof catalog>[2]): Promise<string[]> => (await catalog(source(['nas']), [evidence], f)).batches.map((b) => b.batchId);
    expect(await ids({ case: 'PV-1' })).toEqual(['b01', 'b03']);
    expect(await ids({ stations: [formatPublicKey(stB.publicKey)] })).toEqual(['b03', 'b04']);
    expect(await ids({ operator: 'alice' })).toEqual(['b01', 'b02']);
    expect(await ids({ from: parseDateBound('2026-03-02', 'from'), before: parseDateBound('2026-03-02', 'to') })).toEqual(['b02', 'b03']);
    expect(await ids({ from: parseDateBound('2026-03-03', 'from') })).toEqual(['b04', 'b05']);
    expect(await ids({ case: 'PV-1', stations: [formatPublicKey(stA.publicKey)] })).toEqual(['b01']);
    expect(() => parseDateBound('yesterday', 'from')).toThrow(KluisError);
  });

  it('decides station and start-date filters on the signed outer part, before decrypting', async () => {
    const store = path.join(dir, 'nas');
    for (const b of BATCHES) await putBatch(store, b);
    const r = await catalog(source(['nas']), [evidence], { stations: [formatPublicKey(stB.publicKey)], from: parseDateBound('2026-03-03', 'from') });
    expect(r.batches.map((b) => b.batchId)).toEqual(['b04']);
    expect(r.scanned).toMatchObject({ batches: 5, manifestsRead: 5, opened: 1 });
  });

  it('a batch on two targets names both; a copy lacking an object is named, and incomplete only when no copy is whole', async () => {
    for (const b of BATCHES.slice(0, 3)) await putBatch(path.join(dir, 'ceph'), b);
    await putBatch(path.join(dir, 'nas'), BATCHES[0]!);
    await putBatch(path.join(dir, 'nas'), BATCHES[1]!, { skipObject: true });
    await putBatch(path.join(dir, 'nas'), BATCHES[3]!, { skipObject: true });
    const r = await catalog(source(['ceph', 'nas']), [evidence]);
    const by = Object.fromEntries(r.batches.map((b) => [b.batchId, b]));
    expect(by.b01).toMatchObject({ targets: ['ceph', 'nas'], status: 'complete' });
    expect(by.b02).toMatchObject({ targets: ['ceph', 'nas'], status: 'complete' }); // whole on ceph
    expect(by.b03).toMatchObject({ targets: ['ceph'], status: 'complete' });
    expect(by.b04).toMatchObject({ targets: ['nas'], status: 'incomplete' });
    expect(r.problems.filter((p) => p.kind === 'incomplete').map((p) => `${p.target}:${p.batchId}`).sort()).toEqual(['nas:b02', 'nas:b04']);
  });

  it('a card with a failed file, or one held as its sealed original, is partial', async () => {
    await putBatch(path.join(dir, 'nas'), { ...BATCHES[0]!, failed: true });
    await putBatch(path.join(dir, 'nas'), { ...BATCHES[1]!, held: true });
    const r = await catalog(source(['nas']), [evidence]);
    expect(r.batches.map((b) => [b.batchId, b.status, b.files])).toEqual([['b01', 'partial', 3], ['b02', 'partial', 6]]);
  });

  it("names a foreign station's batch, a damaged manifest and a key that opens nothing; lists none of them", async () => {
    const store = path.join(dir, 'nas');
    await putBatch(store, BATCHES[0]!);
    await putBatch(store, { id: 'x01', station: foreign, name: 'x', case: 'PV-1', started: '2026-03-01T10:00:00.000Z' });
    await putBatch(store, BATCHES[2]!);
    const doc = JSON.parse(await fsp.readFile(path.join(store, 'b03', 'manifest.json'), 'utf8'));
    doc.outer.objects[0].size += 1;
    await fsp.writeFile(path.join(store, 'b03', 'manifest.json'), JSON.stringify(doc));
    await fsp.mkdir(path.join(store, 'half'), { recursive: true });
    await fsp.writeFile(path.join(store, 'half', 'obj0'), 'x'); // a batch still being delivered: no manifest yet
    const r = await catalog(source(['nas']), [evidence]);
    expect(r.batches.map((b) => b.batchId)).toEqual(['b01']);
    expect(r.problems.map((p) => `${p.kind}:${p.batchId}:${p.code}`).sort()).toEqual(['damaged:b03:E_MANIFEST_SIGNATURE', 'untrusted:x01:E_MANIFEST_STATION']);
    const wrongKey = await catalog(source(['nas']), [stranger]);
    expect(wrongKey.batches).toEqual([]);
    expect(wrongKey.problems.filter((p) => p.kind === 'unopened').map((p) => p.code)).toEqual(['E_SEAL_NO_RECIPIENT']);
  });

  it('a target that cannot be listed is named, the others still read', async () => {
    await putBatch(path.join(dir, 'nas'), BATCHES[0]!);
    await fsp.writeFile(path.join(dir, 'broken'), 'a file where a folder should be');
    const r = await catalog(source(['broken', 'nas']), [evidence]);
    expect(r.batches.map((b) => b.batchId)).toEqual(['b01']);
    expect(r.problems.map((p) => `${p.kind}:${p.target}`)).toEqual(['listing:broken']);
  });
});
