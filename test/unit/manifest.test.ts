// Signed batch manifest: a storage operator can verify the outer part with no secret, only
// recipients can read the inner part, and any change or foreign signature is caught.
import { describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { createManifest, openManifestInner, verifyManifest, type ManifestInner } from '../../src/seal/manifest.js';
import { formatPublicKey, generateKey, sign } from '../../src/seal/keys.js';
import { deterministicRandom } from '../../src/seal/det-random.js';
import { canonicalJson } from '../../src/util/canonical-json.js';

const evidence = generateKey('recipient', deterministicRandom('evidence'));
const escrow = generateKey('recipient', deterministicRandom('escrow'));
const other = generateKey('recipient', deterministicRandom('other'));
const station = generateKey('station', deterministicRandom('station'));
const station2 = generateKey('station', deterministicRandom('station2'));
const H = (c: string): string => c.repeat(64);

function inner(): ManifestInner {
  return {
    batchId: 'b-20240501-0001',
    station: { name: 'rws-station-1', key: formatPublicKey(station.publicKey) },
    createdAt: '2024-05-01T10:00:00.000Z',
    operator: 'j.jansen',
    case: 'PV-2024-123',
    card: { label: 'DJI', uuid: '1234-ABCD', fingerprint: H('f'), root: '/media/card' },
    tool: { name: 'kluis', version: '0.1.0' },
    files: [
      {
        path: 'DCIM/100MEDIA/DJI_0001.JPG', class: 'footage', status: 'secured', objectId: 'o1',
        cardSha256: H('a'), cardXxh128: 'b'.repeat(32), size: 1000, format: 'jpeg',
        sanitizedSha256: H('c'), sanitizedSize: 900,
        essence: [{ method: 'jpeg-scan-sha256', before: H('d'), after: H('d') }],
        removed: [{ where: 'APP1/Exif/GPS', what: 'gps', bytes: 100 }], kept: [],
        laterField: { anything: 1 },
      },
      { path: 'DCIM/100MEDIA/DJI_0001.SRT', class: 'sidecar', status: 'withheld', cardSha256: H('e'), size: 10 },
    ],
  };
}
const objects = [{ id: 'o1', size: 1200, sha256: H('9') }];
const args = { batchId: 'b-20240501-0001', createdAt: '2024-05-01T10:00:00.000Z', objects, inner: inner() };

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof KluisError) return err.code;
    throw err;
  }
  return 'OK';
}

