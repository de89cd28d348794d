// kluis issue 8: `kluis verify` decrypts every object and recomputes its essence hashes.
// A card with a JPEG, a TIFF and an MP4 with audio is ingested through the real `kluis` command
// (bin/kluis.js runs dist/: build first with `npx tsc -p .`); `kluis verify --json` must report
// every recorded essence method of every file as rechecked and verified on the target. Then it
// is shown that the check can fail: recomputed from a re-encoded copy of the exported JPEG and MP4
// the values differ from the recorded ones, and verifyBatch, fed such a copy, names a mismatch.
// The methods are recorded as data; the same batch with its manifest written the older way (one
// method string per entry) still verifies every essence.
// `--deep` decodes every stored file in full and, with the card, compares pictures' pixels.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeCard } from '../helpers/card.js';
import { listFiles, makeStation, parseJson, runKluis, type TestStation } from '../helpers/kluis.js';
import { loadConfig } from '../../src/config/load.js';
import { readSecretKeyFile } from '../../src/seal/keys.js';
import { createManifest, openManifestInner, verifyManifest, type ManifestFile } from '../../src/seal/manifest.js';
import { parsePublicKey } from '../../src/seal/keys.js';
import { decodeFully, essenceLabel, essenceMethodOf, recomputeEssence } from '../../src/sanitize/index.js';
import { FsTarget } from '../../src/targets/fs.js';
import { verifyBatch } from '../../src/evidence/verify.js';

const JPG = 'DCIM/100MEDIA/DJI_0001.JPG';
const TIF = 'DCIM/100MEDIA/DJI_0002.TIF';
const MP4 = 'DCIM/100MEDIA/DJI_0003.MP4';

let work: string;
let st: TestStation;
let batchId: string;
let recorded: Map<string, ManifestFile>;
let exported: string;
let card: string;

const ff = (args: string[]): void => void execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });

interface VerifyJson {
  result: string;
  ok: boolean;
  essence: string;
  files: Array<{ path: string; status: string; result: string; targets: Array<{ target: string; result: string; checks: Array<{ check: string; result: string; message?: string }> }> }>;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kluis-vess-'));
  card = makeCard(path.join(work, 'card'), [
    { kind: 'jpeg', name: 'DJI_0001.JPG' },
    { kind: 'mp4', name: 'DJI_0003.MP4', seconds: 1 },
  ]);
  // A 16-bit TIFF with GPS, serial, XMP and IPTC (test/fixtures/generated/README.md, tagged.tiff).
  copyFileSync(path.resolve(__dirname, '..', 'fixtures', 'generated', 'tagged.tiff'), path.join(card, ...TIF.split('/')));
  st = makeStation(path.join(work, 'station'));
  const ing = runKluis(['ingest', card, '--config', st.config, '--json']);
  const doc = parseJson<{ batchId: string; status: string; files: Array<{ path: string; status: string }> }>(ing);
  expect(doc.status, ing.stderr).toBe('secured');
  expect(doc.files.filter((f) => f.status === 'secured').map((f) => f.path).sort()).toEqual([JPG, TIF, MP4]);
  batchId = doc.batchId;

  // The recorded essence values, read from the sealed manifest on the store with the evidence key.
  const manifestFile = listFiles(st.store).find((p) => p === `${batchId}/manifest.json`);
  expect(manifestFile).toBeDefined();
  const config = await loadConfig(st.config);
  const outer = verifyManifest(JSON.parse(readFileSync(path.join(st.store, manifestFile!), 'utf8')), parsePublicKey(config.config.stationKey, 'station'));
  const inner = openManifestInner(outer, [await readSecretKeyFile(st.evidenceKey, 'recipient')]);
  recorded = new Map(inner.files.filter((f) => f.essence?.length).map((f) => [f.path, f]));

  exported = path.join(work, 'export');
  const ex = runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', exported]);
  expect(ex.code, ex.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
});

