/**
 * Export: gets a batch back out for evidence staff. Reads the signed manifest from a target
 * (never from the station's spool), checks the station's signature, opens the inner part with
 * the evidence identity, then decrypts every footage object into OUT, checking each ciphertext
 * hash against the signed manifest and each plaintext hash against the sanitized hash recorded
 * at ingest. Adds the batch report and an ASC MHL history.
 *
 * Layout (docs/evidence.md): card files and generated files live in separate namespaces, so no
 * card name can overwrite the report or the MHL history:
 *   OUT/sanitized/<card path>   the sanitized footage        (card paths only ever go below
 *   OUT/originals/<card path>   the originals (--originals)   one of these two folders)
 *   OUT/report.html, OUT/report.json, OUT/custody.json, OUT/ascmhl/   generated
 * The ASC MHL generation lists every file of the export, the report and the custody record
 * included, so `kluis mhl verify OUT` passes on a fresh export.
 *
 * From a station's config or an evidence desk's (src/evidence/source.ts): a desk finds whose
 * batch it is from its signed manifest and reads that station's targets. The custody record is
 * checked before anything is decrypted (an altered record exports nothing) and written out as
 * the station signed it.
 *
 * Never: writes outside OUT or through a link inside it, writes into a non-empty OUT unless
 * asked (`intoExisting`), or gives an unauthenticated file a final name: each file is decrypted
 * into a private temp folder inside OUT (src/evidence/outdir.ts) and renamed only after its last
 * chunk verified and its hash matched.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { KluisError } from '../errors.js';
import type { LoadedConfig } from '../config/index.js';
import type { Target } from '../targets/index.js';
import {
  openBytes, openCustodyRecord, openManifestInner, openToFile, parsePublicKey, verifyManifest,
  type ManifestInner, type ManifestOuter, type PublicKey, type SecretKey,
} from '../seal/index.js';
import { crossCheckCustody } from './custody.js';
import { locateBatch, openSourceTarget, stationSource, targetsOf, type EvidenceSource } from './source.js';
import { writeMhlGeneration } from './mhl/index.js';
import { OutDir } from './outdir.js';

/** The folder below OUT for the sanitized card files. */
export const EXPORT_SANITIZED = 'sanitized';
/** The folder below OUT for the card's original bytes (--originals). */
export const EXPORT_ORIGINALS = 'originals';

export interface ExportResult {
  batchId: string;
  target: string;
  out: string;
  /** `path` is the card path; `file` where it is below OUT ('/'-separated). */
  files: Array<{ path: string; file: string; sha256: string; size: number }>;
  skipped: Array<{ path: string; status: string; reason?: string }>;
  report?: string;
  /** The batch's custody record as the station signed it (checked before it was written). */
  custody?: string;
  mhl?: string;
  station?: { name: string; key: string };
  originals?: Array<{ path: string; file: string; sha256: string; size: number; target: string }>;
}

