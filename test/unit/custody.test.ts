// The custody record: a batch's audit lines gathered from the end of the log (never another
// batch's, never past the head), signed by the station and sealed; opening it catches a flipped
// byte, a re-sealed forgery, another station's signature, another batch, and a line that does
// not hash to itself. The backward line reader joins lines and characters cut by its blocks.
// Read against its manifest, a record is summarized (who, card, when, files, deliveries) and
// every disagreement is named.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditLog } from '../../src/audit/index.js';
import { batchLines } from '../../src/pipeline/custody.js';
import { linesBackward } from '../../src/util/lines-backward.js';
import { CUSTODY_FORMAT, lineHash, openCustodyRecord, sealCustodyRecord, verifyCustodyDocument, type CustodyRecord } from '../../src/seal/custody.js';
import { openBytes, sealBytes } from '../../src/seal/index.js';
import { formatPublicKey, generateKey, sign } from '../../src/seal/keys.js';
import { deterministicRandom } from '../../src/seal/det-random.js';
import { canonicalJson } from '../../src/util/canonical-json.js';
import { KluisError } from '../../src/errors.js';
import { createManifest, verifyManifest, type ManifestInner, type ManifestOuter } from '../../src/seal/manifest.js';
import { crossCheckCustody, summarizeCustody } from '../../src/evidence/custody.js';

const station = generateKey('station', deterministicRandom('custody-station'));
const otherStation = generateKey('station', deterministicRandom('custody-other'));
const evidence = generateKey('recipient', deterministicRandom('custody-evidence'));
const stranger = generateKey('recipient', deterministicRandom('custody-stranger'));

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-custody-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KluisError);
    return (err as KluisError).code;
  }
  throw new Error('expected an error');
}

describe('linesBackward', () => {
  it('gives the lines last to first, joining lines and UTF-8 characters cut by a block edge', async () => {
    const file = path.join(dir, 'f.txt');
    const lines = ['first', 'één ü €uro', '', 'x'.repeat(50), 'last line'];
    await fsp.writeFile(file, `${lines.join('\n')}\n`);
    for (const block of [1, 2, 3, 5, 7, 64 * 1024]) {
      expect(await collect(linesBackward(file, { block })), `block ${block}`).toEqual(lines.slice().reverse());
    }
  });

  it('yields an unterminated last line as it is, and nothing for an empty file', async () => {
    const file = path.join(dir, 'torn.txt');
    await fsp.writeFile(file, 'a\nb\n{"torn');
    expect(await collect(linesBackward(file, { block: 2 }))).toEqual(['{"torn', 'b', 'a']);
    await fsp.writeFile(file, '');
    expect(await collect(linesBackward(file))).toEqual([]);
  });
});

describe('batchLines', () => {
  it("takes the batch's own lines up to the head, oldest first, and stops at the batch's first card-seen", async () => {
    const file = path.join(dir, 'audit.jsonl');
    const log = await AuditLog.open(file, { station: 'st', stationKey: station, checkpointEvery: 4 });
    await log.append('card-seen', { batchId: 'OLD', resumed: false });
    await log.append('card-seen', { batchId: 'B', resumed: false, operator: 'alice', case: 'C-1' });
    await log.append('file-acquired', { batchId: 'B', file: 'DCIM/a.JPG', sha256: 'aa' });
    await log.append('file-acquired', { batchId: 'OTHER', file: 'DCIM/z.JPG', sha256: 'zz' });
    await log.append('card-seen', { batchId: 'B', resumed: true });
    await log.append('file-sealed', { batchId: 'B', file: 'DCIM/a.JPG', object: 'B/o1', sha256: 'cc' });
    const head = await log.head();
    await log.append('verified', { batchId: 'B', object: 'B/o1', target: 't' }); // after the head
    await log.close();
    const got = await batchLines(file, 'B', head.seq);
    expect(got.map((l) => l.type)).toEqual(['card-seen', 'file-acquired', 'card-seen', 'file-sealed']);
    expect(got.every((l) => l.batchId === 'B' && lineHash(l) === l.hash)).toBe(true);
    expect(got.map((l) => l.seq)).toEqual([...got.map((l) => l.seq)].sort((a, b) => a - b));
    // Without the head limit the later line is there too.
    expect((await batchLines(file, 'B', 1e9)).map((l) => l.type).at(-1)).toBe('verified');
  });
});

