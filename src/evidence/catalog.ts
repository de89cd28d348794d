/**
 * The catalog: which batches the targets hold, found from the storage alone (no station journal),
 * across every station the config trusts, with the details the inner manifests give once opened.
 *
 * Each target is listed page by page (targets/paging.ts). A batch's objects share the prefix
 * `<batchId>/`, so they come together in a listing; a batch is looked at as soon as its group is
 * complete: its signed manifest is read and checked against the station key it names (which must
 * be trusted), cheap filters (station, start date) are applied to the outer part before anything
 * is decrypted, then the inner part is opened and the rest applied. Memory holds one page, the
 * batches of that page in work, and the batches that matched (the answer).
 *
 * Status, from what the storage shows: `complete` when some target holds every object the
 * signed manifest lists, at its signed size, and no file of the card failed; `partial` when a
 * file of the card failed or was rejected at the station, or could not be sanitized and is held
 * as its sealed original; `incomplete` when no target holds all
 * of the batch's objects. A catalog lists; `kluis verify` checks hashes and custody.
 *
 * Never writes to a target. Manifests that are damaged, or signed by a station the config does
 * not trust, are not listed as batches but named in `problems`.
 */
import { KluisError } from '../errors.js';
import { openManifestInner, verifyManifest, type ManifestInner, type ManifestOuter, type SecretKey } from '../seal/index.js';
import { listPages, type Target } from '../targets/index.js';
import type { TargetConfig } from '../config/index.js';
import { eachLimited, readCapped } from '../util/limits.js';
import { openSourceTarget, trustedStation, type EvidenceSource } from './source.js';

export interface CatalogFilter {
  /** Exact case reference. */
  case?: string;
  /** Station keys to keep (from names or keys given by the user). */
  stations?: string[];
  operator?: string;
  /** The batch started at or after this time. */
  from?: Date;
  /** The batch started before this time. */
  before?: Date;
}

export type CatalogStatus = 'complete' | 'partial' | 'incomplete';

export interface CatalogBatch {
  batchId: string;
  station: string;
  stationKey: string;
  case?: string;
  operator?: string;
  /** When the batch began (the card was first seen). */
  startedAt: string;
  /** When the station signed the manifest (the batch was closed). */
  closedAt: string;
  status: CatalogStatus;
  /** Files of the card the manifest accounts for. */
  files: number;
  targets: string[];
  card: { label?: string; uuid?: string };
}

export interface CatalogProblem {
  /** listing: a target could not be listed; damaged: a manifest that does not check out; untrusted:
   * signed by a station the config does not trust; unopened: the identity opens no inner part;
   * incomplete: a target lacks objects of a batch. */
  kind: 'listing' | 'damaged' | 'untrusted' | 'unopened' | 'incomplete';
  target: string;
  batchId?: string;
  code: string;
  message: string;
}

export interface CatalogResult {
  batches: CatalogBatch[];
  problems: CatalogProblem[];
  scanned: { targets: number; pages: number; objects: number; batches: number; manifestsRead: number; opened: number };
}

export interface CatalogOptions {
  pageSize?: number;
  /** Manifests read at once (default 8). */
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
}

const MANIFEST_CAP = 64 * 1024 * 1024;

interface Known {
  /** matched: listed in the answer; skipped: filtered out or not ours (never looked at again). */
  state: 'matched' | 'skipped';
  entry?: CatalogBatch;
  /** Objects (id → size) a complete copy holds; kept only when more targets are to be read. */
  expected?: Map<string, number>;
  originals?: Set<string>;
  completeSomewhere?: boolean;
  failedFiles?: boolean;
}

