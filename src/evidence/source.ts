/**
 * Where the evidence commands (verify, export, catalog, the desk page) read batches from: a
 * station's config (its one station key, its targets, its audit log) or an evidence desk's
 * (several trusted stations, the targets each delivers to, read-only). The commands ask this
 * module which stations they trust and which targets hold a station's batches; they never look
 * at the kind of config themselves.
 *
 * A desk opens every target read-only (E_TARGET_READONLY on any write) and has no station log:
 * what it verifies and exports is recorded in its own log (DeskLayout.auditFile).
 */
import { KluisError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { parsePublicKey, verifyManifest, type PublicKey } from '../seal/index.js';
import { isDeskConfig, loadConfig, loadDeskConfig, readConfigFile, type Egress, type LoadedConfig, type LoadedDesk, type TargetConfig } from '../config/index.js';
import { openTarget, readOnly, type Target, type TargetContext } from '../targets/index.js';
import { readCapped } from '../util/limits.js';

export interface SourceStation {
  name: string;
  key: string;
  /** Names of the targets (in `targets`) this station delivers to. */
  targets: string[];
}

export interface EvidenceSource {
  kind: 'station' | 'desk';
  configFile: string;
  /** Folder of the config: relative paths in target configs resolve here. */
  root: string;
  egress: Egress;
  stations: SourceStation[];
  targets: TargetConfig[];
  readOnly: boolean;
  /** The station's own audit log (station configs only): `verify` checks it. */
  stationAuditFile?: string;
  /** Where verify and export record what they did, and under which name. */
  record: { file: string; name: string; stationKeyFile?: string };
}

export function stationSource(loaded: LoadedConfig): EvidenceSource {
  const { config, layout } = loaded;
  return {
    kind: 'station',
    configFile: layout.configFile,
    root: layout.root,
    egress: config.egress,
    stations: [{ name: config.station, key: config.stationKey, targets: config.targets.map((t) => t.name) }],
    targets: config.targets,
    readOnly: false,
    stationAuditFile: layout.auditFile,
    record: { file: layout.auditFile, name: config.station, stationKeyFile: layout.stationKeyFile },
  };
}

export function deskSource(loaded: LoadedDesk): EvidenceSource {
  const { desk, layout } = loaded;
  return {
    kind: 'desk',
    configFile: layout.configFile,
    root: layout.root,
    egress: desk.egress,
    stations: desk.stations,
    targets: desk.targets,
    readOnly: true,
    record: { file: layout.auditFile, name: `desk:${desk.desk}` },
  };
}

/** Loads a station's or a desk's config (both signed by the admin pinned beside them). */
export async function loadSource(file: string): Promise<EvidenceSource> {
  const { raw } = await readConfigFile(file);
  return isDeskConfig(raw) ? deskSource(await loadDeskConfig(file)) : stationSource(await loadConfig(file));
}

export function trustedStation(source: EvidenceSource, key: string): SourceStation | undefined {
  return source.stations.find((s) => s.key === key);
}

export function stationPublicKey(s: SourceStation): PublicKey {
  return parsePublicKey(s.key, 'station');
}

/** The target configs a station's batches are on (as far as this source can read). */
export function targetsOf(source: EvidenceSource, station: SourceStation): TargetConfig[] {
  return source.targets.filter((t) => station.targets.includes(t.name));
}

export function openSourceTarget(source: EvidenceSource, cfg: TargetConfig, ctx: Partial<TargetContext> = {}): Target {
  const t = openTarget(cfg, { configDir: source.root, egress: source.egress, ...ctx });
  return source.readOnly ? readOnly(t) : t;
}

export interface Located {
  /** The trusted station whose signature a manifest of the batch carries. */
  station?: SourceStation;
  /** Why none was found: the batch is nowhere, or only under a station this source does not trust. */
  problem?: { result: 'missing' | 'mismatch' | 'unchecked'; code: ErrorCode; message: string; hint: string };
}

const LOCATE_CAP = 64 * 1024 * 1024;

/**
 * Whose batch `batchId` is: a station config's is its own station's; a desk reads the batch's
 * manifest from its targets (first one whose station signature verifies under a station it
 * trusts). Reads only; opens and closes its own targets.
 */
export async function locateBatch(source: EvidenceSource, batchId: string, ctx: Partial<TargetContext> = {}): Promise<Located> {
  if (source.kind === 'station') return { station: source.stations[0]! };
  const key = `${batchId}/manifest.json`;
  let untrusted: string | undefined;
  let unreadable: string | undefined;
  for (const tc of source.targets) {
    const t = openSourceTarget(source, tc, ctx);
    try {
      if (!(await t.head(key))) continue;
      const buf = await readCapped(await t.get(key), LOCATE_CAP, key);
      const outer = verifyManifest(JSON.parse(buf.toString('utf8')) as unknown);
      const station = trustedStation(source, outer.station);
      if (station && outer.batchId === batchId) return { station };
      untrusted ??= outer.station;
    } catch (err) {
      unreadable ??= `${tc.name}: ${(err as Error).message}`;
    } finally {
      await t.close().catch(() => undefined);
    }
  }
  if (untrusted) {
    return {
      problem: {
        result: 'mismatch',
        code: 'E_MANIFEST_STATION',
        message: `batch ${batchId} is signed by station ${untrusted}, which this desk does not trust`,
        hint: 'if that station is one of yours, make the desk config again with `kluis init --desk ... --trust` its config',
      },
    };
  }
  if (unreadable) {
    return { problem: { result: 'unchecked', code: 'E_VERIFY_UNCHECKED', message: `no valid manifest of batch ${batchId} could be read (${unreadable})`, hint: 'check that the targets are reachable, then run it again' } };
  }
  return { problem: { result: 'missing', code: 'E_VERIFY_MISSING', message: `batch ${batchId} is on none of the desk's targets`, hint: 'find the batch id with `kluis catalog`' } };
}

/** A station the source trusts, by name or key (the CLI's --station). */
export function findStation(source: EvidenceSource, nameOrKey: string): SourceStation[] {
  const found = source.stations.filter((s) => s.name === nameOrKey || s.key === nameOrKey);
  if (found.length === 0) {
    throw new KluisError('E_USAGE', `no trusted station is called ${nameOrKey}`, { hint: `trusted: ${source.stations.map((s) => s.name).join(', ')}` });
  }
  return found;
}