export async function readStream(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

function asSource(from: LoadedConfig | EvidenceSource): EvidenceSource {
  return 'kind' in from ? from : stationSource(from);
}

/**
 * Finds whose batch it is (a desk: from its signed manifest), then opens that station's targets
 * in order (required first) and returns the first that holds the batch with a valid manifest.
 */
export async function findBatch(
  from: LoadedConfig | EvidenceSource,
  batchId: string,
): Promise<{ target: Target; outer: ManifestOuter; doc: unknown; station: { name: string; key: string }; stationKey: PublicKey }> {
  const source = asSource(from);
  const located = await locateBatch(source, batchId);
  if (!located.station) {
    const p = located.problem!;
    throw new KluisError(p.code, p.message, { hint: p.hint });
  }
  const station = located.station;
  const stationKey = parsePublicKey(station.key, 'station');
  const ordered = [...(source.kind === 'station' ? source.targets : targetsOf(source, station))].sort((a, b) => Number(b.required) - Number(a.required));
  const problems: string[] = [];
  for (const tc of ordered) {
    const target = openSourceTarget(source, tc);
    try {
      const head = await target.head(`${batchId}/manifest.json`);
      if (!head) {
        problems.push(`${tc.name}: no manifest`);
        await target.close();
        continue;
      }
      const doc = JSON.parse((await readStream(await target.get(`${batchId}/manifest.json`))).toString('utf8')) as unknown;
      const outer = verifyManifest(doc, stationKey);
      if (outer.batchId !== batchId) throw new KluisError('E_MANIFEST_SHAPE', `the manifest under ${batchId} names batch ${outer.batchId}`);
      return { target, outer, doc, station: { name: station.name, key: station.key }, stationKey };
    } catch (err) {
      await target.close();
      if (err instanceof KluisError && err.code.startsWith('E_MANIFEST')) throw err;
      problems.push(`${tc.name}: ${(err as Error).message}`);
    }
  }
  throw new KluisError('E_VERIFY_MISSING', `batch ${batchId} was not found on any target (${problems.join('; ')})`, {
    hint: 'check the batch id with `kluis status` or `kluis catalog`, and that the targets are reachable',
  });
}

/** The batch's custody record from `target`, checked against the signed manifest; null when it names none. */
async function checkedCustody(target: Target, batchId: string, outer: ManifestOuter, inner: ManifestInner, identities: SecretKey[], stationKey: PublicKey): Promise<unknown | null> {
  const id = typeof inner.extra?.custodyObject === 'string' ? inner.extra.custodyObject : undefined;
  if (!id) return null;
  const obj = outer.objects.find((o) => o.id === id);
  if (!obj) throw new KluisError('E_CUSTODY_MISMATCH', `the inner manifest names custody record ${id}, which the signed outer list does not hold`, { hint: 'do not trust this manifest; compare with the copy on another target' });
  const sealed = await readStream(await target.get(`${batchId}/${id}`));
  if (createHash('sha256').update(sealed).digest('hex') !== obj.sha256) {
    throw new KluisError('E_CUSTODY_ALTERED', `the custody record on ${target.name} is not the one the signed manifest names`, {
      hint: 'it was changed or replaced on the target: keep it for investigation, and run `kluis verify` to see which targets hold the right one',
    });
  }
  const signed = openCustodyRecord(sealed, identities, { batchId, station: stationKey });
  const disagree = crossCheckCustody(signed.record, outer, inner);
  if (disagree.length > 0) throw new KluisError('E_CUSTODY_MISMATCH', `the custody record and the signed manifest disagree: ${disagree.slice(0, 3).join('; ')}`, { hint: 'keep both for investigation' });
  return signed;
}

/**
 * A manifest path made safe to join under OUT: relative, no '..', no empty parts. A backslash is
 * refused only where it separates folders (Windows); on a POSIX system it is an ordinary
 * character of a card name, and refusing it stopped the export of the whole batch.
 */
export function safeRelative(p: string): string[] {
  const parts = p.split('/');
  const backslashSeparates = path.sep === '\\';
  if (p.startsWith('/') || parts.some((x) => x === '' || x === '.' || x === '..' || x.includes('\0') || (backslashSeparates && x.includes('\\')))) {
    throw new KluisError('E_MANIFEST_PATH', `the manifest names an unsafe path '${p}'`);
  }
  return parts;
}

async function hashedStream(src: Readable, expectSha256: string, what: string): Promise<Readable> {
  // Checks the ciphertext hash on the way through; the decryptor fails if it is wrong.
  const h = createHash('sha256');
  const pass = new PassThrough();
  src.on('data', (c: Buffer) => h.update(c));
  src.on('end', () => {
    const got = h.digest('hex');
    if (got !== expectSha256) pass.destroy(new KluisError('E_VERIFY_MISMATCH', `${what}: ciphertext hash ${got} is not the one in the signed manifest`));
    else pass.end();
  });
  src.on('error', (e) => pass.destroy(e));
  src.pipe(pass, { end: false });
  return pass;
}

export async function exportBatch(
  from: LoadedConfig | EvidenceSource,
  batchId: string,
  identities: SecretKey[],
  outDir: string,
  opts: {
    operator?: string;
    /** Also decrypt the sealed unsanitized originals into OUT/originals/. */
    originals?: boolean;
    /** Write into an OUT that is not empty (files of the same name are replaced; a new MHL generation is added). */
    intoExisting?: boolean;
  } = {},
): Promise<ExportResult> {
  const source = asSource(from);
  const { target, outer, station, stationKey } = await findBatch(source, batchId);
  let out: OutDir | undefined;
  try {
    const inner: ManifestInner = openManifestInner(outer, identities);
    // The custody record first: a batch whose record does not hold is not decrypted at all.
    const custody = await checkedCustody(target, batchId, outer, inner, identities, stationKey);
    out = await OutDir.open(outDir, { intoExisting: opts.intoExisting === true });
    const byId = new Map(outer.objects.map((o) => [o.id, o]));
    const result: ExportResult = { batchId, target: target.name, out: out.root, files: [], skipped: [], station };
    for (const f of inner.files) {
      if (!f.objectId) {
        result.skipped.push({ path: f.path, status: f.status, ...(f.error ? { reason: `${f.error.code}: ${f.error.message}` } : {}) });
        continue;
      }
      const obj = byId.get(f.objectId);
      if (!obj) throw new KluisError('E_VERIFY_MISMATCH', `${f.path}: object ${f.objectId} is not listed in the signed manifest`);
      const parts = [EXPORT_SANITIZED, ...safeRelative(f.path)];
      const tmp = out.tempFile();
      const stream = await hashedStream(await target.get(`${batchId}/${obj.id}`), obj.sha256, f.path);
      const got = await openToFile(stream, tmp, identities, { tempDir: out.tempDir });
      if (f.sanitizedSha256 && got.sha256 !== f.sanitizedSha256) {
        throw new KluisError('E_VERIFY_MISMATCH', `${f.path}: decrypted hash ${got.sha256} is not the sanitized hash ${f.sanitizedSha256} recorded at ingest`);
      }
      await out.place(tmp, parts);
      result.files.push({ path: f.path, file: parts.join('/'), sha256: got.sha256, size: got.size });
    }
    if (opts.originals) result.originals = await exportOriginals(source, station, batchId, inner, byId, identities, out);
    const generated: string[] = [];
    const reportId = typeof inner.extra?.reportObject === 'string' ? inner.extra.reportObject : undefined;
    if (reportId && byId.has(reportId)) {
      const sealed = await readStream(await target.get(`${batchId}/${reportId}`));
      const report = JSON.parse(Buffer.from(openBytes(sealed, identities)).toString('utf8')) as { html: string; json: string };
      result.report = await out.writeFile(['report.html'], report.html);
      await out.writeFile(['report.json'], report.json);
      generated.push('report.html', 'report.json');
    }
    if (custody) {
      result.custody = await out.writeFile(['custody.json'], `${JSON.stringify(custody, null, 2)}\n`);
      generated.push('custody.json');
    }
    await out.close();
    await out.folder(['ascmhl']);
    const mhl = await writeMhlGeneration(out.root, {
      files: [...result.files.map((f) => f.file), ...(result.originals ?? []).map((o) => o.file), ...generated],
      process: 'transfer',
      creator: {
        ...(opts.operator ? { author: { name: opts.operator, role: 'evidence export' } } : {}),
        comment: `kluis export of batch ${batchId} from target ${target.name}`,
      },
    });
    result.mhl = mhl.manifestPath;
    return result;
  } finally {
    await out?.close();
    await target.close();
  }
}

/**
 * Decrypts the sealed originals (the card's bytes, before sanitizing) into OUT/originals/, from
 * the targets the config allows originals on; each must decrypt to the hash read from the card.
 */
async function exportOriginals(
  source: EvidenceSource,
  station: { name: string; key: string },
  batchId: string,
  inner: ManifestInner,
  byId: Map<string, { id: string; size: number; sha256: string }>,
  identities: SecretKey[],
  out: OutDir,
): Promise<Array<{ path: string; file: string; sha256: string; size: number; target: string }>> {
  const wanted = inner.files.filter((f) => typeof (f as { originalObjectId?: unknown }).originalObjectId === 'string');
  if (wanted.length === 0) {
    throw new KluisError('E_VERIFY_MISSING', `batch ${batchId} holds no sealed originals`, {
      hint: 'originals are sealed only when a target in the config has "originalsAllowed": true at ingest',
    });
  }
  const st = source.stations.find((s) => s.key === station.key)!;
  const allowed = (source.kind === 'station' ? source.targets : targetsOf(source, st)).filter((t) => t.originalsAllowed);
  const done: Array<{ path: string; file: string; sha256: string; size: number; target: string }> = [];
  for (const f of wanted) {
    const id = String((f as { originalObjectId?: unknown }).originalObjectId);
    const obj = byId.get(id);
    if (!obj) throw new KluisError('E_VERIFY_MISMATCH', `${f.path}: original ${id} is not listed in the signed manifest`);
    const parts = [EXPORT_ORIGINALS, ...safeRelative(f.path)];
    let lastErr: unknown;
    let fetched: { tmp: string; sha256: string; size: number; target: string } | undefined;
    for (const tc of allowed) {
      const target = openSourceTarget(source, tc);
      try {
        if (!(await target.head(`${batchId}/${id}`))) continue;
        const tmp = out.tempFile();
        const got = await openToFile(await hashedStream(await target.get(`${batchId}/${id}`), obj.sha256, `${f.path} (original)`), tmp, identities, { tempDir: out.tempDir });
        if (f.cardSha256 && got.sha256 !== f.cardSha256) {
          await fsp.rm(tmp, { force: true });
          throw new KluisError('E_VERIFY_MISMATCH', `${f.path}: the original decrypts to ${got.sha256}, not the card hash ${f.cardSha256}`);
        }
        fetched = { tmp, sha256: got.sha256, size: got.size, target: tc.name };
        break;
      } catch (err) {
        if (err instanceof KluisError && err.code === 'E_VERIFY_MISMATCH') throw err;
        lastErr = err;
      } finally {
        await target.close();
      }
    }
    if (!fetched) throw new KluisError('E_VERIFY_MISSING', `${f.path}: its original is on no reachable target that allows originals`, { cause: lastErr });
    // Outside the loop over targets: a problem with OUT (a link) is not a reason to try another target.
    await out.place(fetched.tmp, parts);
    done.push({ path: f.path, file: parts.join('/'), sha256: fetched.sha256, size: fetched.size, target: fetched.target });
  }
  return done;
}
