/**
 * A station opened for work: its signed config, keys, journal, audit log and targets, in one
 * place, so the stages get what they need and nothing more. The station key is checked against
 * the config (the admin decides which station key is trusted); recipient keys are parsed once.
 */
import { promises as fsp } from 'node:fs';
import { KluisError } from '../errors.js';
import { layoutFor, loadConfig, readConfigFile, rememberRevision, type LoadedConfig, type TargetConfig } from '../config/index.js';
import { formatPublicKey, parsePublicKey, readSecretKeyFile, type PublicKey, type SecretKey } from '../seal/index.js';
import { Journal } from './journal.js';
import { lockStation } from './lock.js';
import { AuditLog } from '../audit/index.js';
import { openTarget, type Refusal, type Target } from '../targets/index.js';
import { notice } from '../util/notices.js';

export type { Refusal };

export interface Station extends LoadedConfig {
  stationKey: SecretKey;
  recipients: PublicKey[];
  journal: Journal;
  audit: AuditLog;
  targets: Map<string, Target>;
  targetConfigs: Map<string, TargetConfig>;
  refusals: Refusal[];
  operator?: string;
  caseRef?: string;
  close(): Promise<void>;
}

export async function openStation(configFile: string, who: { operator?: string; caseRef?: string } = {}): Promise<Station> {
  return openLoadedStation(await loadStationConfig(configFile), who);
}

/**
 * For the commands that work on the station (ingest, resume, watch): the station lock is taken
 * right after the signed config loads and before the station is opened, so nothing that waits on
 * another process (the audit log's lock) comes before it. A second process gets E_STATION_BUSY at
 * once, even while the holder is stopped in the middle of an audit append.
 */
export async function openLockedStation(configFile: string, who: { operator?: string; caseRef?: string } = {}): Promise<{ station: Station; unlock: () => Promise<void> }> {
  const loaded = await loadStationConfig(configFile);
  const unlock = await lockStation(loaded.layout.stateDir);
  try {
    return { station: await openLoadedStation(loaded, who), unlock };
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function loadStationConfig(configFile: string): Promise<LoadedConfig> {
  try {
    return await loadConfig(configFile);
  } catch (err) {
    await recordReplayRefusal(configFile, err);
    throw err;
  }
}

/**
 * An older (or conflicting) signed config put back is worth a line in the audit log: its
 * signature verified, so its station name can be trusted. The refusal stands whether or not
 * the line can be written; a line that cannot be written is said on stderr.
 */
async function recordReplayRefusal(configFile: string, err: unknown): Promise<void> {
  if (!(err instanceof KluisError) || (err.code !== 'E_CONFIG_REPLAYED' && err.code !== 'E_CONFIG_REVISION_CONFLICT')) return;
  try {
    const { raw } = await readConfigFile(configFile);
    const station = String((raw as { station?: unknown }).station ?? 'unknown');
    const audit = await AuditLog.open(layoutFor(configFile).auditFile, { station });
    try {
      await audit.append('config-refused', { code: err.code, reason: err.message, ...(err.details ?? {}) });
    } finally {
      await audit.close();
    }
  } catch (e) {
    notice('W_AUDIT_NOT_RECORDED', `could not record the refused config in the audit log: ${(e as Error).message}`);
  }
}

export async function openLoadedStation(loaded: LoadedConfig, who: { operator?: string; caseRef?: string } = {}): Promise<Station> {
  const { config, layout } = loaded;
  const stationKey = await readSecretKeyFile(layout.stationKeyFile, 'station');
  if (formatPublicKey(stationKey.publicKey) !== config.stationKey) {
    throw new KluisError('E_CONFIG_STATION_KEY', `the station key in ${layout.stationKeyFile} is not the one the config names`, {
      hint: `the config trusts ${config.stationKey}; the admin must put this station's public key in the config and sign it`,
    });
  }
  const recipients = config.recipients.map((r) => parsePublicKey(r, 'recipient'));
  await fsp.mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
  await fsp.mkdir(layout.spoolDir, { recursive: true, mode: 0o700 });
  await fsp.chmod(layout.spoolDir, 0o700);
  const journal = Journal.open(layout.journalFile);
  const audit = await AuditLog.open(layout.auditFile, { station: config.station, stationKey });
  // The station now works under this config: remember its revision (state + audit log), so an
  // older signed file put back later is refused (src/config/revision.ts).
  try {
    await rememberRevision(layout, loaded.stamp, { station: config.station, audit });
  } catch (err) {
    await audit.close().catch(() => undefined);
    journal.close();
    throw err;
  }
  const refusals: Refusal[] = [];
  const targets = new Map<string, Target>();
  const targetConfigs = new Map<string, TargetConfig>();
  const station: Station = {
    ...loaded,
    stationKey,
    recipients,
    journal,
    audit,
    targets,
    targetConfigs,
    refusals,
    ...(who.operator ? { operator: who.operator } : {}),
    ...(who.caseRef ? { caseRef: who.caseRef } : {}),
    async close() {
      for (const t of targets.values()) await t.close().catch(() => undefined);
      await audit.close();
      journal.close();
    },
  };
  for (const tc of config.targets) {
    targetConfigs.set(tc.name, tc);
    targets.set(
      tc.name,
      openTarget(tc, {
        configDir: layout.root,
        egress: config.egress,
        onRefusal: (r) => {
          refusals.push(r);
          // The connection is refused either way; a refusal that cannot be recorded is a notice.
          void audit.append('refused', { target: r.target, host: r.host, address: r.address, reason: r.reason, code: r.code }).catch((err: unknown) => {
            notice('W_AUDIT_NOT_RECORDED', `could not record the refusal of ${r.target} in the audit log: ${(err as Error).message}`);
          });
        },
      }),
    );
  }
  return station;
}