async function sampleRecord(): Promise<CustodyRecord> {
  const file = path.join(dir, 'audit.jsonl');
  const log = await AuditLog.open(file, { station: 'st', checkpointEvery: 0 });
  await log.append('card-seen', { batchId: 'B1', resumed: false, operator: 'alice', case: 'C-1', fingerprint: 'f'.repeat(64) });
  await log.append('file-acquired', { batchId: 'B1', file: 'DCIM/100MEDIA/DJI_0001.JPG', sha256: 'a'.repeat(64), size: 10 });
  const head = await log.head();
  await log.close();
  return {
    format: CUSTODY_FORMAT,
    batchId: 'B1',
    station: { name: 'st', key: formatPublicKey(station.publicKey) },
    createdAt: '2026-01-01T00:00:00.000Z',
    audit: { seq: head.seq, head: head.hash },
    lines: await batchLines(file, 'B1', head.seq),
  };
}

describe('custody record', () => {
  const expectB1 = { batchId: 'B1', station: station.publicKey };

  it('round-trips: signed by the station, sealed to the recipients, opened and checked', async () => {
    const rec = await sampleRecord();
    const sealed = sealCustodyRecord(rec, [evidence.publicKey], station);
    const opened = openCustodyRecord(sealed, [evidence], expectB1);
    expect(opened.record).toEqual(rec);
    expect(opened.signature.key).toBe(formatPublicKey(station.publicKey));
    // Nothing readable without a recipient key; a stranger's key opens nothing.
    expect(Buffer.from(sealed).toString('latin1')).not.toContain('alice');
    expect(codeOf(() => openCustodyRecord(sealed, [stranger], expectB1))).toBe('E_SEAL_NO_RECIPIENT');
  });

  it('a flipped byte on the target: E_CUSTODY_SEAL', async () => {
    const sealed = Buffer.from(sealCustodyRecord(await sampleRecord(), [evidence.publicKey], station));
    sealed[sealed.length - 5]! ^= 0x01;
    expect(codeOf(() => openCustodyRecord(sealed, [evidence], expectB1))).toBe('E_CUSTODY_SEAL');
  });

  it('a forgery sealed to the same public key (an edited operator) fails the signature: E_CUSTODY_SIGNATURE', async () => {
    const sealed = sealCustodyRecord(await sampleRecord(), [evidence.publicKey], station);
    const doc = JSON.parse(Buffer.from(openBytes(sealed, [evidence])).toString('utf8')) as { record: CustodyRecord };
    doc.record.lines[0]!.operator = 'mallory';
    doc.record.lines[0]!.hash = lineHash(doc.record.lines[0]!); // even with the line's own hash fixed up
    const forged = sealBytes(Buffer.from(canonicalJson(doc)), [evidence.publicKey]);
    expect(codeOf(() => openCustodyRecord(forged, [evidence], expectB1))).toBe('E_CUSTODY_SIGNATURE');
  });

  it("another station's record, another batch, a bad line: each refused with its code", async () => {
    const rec = await sampleRecord();
    const foreign = sealCustodyRecord({ ...rec, station: { name: 'st', key: formatPublicKey(otherStation.publicKey) } }, [evidence.publicKey], otherStation);
    expect(codeOf(() => openCustodyRecord(foreign, [evidence], expectB1))).toBe('E_CUSTODY_SIGNATURE');
    const other = sealCustodyRecord(rec, [evidence.publicKey], station);
    expect(codeOf(() => openCustodyRecord(other, [evidence], { ...expectB1, batchId: 'B2' }))).toBe('E_CUSTODY_MISMATCH');
    // A station that signs a line not matching its own hash (a bug, or an edited log) is caught too.
    const edited = { ...rec, lines: rec.lines.map((l, i) => (i === 1 ? { ...l, sha256: 'b'.repeat(64) } : l)) };
    const signed = { record: edited, signature: { alg: 'ed25519', key: formatPublicKey(station.publicKey), value: Buffer.from(sign(station, Buffer.from(`kluis-custody-v1\n${canonicalJson(edited)}`))).toString('base64') } };
    expect(codeOf(() => verifyCustodyDocument(signed, expectB1))).toBe('E_CUSTODY_MISMATCH');
    expect(codeOf(() => verifyCustodyDocument({ record: rec }, expectB1))).toBe('E_CUSTODY_SHAPE');
  });

  it('a line past the head, or a head line that does not hash to the head, is refused', async () => {
    const rec = await sampleRecord();
    expect(codeOf(() => openCustodyRecord(sealCustodyRecord({ ...rec, audit: { seq: rec.audit.seq - 1, head: rec.audit.head } }, [evidence.publicKey], station), [evidence], expectB1))).toBe('E_CUSTODY_MISMATCH');
    expect(codeOf(() => openCustodyRecord(sealCustodyRecord({ ...rec, audit: { seq: rec.audit.seq, head: 'e'.repeat(64) } }, [evidence.publicKey], station), [evidence], expectB1))).toBe('E_CUSTODY_MISMATCH');
  });
});