/** Lists the batches on the source's targets that pass `filter`. */
export async function catalog(source: EvidenceSource, identities: SecretKey[], filter: CatalogFilter = {}, opts: CatalogOptions = {}): Promise<CatalogResult> {
  const known = new Map<string, Known>();
  const problems: CatalogProblem[] = [];
  const scanned = { targets: 0, pages: 0, objects: 0, batches: 0, manifestsRead: 0, opened: 0 };
  const moreTargets = source.targets.length > 1;
  for (const [i, tc] of source.targets.entries()) {
    const t = openSourceTarget(source, tc, opts.env ? { env: opts.env } : {});
    scanned.targets++;
    try {
      const keepExpected = moreTargets && i < source.targets.length - 1;
      let group: { batchId: string; objects: Map<string, number> } | null = null;
      let ready: Array<{ batchId: string; objects: Map<string, number> }> = [];
      const flush = async (): Promise<void> => {
        const work = ready;
        ready = [];
        await eachLimited(work, opts.concurrency ?? 8, (g) => look(g, t, tc, keepExpected));
      };
      for await (const page of listPages(t, '', opts.pageSize)) {
        scanned.pages++;
        for (const o of page) {
          scanned.objects++;
          const slash = o.key.indexOf('/');
          if (slash <= 0) continue; // not inside a batch folder
          const batchId = o.key.slice(0, slash);
          if (!group || group.batchId !== batchId) {
            if (group) ready.push(group);
            group = { batchId, objects: new Map() };
          }
          group.objects.set(o.key.slice(slash + 1), o.size);
        }
        await flush();
      }
      if (group) ready.push(group);
      await flush();
    } catch (err) {
      const e = err as { code?: string; message?: string };
      problems.push({ kind: 'listing', target: tc.name, code: e.code ?? 'E_TARGET_IO', message: `could not list ${tc.name}: ${e.message ?? String(err)}` });
    } finally {
      await t.close().catch(() => undefined);
    }
  }

  async function look(g: { batchId: string; objects: Map<string, number> }, t: Target, tc: TargetConfig, keepExpected: boolean): Promise<void> {
    if (!g.objects.has('manifest.json')) return; // a batch still being delivered, or not a batch
    const k = known.get(g.batchId);
    if (k) {
      if (k.state === 'matched') placeOn(k, g, tc, keepExpected);
      return;
    }
    scanned.batches++;
    known.set(g.batchId, { state: 'skipped' }); // until it proves to be ours and wanted
    let outer: ManifestOuter;
    try {
      scanned.manifestsRead++;
      const doc = JSON.parse((await readCapped(await t.get(`${g.batchId}/manifest.json`), MANIFEST_CAP, `${g.batchId}/manifest.json`)).toString('utf8')) as unknown;
      outer = verifyManifest(doc);
      if (outer.batchId !== g.batchId) throw new KluisError('E_MANIFEST_SHAPE', `the manifest under ${g.batchId}/ names batch ${outer.batchId}`);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      problems.push({ kind: 'damaged', target: tc.name, batchId: g.batchId, code: e.code ?? 'E_MANIFEST_SHAPE', message: `${g.batchId}/manifest.json on ${tc.name}: ${e.message ?? String(err)}` });
      return;
    }
    const station = trustedStation(source, outer.station);
    if (!station) {
      problems.push({ kind: 'untrusted', target: tc.name, batchId: g.batchId, code: 'E_MANIFEST_STATION', message: `batch ${g.batchId} on ${tc.name} is signed by a station this config does not trust (${outer.station})` });
      return;
    }
    // Filters on the outer part first: nothing is decrypted for a batch that cannot match.
    if (filter.stations && !filter.stations.includes(station.key)) return;
    if (filter.from && Date.parse(outer.createdAt) < filter.from.getTime()) return; // closed before the start
    let inner: ManifestInner;
    try {
      inner = openManifestInner(outer, identities);
      scanned.opened++;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      problems.push({ kind: e.code === 'E_MANIFEST_INNER' || e.code === 'E_MANIFEST_SHAPE' ? 'damaged' : 'unopened', target: tc.name, batchId: g.batchId, code: e.code ?? 'E_MANIFEST_SHAPE', message: `cannot open the inner manifest of ${g.batchId}: ${e.message ?? String(err)}` });
      return;
    }
    if (filter.case !== undefined && inner.case !== filter.case) return;
    if (filter.operator !== undefined && inner.operator !== filter.operator) return;
    const started = Date.parse(inner.createdAt);
    if (filter.from && !(started >= filter.from.getTime())) return;
    if (filter.before && !(started < filter.before.getTime())) return;
    const originals = new Set(inner.files.map((f) => (f as { originalObjectId?: unknown }).originalObjectId).filter((x): x is string => typeof x === 'string'));
    const entry: CatalogBatch = {
      batchId: g.batchId,
      station: station.name,
      stationKey: station.key,
      ...(inner.case !== undefined ? { case: inner.case } : {}),
      ...(inner.operator !== undefined ? { operator: inner.operator } : {}),
      startedAt: inner.createdAt,
      closedAt: outer.createdAt,
      status: 'incomplete',
      files: inner.files.length,
      targets: [],
      card: { ...(inner.card.label ? { label: inner.card.label } : {}), ...(inner.card.uuid ? { uuid: inner.card.uuid } : {}) },
    };
    const mine: Known = {
      state: 'matched',
      entry,
      expected: new Map(outer.objects.map((o) => [o.id, o.size])),
      originals,
      failedFiles: inner.files.some((f) => f.status === 'failed' || f.status === 'rejected' || f.status === 'held'),
    };
    known.set(g.batchId, mine);
    placeOn(mine, g, tc, keepExpected);
  }

  /** Records that target `tc` holds the batch, and whether its copy is complete. */
  function placeOn(k: Known, g: { batchId: string; objects: Map<string, number> }, tc: TargetConfig, keepExpected: boolean): void {
    const entry = k.entry!;
    if (!entry.targets.includes(tc.name)) entry.targets.push(tc.name);
    const lacking: string[] = [];
    for (const [id, size] of k.expected ?? []) {
      if (k.originals?.has(id) && !tc.originalsAllowed) continue; // originals live only where allowed
      if (g.objects.get(id) !== size) lacking.push(id);
    }
    if (lacking.length === 0) k.completeSomewhere = true;
    else problems.push({ kind: 'incomplete', target: tc.name, batchId: entry.batchId, code: 'E_VERIFY_MISSING', message: `batch ${entry.batchId} on ${tc.name}: ${lacking.length} object(s) of the signed manifest missing or of another size` });
    entry.status = k.failedFiles ? 'partial' : k.completeSomewhere ? 'complete' : 'incomplete';
    if (!keepExpected) {
      // No later target will compare against it: let the object list go.
      delete k.expected;
      delete k.originals;
    }
  }

  const batches = [...known.values()].filter((k) => k.state === 'matched').map((k) => k.entry!);
  batches.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.batchId < b.batchId ? -1 : 1));
  return { batches, problems, scanned };
}

/** A --from/--to value: a date (whole days, UTC) or a full ISO 8601 time. */
export function parseDateBound(s: string, edge: 'from' | 'to'): Date {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(s);
  const t = Date.parse(day ? `${s}T00:00:00.000Z` : s);
  if (!Number.isFinite(t)) {
    throw new KluisError('E_USAGE', `--${edge} ${s} is not a date`, { hint: 'use YYYY-MM-DD (a whole day, UTC) or a full ISO 8601 time such as 2026-05-01T08:00:00Z' });
  }
  // --to a date includes that whole day.
  return new Date(day && edge === 'to' ? t + 24 * 3600 * 1000 : t);
}

