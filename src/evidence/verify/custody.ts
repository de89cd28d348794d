/**
 * The batch's custody record on every target (its audit lines, signed by the station, sealed
 * whole, stored with the batch).
 */
import { createHash } from 'node:crypto';
import { openCustodyRecord, type ManifestInner, type ManifestOuter, type PublicKey, type SecretKey } from '../../seal/index.js';
import type { Target } from '../../targets/index.js';
import { readCapped } from '../../util/limits.js';
import { crossCheckCustody, summarizeCustody, type CustodySummary } from '../custody.js';
import { errText, isMissing, worst, type CustodyCheck } from './result.js';

const CUSTODY_CAP = 256 * 1024 * 1024;

/**
 * The custody record on every target: the very object the signed manifest lists (SHA-256), a
 * seal that opens, the station's signature, lines that hash to themselves, and a story that
 * agrees with the manifest. Per target a result, with a code and a hint for each problem.
 */
export async function checkCustody(a: {
  batchId: string;
  good: ManifestOuter | undefined;
  inner: ManifestInner | undefined;
  targets: Target[];
  identities: SecretKey[];
  stationPub?: PublicKey;
}): Promise<CustodyCheck & { code?: string; hint?: string }> {
  const { batchId, good, inner } = a;
  if (!good || !a.stationPub) return { result: 'unchecked', targets: [], message: 'no valid signed manifest, so no custody record to check' };
  if (!inner) return { result: 'unchecked', targets: [], message: 'the inner manifest did not open with this identity, so the custody record was not read' };
  const id = (inner.extra as { custodyObject?: unknown } | undefined)?.custodyObject;
  if (typeof id !== 'string') {
    if (good.audit) {
      return {
        result: 'missing', targets: [], code: 'E_CUSTODY_MISSING',
        message: 'the signed manifest carries an audit head but names no custody record',
        hint: 'the station that signed it should have stored one; check that station\'s audit log',
      };
    }
    return { result: 'unchecked', targets: [], message: "this batch was closed before stations stored custody records; its custody is in its station's audit log" };
  }
  const obj = good.objects.find((o) => o.id === id);
  if (!obj) {
    return { result: 'mismatch', object: id, targets: [], code: 'E_CUSTODY_MISMATCH', message: `the inner manifest names custody record ${id}, which the signed outer list does not hold`, hint: 'do not trust this manifest; compare with the copy on another target' };
  }
  const results: CustodyCheck['targets'] = [];
  let record: CustodySummary | undefined;
  for (const t of a.targets) {
    const key = `${batchId}/${id}`;
    let bytes: Buffer;
    try {
      bytes = await readCapped(await t.get(key), CUSTODY_CAP, 'the custody record', 'E_VERIFY_MISMATCH');
    } catch (err) {
      results.push(
        isMissing(err)
          ? { target: t.name, result: 'missing', code: 'E_CUSTODY_MISSING', message: `${key} is not on ${t.name}`, hint: 'the record was removed from this target; the copy on another target is the same record (the manifest names its hash)' }
          : { target: t.name, result: 'unchecked', message: errText(err) },
      );
      continue;
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== obj.sha256 || bytes.length !== obj.size) {
      results.push({
        target: t.name, result: 'mismatch', code: 'E_CUSTODY_ALTERED',
        message: `the stored record is not the one the signed manifest names (SHA-256 ${sha}, ${bytes.length} bytes; signed: ${obj.sha256}, ${obj.size} bytes)`,
        hint: 'the custody record was changed or replaced on this target after the station stored it: keep it for investigation and read the record from another target',
      });
      continue;
    }
    try {
      const signed = openCustodyRecord(bytes, a.identities, { batchId, station: a.stationPub });
      const disagree = crossCheckCustody(signed.record, good, inner);
      if (disagree.length > 0) {
        results.push({ target: t.name, result: 'mismatch', code: 'E_CUSTODY_MISMATCH', message: `the record and the signed manifest disagree: ${disagree.slice(0, 3).join('; ')}${disagree.length > 3 ? ` (and ${disagree.length - 3} more)` : ''}`, hint: 'both are signed by the station: keep them and the station log for investigation' });
        continue;
      }
      record ??= summarizeCustody(signed.record);
      results.push({ target: t.name, result: 'verified' });
    } catch (err) {
      const e = err as { code?: string; hint?: string };
      const code = e.code ?? 'E_CUSTODY_SHAPE';
      results.push({ target: t.name, result: code === 'E_SEAL_NO_RECIPIENT' || code.startsWith('E_KEY') ? 'unchecked' : 'mismatch', code, message: errText(err), ...(e.hint ? { hint: e.hint } : {}) });
    }
  }
  return { result: worst(results.map((r) => r.result)), object: id, targets: results, ...(record ? { record } : {}) };
}