describe('kluis verify rechecks the essence of every decrypted file', () => {
  it('records the expected methods for each format', () => {
    // As data in the manifest: the method id, and for video the track by its track_ID.
    const ids = (p: string): unknown[] => recorded.get(p)!.essence!.map((e) => essenceMethodOf(e));
    expect(ids(JPG)).toEqual([{ method: 'jpeg-decoder-segments-sha256' }]);
    expect(ids(TIF)).toEqual([{ method: 'tiff-image-data-and-decoding-tags-sha256' }]);
    expect(ids(MP4)).toEqual([{ method: 'mp4-samples-sha256', track: 1 }, { method: 'mp4-samples-sha256', track: 2 }]);
    for (const f of recorded.values()) for (const e of f.essence!) expect(e.method, f.path).toMatch(/^[a-z0-9-]+$/);
    expect(recorded.get(MP4)!.essence!.map((e) => (e.about as { kind?: string } | undefined)?.kind).sort()).toEqual(['audio', 'video']);
  });

  it('`kluis verify --json`: every essence method of every file verified on the target', () => {
    const r = runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey, '--json']);
    const rep = parseJson<VerifyJson>(r);
    expect(r.code, r.stderr).toBe(0);
    expect(rep.ok).toBe(true);
    expect(rep.essence).toBe('rechecked');
    for (const p of [JPG, TIF, MP4]) {
      const f = rep.files.find((x) => x.path === p)!;
      expect(f.result, p).toBe('verified');
      expect(f.targets.length, p).toBeGreaterThan(0);
      for (const t of f.targets) {
        const got = t.checks.filter((c) => c.check.startsWith('essence:'));
        expect(got, `${p} on ${t.target}`).toEqual(recorded.get(p)!.essence!.map((e) => ({ check: `essence:${essenceLabel(e)}`, result: 'verified' })));
      }
    }
  });

  it('the human output counts the essence outcomes', () => {
    const r = runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey]);
    expect(r.code, r.stderr).toBe(0);
    const n = [JPG, TIF, MP4].reduce((a, p) => a + recorded.get(p)!.essence!.length, 0);
    expect(r.stdout).toContain(`essence hashes recomputed from the decrypted files: ${n} verified`);
  });

  it('a re-encoded JPEG or MP4 gives values that differ from every recorded one', async () => {
    const jpg = path.join(work, 'reencoded.jpg');
    ff(['-i', path.join(exported, 'sanitized', ...JPG.split('/')), '-q:v', '2', jpg]);
    const mp4 = path.join(work, 'reencoded.mp4');
    ff(['-i', path.join(exported, 'sanitized', ...MP4.split('/')), '-map', '0', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '30', '-c:a', 'aac', '-b:a', '64k', mp4]);
    for (const [p, copy] of [[JPG, jpg], [MP4, mp4]] as const) {
      const f = recorded.get(p)!;
      for (const e of f.essence!) {
        // The exported file itself gives the recorded value, so a difference is the re-encode's.
        expect(await recomputeEssence(path.join(exported, 'sanitized', ...p.split('/')), f.format, e), essenceLabel(e)).toBe(e.after);
        const got = await recomputeEssence(copy, f.format, e);
        expect(got, essenceLabel(e)).toMatch(/^[0-9a-f]{64}$/);
        expect(got, essenceLabel(e)).not.toBe(e.after);
      }
    }
  });

  it('verifyBatch names an essence mismatch per file per target when the recompute sees a re-encoded picture', async () => {
    const config = await loadConfig(st.config);
    const identities = [await readSecretKeyFile(st.evidenceKey, 'recipient')];
    let n = 0;
    const r = await verifyBatch({
      config,
      batchId,
      identities,
      audit: false,
      // The real recompute, but on a re-encoded copy of the JPEG it is given (others as they are).
      essence: async (file, format, method) => {
        if (format !== 'jpeg') return recomputeEssence(file, format, method);
        const copy = path.join(work, `mm-${n++}.jpg`);
        ff(['-i', file, '-q:v', '2', copy]);
        return recomputeEssence(copy, format, method);
      },
    });
    expect(r.result).toBe('mismatch');
    const jpg = r.files.find((f) => f.path === JPG)!;
    expect(jpg.result).toBe('mismatch');
    for (const t of jpg.targets) {
      const es = t.checks.filter((c) => c.check.startsWith('essence:'));
      expect(es).toHaveLength(recorded.get(JPG)!.essence!.length);
      expect(es.length).toBeGreaterThan(0);
      for (const c of es) expect(c).toMatchObject({ result: 'mismatch', message: expect.stringMatching(/^recomputed [0-9a-f]{64}, manifest says [0-9a-f]{64}$/) });
      // Ciphertext and plaintext still verified: the mismatch is named where it is.
      expect(t.checks.find((c) => c.check === 'plaintext-sha256')?.result).toBe('verified');
    }
    for (const p of [TIF, MP4]) expect(r.files.find((f) => f.path === p)!.result, p).toBe('verified');
    expect(r.problems.some((p) => p.path === JPG && /essence:jpeg-decoder-segments-sha256: recomputed/.test(p.message))).toBe(true);
  });

  it('a manifest written before methods were data (one method string per entry) is read, and every essence verifies', async () => {
    const config = await loadConfig(st.config);
    const evidence = await readSecretKeyFile(st.evidenceKey, 'recipient');
    const outer = verifyManifest(JSON.parse(readFileSync(path.join(st.store, batchId, 'manifest.json'), 'utf8')));
    const inner = openManifestInner(outer, [evidence]);
    // Each entry as kluis wrote it before: "mp4-samples-sha256:t<track> per track, track <track>
    // (<kind> <codec>, <n> samples, <b> bytes)", the image ids as they are; nothing else.
    const oldForm = (e: Record<string, unknown> & { method: string; before: string; after: string }): { method: string; before: string; after: string } => {
      const about = e.about as { kind: string; codec: string; samples: number; bytes: number } | undefined;
      const method = e.method === 'mp4-samples-sha256' ? `mp4-samples-sha256:t${String(e.track)} per track, track ${String(e.track)} (${about!.kind} ${about!.codec}, ${about!.samples} samples, ${about!.bytes} bytes)` : e.method;
      return { method, before: e.before, after: e.after };
    };
    const old = { ...inner, files: inner.files.map((f) => (f.essence ? { ...f, essence: f.essence.map(oldForm) } : f)) };
    const strings = old.files.flatMap((f) => (f.essence ?? []).map((e) => e.method));
    expect(strings.filter((m) => /^mp4-samples-sha256:t[12] per track, track [12] \((video|audio) /.test(m))).toHaveLength(2);
    // Signed again by the station as before (same objects, audit head and time), on a copy of the store.
    const stationKey = await readSecretKeyFile(path.join(st.dir, 'keys', 'station.key'), 'station');
    const signed = createManifest({ batchId, createdAt: outer.createdAt, objects: outer.objects, inner: old, ...(outer.audit ? { audit: outer.audit } : {}) }, [evidence.publicKey], stationKey);
    const store = path.join(work, 'store-old-manifest');
    await fsp.cp(st.store, store, { recursive: true });
    writeFileSync(path.join(store, batchId, 'manifest.json'), JSON.stringify(signed));

    const r = await verifyBatch({ config, batchId, identities: [evidence], audit: false, targets: [new FsTarget(config.config.targets[0]!.name, store)] });
    expect(r.problems).toEqual([]);
    expect(r.result).toBe('verified');
    expect(r.essence).toBe('rechecked');
    for (const p of [JPG, TIF, MP4]) {
      const f = r.files.find((x) => x.path === p)!;
      const want = old.files.find((x) => x.path === p)!.essence!.map((e) => ({ check: `essence:${e.method}`, result: 'verified' }));
      for (const t of f.targets) expect(t.checks.filter((c) => c.check.startsWith('essence:')), `${p} on ${t.target}`).toEqual(want);
    }
  });

  it('`kluis verify --deep --card`: every stored file decodes in full, and each picture decodes to the card file\'s pixels', () => {
    const r = runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey, '--card', card, '--deep', '--json']);
    const rep = parseJson<VerifyJson>(r);
    expect(r.code, r.stderr).toBe(0);
    for (const p of [JPG, TIF, MP4]) {
      const f = rep.files.find((x) => x.path === p)!;
      expect(f.result, p).toBe('verified');
      for (const t of f.targets) {
        expect(t.checks.find((c) => c.check === 'decode'), `${p} on ${t.target}`).toMatchObject({ result: 'verified' });
        const px = t.checks.find((c) => c.check === 'decode:card-pixels');
        if (p === MP4) expect(px).toBeUndefined();
        else expect(px, `${p} on ${t.target}`).toEqual({ check: 'decode:card-pixels', result: 'verified' });
      }
    }
    const human = runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey, '--card', card, '--deep']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/decoded in full: \d+ verified/);
    expect(human.stdout).toMatch(/decoded pixels equal to the card file: \d+ verified/);
    // Without --deep nothing is decoded.
    const plain = parseJson<VerifyJson>(runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey, '--json']));
    expect(plain.files.flatMap((f) => f.targets.flatMap((t) => t.checks)).filter((c) => c.check.startsWith('decode'))).toEqual([]);
  });

  it('verifyBatch --deep names a stored picture that does not decode, or decodes to other pixels than the card file', async () => {
    const config = await loadConfig(st.config);
    const identities = [await readSecretKeyFile(st.evidenceKey, 'recipient')];
    const r = await verifyBatch({
      config, batchId, identities, audit: false, essence: null, deep: true, card,
      // The real full decode, except that the stored JPEG "does not decode" and the card TIFF gives other pixels.
      decode: async (file) => {
        const real = await decodeFully(file);
        if (file.includes('kluis-part-') && file.endsWith('.jpg')) throw Object.assign(new Error('ffmpeg: corrupt scan'), { code: 'E_DECODE_FAILED' });
        if (file.endsWith('DJI_0002.TIF')) return { ...real, pixelsSha256: '0'.repeat(64) };
        return real;
      },
    });
    expect(r.result).toBe('mismatch');
    const jpg = r.files.find((f) => f.path === JPG)!;
    for (const t of jpg.targets) expect(t.checks.find((c) => c.check === 'decode')).toMatchObject({ result: 'mismatch', message: expect.stringContaining('corrupt scan') });
    const tif = r.files.find((f) => f.path === TIF)!;
    for (const t of tif.targets) {
      expect(t.checks.find((c) => c.check === 'decode')).toMatchObject({ result: 'verified' });
      expect(t.checks.find((c) => c.check === 'decode:card-pixels')).toMatchObject({ result: 'mismatch', message: expect.stringMatching(/the card file's 0{64}$/) });
    }
    expect(r.files.find((f) => f.path === MP4)!.result).toBe('verified');
  });
});
