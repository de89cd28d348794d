/**
 * The batch's signed manifest, as each target holds it: parsed, its station signature checked,
 * its batch id checked, and every good copy required to be the same document (a damaged or
 * differing copy is named with what differs). Then its inner part, opened with the identities.
 * Reads each manifest capped in size; never writes.
 */
import { KluisError } from '../../errors.js';
import { openManifestInner, verifyManifest, type ManifestInner, type ManifestOuter, type PublicKey, type SecretKey } from '../../seal/index.js';
import type { Target } from '../../targets/index.js';
import { canonicalJson } from '../../util/canonical-json.js';
import { readCapped } from '../../util/limits.js';
import { errText, isMissing, type ManifestResult, type Outcome, type VerifyProblem } from './result.js';

const MANIFEST_CAP = 64 * 1024 * 1024;

/** Names what differs between a damaged outer manifest and a good one. */
function describeManifestDiff(bad: unknown, good: ManifestOuter): string {
  const outer = (bad as { outer?: Record<string, unknown> })?.outer;
  if (!outer || typeof outer !== 'object') return 'not a manifest document';
  const diffs: string[] = [];
  for (const k of ['format', 'batchId', 'createdAt', 'station', 'inner', 'audit'] as const) {
    if (canonicalJson(outer[k] ?? null) !== canonicalJson(good[k] ?? null)) diffs.push(k);
  }
  const objs = Array.isArray(outer.objects) ? (outer.objects as Array<Record<string, unknown>>) : [];
  const byId = new Map(good.objects.map((o) => [o.id, o]));
  objs.forEach((o, i) => {
    const g = byId.get(String(o.id));
    if (!g) diffs.push(`objects[${i}] (id ${String(o.id)}) is not in the good copy`);
    else
      for (const f of ['size', 'sha256'] as const) {
        if (o[f] !== g[f]) diffs.push(`objects[${i}].${f} of object ${g.id}`);
      }
  });
  if (objs.length !== good.objects.length) diffs.push(`${objs.length} objects instead of ${good.objects.length}`);
  return diffs.length ? `differs from the good copy in: ${diffs.join(', ')}` : 'signature block differs from the good copy';
}

/** The manifest on every target; `good` is the first copy that checks out. Problems go to `problems`. */
export async function readManifests(
  targets: Target[],
  batchId: string,
  stationPub: PublicKey | undefined,
  problems: VerifyProblem[],
): Promise<{ manifests: ManifestResult[]; good: ManifestOuter | undefined }> {
  const manifestKey = `${batchId}/manifest.json`;
  const manifests: ManifestResult[] = [];
  const raw = new Map<string, { doc: unknown; outer?: ManifestOuter }>();
  let good: ManifestOuter | undefined;
  for (const t of targets) {
    try {
      const text = await readCapped(await t.get(manifestKey), MANIFEST_CAP, 'manifest', 'E_VERIFY_MISMATCH');
      let doc: unknown;
      try {
        doc = JSON.parse(text.toString('utf8'));
      } catch {
        raw.set(t.name, { doc: null });
        manifests.push({ target: t.name, result: 'mismatch', message: 'manifest.json is not valid JSON' });
        continue;
      }
      try {
        const outer = verifyManifest(doc, stationPub);
        if (outer.batchId !== batchId) throw new KluisError('E_MANIFEST_SHAPE', `manifest is for batch ${outer.batchId}`);
        raw.set(t.name, { doc, outer });
        manifests.push({ target: t.name, result: 'verified' });
        good ??= outer;
      } catch (err) {
        raw.set(t.name, { doc });
        manifests.push({ target: t.name, result: 'mismatch', message: errText(err) });
      }
    } catch (err) {
      manifests.push(isMissing(err) ? { target: t.name, result: 'missing', message: `${manifestKey} is not on the target` } : { target: t.name, result: 'unchecked', message: errText(err) });
    }
  }
  // Name what changed in a damaged copy, and require all good copies to agree.
  for (const m of manifests) {
    const r = raw.get(m.target);
    if (!good || !r) continue;
    if (m.result === 'mismatch' && r.doc) m.message = `${m.message}; ${describeManifestDiff(r.doc, good)}`;
    if (m.result === 'verified' && r.outer && canonicalJson(r.outer) !== canonicalJson(good)) {
      m.result = 'mismatch';
      m.message = `signed by the station but differs from the copy on another target: ${describeManifestDiff(r.doc, good)}`;
    }
  }
  for (const m of manifests) {
    if (m.result !== 'verified') problems.push({ result: m.result, target: m.target, path: manifestKey, message: `manifest on ${m.target}: ${m.message}` });
  }
  return { manifests, good };
}

/** The inner part (names and plaintext hashes) of the good manifest, or undefined with a problem. */
export function openInner(
  good: ManifestOuter | undefined,
  identities: SecretKey[],
  batchId: string,
  manifests: ManifestResult[],
  problems: VerifyProblem[],
): ManifestInner | undefined {
  const manifestKey = `${batchId}/manifest.json`;
  let inner: ManifestInner | undefined;
  if (good) {
    try {
      inner = openManifestInner(good, identities);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const result: Outcome = code === 'E_SEAL_NO_RECIPIENT' || code.startsWith('E_KEY') ? 'unchecked' : 'mismatch';
      problems.push({ result, path: manifestKey, message: `cannot open the inner manifest: ${errText(err)}` });
    }
  } else {
    problems.push({ result: manifests.some((m) => m.result === 'mismatch') ? 'mismatch' : manifests.every((m) => m.result === 'missing') ? 'missing' : 'unchecked', message: `no target holds a valid signed manifest for batch ${batchId}` });
  }
  return inner;
}