describe('custody record against its manifest', () => {
  async function pair(): Promise<{ rec: CustodyRecord; outer: ManifestOuter; inner: ManifestInner }> {
    const file = path.join(dir, 'audit2.jsonl');
    const log = await AuditLog.open(file, { station: 'st', checkpointEvery: 0 });
    await log.append('card-seen', { batchId: 'B1', resumed: false, operator: 'alice', case: 'C-1', fingerprint: 'f'.repeat(64), card: '/media/alice/DJI', label: 'DJI' });
    await log.append('file-acquired', { batchId: 'B1', file: 'DCIM/a.JPG', sha256: 'a'.repeat(64), size: 10 });
    await log.append('card-safe-to-remove', { batchId: 'B1', card: '/media/alice/DJI' });
    await log.append('file-sanitized', { batchId: 'B1', file: 'DCIM/a.JPG', sha256: 'c'.repeat(64), removed: [{ where: 'APP1/Exif/GPS', what: 'gps', bytes: 40 }] });
    await log.append('file-sealed', { batchId: 'B1', file: 'DCIM/a.JPG', object: 'B1/o1', sha256: 'd'.repeat(64) });
    await log.append('delivered', { batchId: 'B1', object: 'B1/o1', target: 'ceph' });
    await log.append('verified', { batchId: 'B1', object: 'B1/o1', target: 'ceph' });
    const head = await log.head();
    await log.close();
    const rec: CustodyRecord = {
      format: CUSTODY_FORMAT, batchId: 'B1', station: { name: 'st', key: formatPublicKey(station.publicKey) }, createdAt: '2026-01-01T00:00:00.000Z',
      audit: { seq: head.seq, head: head.hash }, lines: await batchLines(file, 'B1', head.seq),
    };
    const inner: ManifestInner = {
      batchId: 'B1', station: { name: 'st', key: formatPublicKey(station.publicKey) }, createdAt: rec.lines[0]!.time, operator: 'alice', case: 'C-1',
      card: { fingerprint: 'f'.repeat(64), root: '/media/alice/DJI', label: 'DJI' }, tool: { name: 'kluis', version: '0' },
      files: [{ path: 'DCIM/a.JPG', class: 'footage', status: 'sealed', objectId: 'o1', cardSha256: 'a'.repeat(64), size: 10, removed: [{ where: 'APP1/Exif/GPS', what: 'gps', bytes: 40 }] }],
    };
    const outer = verifyManifest(createManifest({ batchId: 'B1', createdAt: rec.createdAt, objects: [{ id: 'o1', size: 99, sha256: 'd'.repeat(64) }], inner, audit: { seq: head.seq, head: head.hash } }, [evidence.publicKey], station));
    return { rec, outer, inner };
  }

  it('summarizes who, which card, when, per file and per delivery; agrees with its manifest', async () => {
    const { rec, outer, inner } = await pair();
    expect(crossCheckCustody(rec, outer, inner)).toEqual([]);
    const s = summarizeCustody(rec);
    expect(s).toMatchObject({ operator: 'alice', case: 'C-1', card: { root: '/media/alice/DJI', label: 'DJI', fingerprint: 'f'.repeat(64) }, lines: 7 });
    expect(s.times.cardSeen).toBe(rec.lines[0]!.time);
    expect(s.times.safeToRemove).toBe(rec.lines[2]!.time);
    expect(s.files).toEqual([expect.objectContaining({ path: 'DCIM/a.JPG', acquired: expect.objectContaining({ sha256: 'a'.repeat(64) }), sanitized: expect.objectContaining({ removed: [{ where: 'APP1/Exif/GPS', what: 'gps', bytes: 40 }] }), sealed: expect.objectContaining({ object: 'B1/o1' }) })]);
    expect(s.deliveries).toEqual([{ object: 'B1/o1', target: 'ceph', delivered: rec.lines[5]!.time, verified: rec.lines[6]!.time }]);
  });

  it('names every disagreement: head, card, operator, case, card hash, removals, sealed object', async () => {
    const { rec, outer, inner } = await pair();
    const said = crossCheckCustody(
      rec,
      { ...outer, audit: { seq: outer.audit!.seq + 1, head: 'e'.repeat(64) }, objects: [{ id: 'o1', size: 99, sha256: '9'.repeat(64) }] },
      { ...inner, operator: 'mallory', case: 'C-2', card: { ...inner.card, fingerprint: '0'.repeat(64) }, files: [{ ...inner.files[0]!, cardSha256: '1'.repeat(64), removed: [] }] },
    ).join('\n');
    for (const what of [/tied to audit seq/, /card fingerprint/, /operator "alice", the manifest "mallory"/, /case "C-1", the manifest "C-2"/, /read with SHA-256/, /what was removed differs/, /object o1 sealed with SHA-256/]) expect(said).toMatch(what);
    expect(crossCheckCustody({ ...rec, lines: rec.lines.filter((l) => l.type !== 'file-sealed') }, outer, inner)).toEqual(['no line records sealing DCIM/a.JPG as object o1']);
  });
});