describe('manifest', () => {
  const signed = createManifest(args, [evidence.publicKey, escrow.publicKey], station);
  const roundTripped: unknown = JSON.parse(JSON.stringify(signed));

  test('verifies without secrets, and every recipient reads the inner part (unknown file fields survive)', () => {
    const outer = verifyManifest(roundTripped, station.publicKey);
    expect(outer.objects).toEqual(objects);
    for (const id of [evidence, escrow]) {
      const got = openManifestInner(outer, [id]);
      expect(got).toEqual(inner());
      expect((got.files[0] as Record<string, unknown>).laterField).toEqual({ anything: 1 });
    }
  });

  test('the outer part reveals no file name or plaintext hash', () => {
    const text = JSON.stringify(signed);
    expect(text).not.toContain('DJI_0001');
    expect(text).not.toContain(H('a'));
    expect(text).not.toContain('PV-2024');
  });

  test('a wrong key, the station key, and the inner part are refused with specific codes', () => {
    const outer = verifyManifest(roundTripped);
    expect(codeOf(() => openManifestInner(outer, [other]))).toBe('E_SEAL_NO_RECIPIENT');
    expect(codeOf(() => openManifestInner(outer, [station]))).toBe('E_KEY_KIND');
  });

  test('any change to the outer part breaks the signature', () => {
    const mutations: Array<(d: any) => void> = [
      (d) => (d.outer.objects[0].size += 1),
      (d) => (d.outer.objects[0].sha256 = H('8')),
      (d) => d.outer.objects.push({ id: 'o2', size: 1, sha256: H('7') }),
      (d) => (d.outer.objects = []),
      (d) => (d.outer.batchId = 'b-other'),
      (d) => (d.outer.createdAt = '2025-01-01T00:00:00.000Z'),
      (d) => (d.outer.inner = Buffer.from(Buffer.from(d.outer.inner, 'base64').map((x: number, i: number) => (i === 200 ? x ^ 1 : x))).toString('base64')),
      (d) => (d.signature.value = Buffer.from(Buffer.from(d.signature.value, 'base64').map((x: number, i: number) => (i === 0 ? x ^ 1 : x))).toString('base64')),
    ];
    for (const [i, m] of mutations.entries()) {
      const d = JSON.parse(JSON.stringify(signed));
      m(d);
      expect(codeOf(() => verifyManifest(d)), `mutation ${i}`).toBe('E_MANIFEST_SIGNATURE');
    }
  });

  test('the audit head sits in the signed outer part: readable without a key, and covered by the signature', () => {
    const head = { seq: 41, head: H('4') };
    const m = JSON.parse(JSON.stringify(createManifest({ ...args, audit: head }, [evidence.publicKey], station)));
    expect(verifyManifest(m, station.publicKey).audit).toEqual(head);
    for (const change of [(d: any) => (d.outer.audit.seq = 40), (d: any) => (d.outer.audit.head = H('5')), (d: any) => delete d.outer.audit]) {
      const d = JSON.parse(JSON.stringify(m));
      change(d);
      expect(codeOf(() => verifyManifest(d))).toBe('E_MANIFEST_SIGNATURE');
    }
    // A manifest made without one (older stations) still verifies, and has none.
    expect(verifyManifest(roundTripped).audit).toBeUndefined();
  });

  test('a manifest re-signed by another station: valid signature, wrong station', () => {
    const forged = createManifest({ ...args, inner: { ...inner(), station: { name: 'x', key: formatPublicKey(station2.publicKey) } } }, [evidence.publicKey], station2);
    expect(codeOf(() => verifyManifest(forged))).toBe('OK');
    expect(codeOf(() => verifyManifest(forged, station.publicKey))).toBe('E_MANIFEST_STATION');
    // Swapping only the station field to the expected one breaks the signature instead.
    const swapped = JSON.parse(JSON.stringify(forged));
    swapped.outer.station = formatPublicKey(station.publicKey);
    swapped.signature.key = swapped.outer.station;
    expect(codeOf(() => verifyManifest(swapped, station.publicKey))).toBe('E_MANIFEST_SIGNATURE');
  });

  test('shape errors name the field', () => {
    expect(codeOf(() => verifyManifest(null))).toBe('E_MANIFEST_SHAPE');
    expect(codeOf(() => verifyManifest({ outer: { ...signed.outer, format: 'kluis-manifest/2' }, signature: signed.signature }))).toBe('E_MANIFEST_SHAPE');
    const d = JSON.parse(JSON.stringify(signed));
    d.outer.objects[0].sha256 = 'XYZ';
    expect(() => verifyManifest(d)).toThrow(/objects\.0\.sha256/);
    expect(codeOf(() => createManifest({ ...args, inner: { ...inner(), files: [{ path: 'x' }] } as any }, [evidence.publicKey], station))).toBe('E_MANIFEST_SHAPE');
  });

  test('an inner part that disagrees with its outer part is E_MANIFEST_INNER', () => {
    // Only possible for the station key holder: sign an outer whose inner names another batch.
    const m = createManifest(args, [evidence.publicKey], station);
    const innerOther = createManifest({ ...args, batchId: 'b-x', inner: { ...inner(), batchId: 'b-x' } }, [evidence.publicKey], station);
    const outer = { ...m.outer, inner: innerOther.outer.inner };
    const doc = { outer, signature: { alg: 'ed25519', key: outer.station, value: Buffer.from(sign(station, Buffer.from('kluis-manifest-v1\n' + canonicalJson(outer)))).toString('base64') } };
    const verified = verifyManifest(doc, station.publicKey);
    expect(codeOf(() => openManifestInner(verified, [evidence]))).toBe('E_MANIFEST_INNER');
  });

  test('signing needs the station key and recipient keys', () => {
    expect(codeOf(() => createManifest(args, [evidence.publicKey], evidence))).toBe('E_KEY_KIND');
    expect(codeOf(() => createManifest(args, [station.publicKey], station))).toBe('E_KEY_KIND');
  });
});
