/**
 * The station's audit log against what its targets hold. Every batch's signed manifest carries
 * the log's head (seq and hash of the last line) at the moment the batch was closed; a log cut
 * back to an earlier checkpoint, or replaced by an older copy, lacks those lines, and a log
 * rewritten from some point has other lines there. Neither is visible from the log alone (a cut
 * at a checkpoint leaves a valid chain); both are visible here.
 *
 * Reads every `<batch>/manifest.json` on the station's targets page by page, keeps the heads of
 * the manifests this station signed (others are counted and left alone), then reads the log once
 * and compares. Needs no evidence key: the head sits in the manifest's signed outer part.
 * Never writes to a target or to the log.
 */
import { readAuditLog } from '../audit/index.js';
import type { LoadedConfig } from '../config/index.js';
import { verifyManifest } from '../seal/index.js';
import { listPages, openTarget } from '../targets/index.js';
import { eachLimited, readCapped } from '../util/limits.js';

export interface AnchorProblem {
  /** cut-back: the log ends before a head a manifest carries; diverged: the line there is another. */
  code: 'cut-back' | 'diverged';
  batchId: string;
  target: string;
  seq: number;
  message: string;
}

export interface AnchorCheck {
  result: 'verified' | 'mismatch' | 'unchecked';
  /** This station's manifests found on the targets (per target). */
  manifests: number;
  /** Of those, the ones carrying an audit head, each compared with the log. */
  compared: number;
  /** Manifests signed by other stations (shared storage), not compared. */
  foreign: number;
  /** The last seq in the local log (-1 for an empty log). */
  logLastSeq: number;
  /** The highest head any manifest carries. */
  highestHead: number;
  problems: AnchorProblem[];
  /** Targets that could not be read, manifests that could not be checked: say so, decide nothing. */
  notes: string[];
}

const MANIFEST_CAP = 64 * 1024 * 1024;

interface Head {
  seq: number;
  head: string;
  batchId: string;
  target: string;
  closedAt: string;
}

export async function checkAuditAnchors(loaded: LoadedConfig, opts: { env?: NodeJS.ProcessEnv; concurrency?: number } = {}): Promise<AnchorCheck> {
  const { config, layout } = loaded;
  const heads: Head[] = [];
  const notes: string[] = [];
  let manifests = 0;
  let foreign = 0;
  let unreadTargets = 0;
  for (const tc of config.targets) {
    const t = openTarget(tc, { configDir: layout.root, egress: config.egress, ...(opts.env ? { env: opts.env } : {}) });
    try {
      for await (const page of listPages(t, '')) {
        const keys = page.map((o) => o.key).filter((k) => /^[^/]+\/manifest\.json$/.test(k));
        await eachLimited(keys, opts.concurrency ?? 8, async (key) => {
          const batchId = key.slice(0, key.indexOf('/'));
          let outer;
          try {
            const doc = JSON.parse((await readCapped(await t.get(key), MANIFEST_CAP, key)).toString('utf8')) as unknown;
            outer = verifyManifest(doc);
          } catch (err) {
            notes.push(`${key} on ${tc.name} could not be checked (${(err as Error).message}); run \`kluis verify ${batchId}\``);
            return;
          }
          if (outer.station !== config.stationKey) {
            foreign++;
            return;
          }
          manifests++;
          if (outer.audit) heads.push({ ...outer.audit, batchId, target: tc.name, closedAt: outer.createdAt });
        });
      }
    } catch (err) {
      unreadTargets++;
      notes.push(`target ${tc.name} could not be listed: ${(err as Error).message}`);
    } finally {
      await t.close().catch(() => undefined);
    }
  }

  const bySeq = new Map<number, Head[]>();
  for (const h of heads) {
    const list = bySeq.get(h.seq);
    if (list) list.push(h);
    else bySeq.set(h.seq, [h]);
  }
  const problems: AnchorProblem[] = [];
  let last = -1;
  for await (const { entry } of readAuditLog(layout.auditFile)) {
    if (!entry || typeof entry.seq !== 'number') continue;
    last = Math.max(last, entry.seq);
    for (const h of bySeq.get(entry.seq) ?? []) {
      if (entry.hash !== h.head) {
        problems.push({
          code: 'diverged', batchId: h.batchId, target: h.target, seq: h.seq,
          message: `line seq ${h.seq} of the log is not the line batch ${h.batchId} was closed on (its signed manifest on ${h.target} names head ${h.head.slice(0, 16)}…): the log was rewritten from there or earlier`,
        });
      }
    }
  }
  for (const h of heads) {
    if (h.seq > last) {
      problems.push({
        code: 'cut-back', batchId: h.batchId, target: h.target, seq: h.seq,
        message: `the log ends at seq ${last}, but batch ${h.batchId}, closed ${h.closedAt}, carries head seq ${h.seq} in its signed manifest on ${h.target}: the log was cut back (or an older copy put in its place)`,
      });
    }
  }
  problems.sort((a, b) => a.seq - b.seq || a.batchId.localeCompare(b.batchId));
  const result = problems.length > 0 ? 'mismatch' : unreadTargets > 0 ? 'unchecked' : 'verified';
  return { result, manifests, compared: heads.length, foreign, logLastSeq: last, highestHead: heads.reduce((m, h) => Math.max(m, h.seq), -1), problems, notes };
}
