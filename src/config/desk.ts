/**
 * The evidence desk's config: which stations' batches it trusts (their public keys) and which
 * targets it reads them from, signed by the organisation's admin like a station config (with a
 * revision, so an older copy put back is refused), with the admin key pinned as a station's is
 * (`keys/admin.pub`, or a root-owned file: src/config/pin.ts). A desk holds no station key and no spool, and
 * opens its targets read-only (targets/readonly.ts): it finds, verifies and exports, nothing else.
 *
 * `buildDeskConfig` takes the stations' own signed configs (`kluis init --desk --trust FILE`),
 * each accepted only when it verifies against its station's pin AND that pin is the admin key
 * signing the desk config (one organisation). Their targets are merged: the same place (type,
 * URL, bucket) is one desk target, whichever station named it; paths are made absolute. An fs
 * target inside a station's own folder is left out, with a note: it is that station's local
 * disk, gone with the station and out of a desk's reach.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { KluisError } from '../errors.js';
import { formatPublicKey, type PublicKey, type SecretKey } from '../seal/index.js';
import { formatZod, isDeskConfig, loadConfig, readConfigFile, readSignedConfig, signedDocument } from './load.js';
import { layoutFor, type StationLayout } from './layout.js';
import { checkRevision, configSha256, rememberedRevision, rememberRevision, type ConfigStamp } from './revision.js';
import { exists, writeFileAtomic } from '../util/fsx.js';
import { EgressSchema, TargetConfigSchema, type Egress, type TargetConfig } from './schema.js';

export const DeskStationSchema = z
  .object({
    name: z.string().min(1),
    key: z.string().startsWith('kluisstation1'),
    /** The desk targets this station delivers to (names in `targets`). */
    targets: z.array(z.string()),
  })
  .strict();
export type DeskStation = z.infer<typeof DeskStationSchema>;

export const DeskConfigSchema = z
  .object({
    version: z.literal(1),
    kind: z.literal('desk'),
    /** Raised by one at every signing; the desk refuses an older one than it accepted (revision.ts). */
    revision: z.number().int().min(1),
    /** When the admin signed it (ISO 8601 UTC), inside the signed content. */
    signedAt: z.string().datetime(),
    /** Where the desk's admin key pin is, when not keys/admin.pub beside the config (pin.ts). */
    adminPin: z.string().min(1).optional(),
    /** The desk's name, recorded in its own log of verifications and exports. */
    desk: z.string().min(1),
    stations: z.array(DeskStationSchema).min(1, 'a desk trusts at least one station'),
    targets: z.array(TargetConfigSchema),
    egress: EgressSchema.default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set(c.targets.map((t) => t.name));
    if (names.size !== c.targets.length) ctx.addIssue({ code: 'custom', path: ['targets'], message: 'target names must be unique' });
    c.stations.forEach((s, i) => {
      for (const t of s.targets) if (!names.has(t)) ctx.addIssue({ code: 'custom', path: ['stations', i, 'targets'], message: `names no desk target ${t}` });
    });
  });
export type DeskConfig = z.infer<typeof DeskConfigSchema>;

/** Where a desk keeps things, relative to the folder of its config file. */
export interface DeskLayout {
  configFile: string;
  root: string;
  keysDir: string;
  adminPinFile: string;
  stateDir: string;
  /** The desk's own log: what it verified and exported (not a station's audit log). */
  auditFile: string;
}

export function deskLayoutFor(configFile: string): DeskLayout {
  const abs = path.resolve(configFile);
  const root = path.dirname(abs);
  const keysDir = path.join(root, 'keys');
  const stateDir = path.join(root, 'state');
  return { configFile: abs, root, keysDir, adminPinFile: path.join(keysDir, 'admin.pub'), stateDir, auditFile: path.join(stateDir, 'desk-log.jsonl') };
}

export interface LoadedDesk {
  desk: DeskConfig;
  layout: DeskLayout;
  adminKey: PublicKey;
}

export async function loadDeskConfig(file: string): Promise<LoadedDesk> {
  const base = deskLayoutFor(file);
  const { raw, adminKey, pinFile, signer } = await readSignedConfig(base.configFile, base.root, base.adminPinFile);
  const layout: DeskLayout = { ...base, adminPinFile: pinFile };
  if (!isDeskConfig(raw)) {
    throw new KluisError('E_CONFIG_NOT_DESK', `config ${file} is a station config, not a desk's`, { hint: 'make a desk config with `kluis init --desk --dir DIR --admin-key KEY --trust STATION/kluis.json`' });
  }
  const parsed = DeskConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new KluisError('E_CONFIG_INVALID', `desk config ${file} is invalid: ${formatZod(parsed.error)}`, { hint: 'make it again with `kluis init --desk`' });
  }
  // Replay: an older desk config (one that still trusted a station since removed, say) is refused.
  const stamp = stampOf(parsed.data, raw, signer);
  await checkRevision(file, revisionLayout(layout), stamp);
  if (await exists(layout.stateDir)) await rememberRevision(revisionLayout(layout), stamp, { station: `desk:${parsed.data.desk}` });
  return { desk: parsed.data, layout, adminKey };
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** A station's target with every path made absolute (relative paths resolve in the station's folder). */
function absoluteTarget(t: TargetConfig, stationRoot: string): TargetConfig {
  const abs = (p: string): string => path.resolve(stationRoot, p);
  return {
    ...t,
    ...(t.type === 'fs' ? { url: abs(t.url.replace(/^file:\/\//, '')) } : {}),
    ...(t.caFile ? { caFile: abs(t.caFile) } : {}),
    ...(t.credentials ? { credentials: { ...t.credentials, ...(t.credentials.file ? { file: abs(t.credentials.file) } : {}) } } : {}),
  };
}

function placeOf(t: TargetConfig): string {
  return JSON.stringify([t.type, t.url.replace(/\/+$/, ''), t.bucket ?? '', t.region ?? '']);
}

/** Builds a desk config from the stations' signed configs; `notes` says what was left out and why. */
export async function buildDeskConfig(args: { name: string; trust: string[]; admin: SecretKey; adminPin?: string }): Promise<{ config: Record<string, unknown>; notes: string[] }> {
  if (args.admin.kind !== 'admin') throw new KluisError('E_KEY_KIND', `a desk config is signed with the admin key, not a ${args.admin.kind} key`);
  if (args.trust.length === 0) throw new KluisError('E_USAGE', 'a desk needs at least one --trust STATION/kluis.json');
  const adminPub = formatPublicKey(args.admin.publicKey);
  const notes: string[] = [];
  const stations: DeskStation[] = [];
  const targets: TargetConfig[] = [];
  const byPlace = new Map<string, TargetConfig>();
  const egress: Egress = EgressSchema.parse({ countries: [] });
  for (const file of args.trust) {
    const loaded = await loadConfig(file);
    if (formatPublicKey(loaded.adminKey) !== adminPub) {
      throw new KluisError('E_CONFIG_TRUST', `${file} is signed by admin ${formatPublicKey(loaded.adminKey)}, not by the admin signing this desk (${adminPub})`, {
        hint: 'a desk trusts only the stations of its own organisation: use that organisation\'s admin key',
      });
    }
    const { config, layout } = loaded;
    if (stations.some((s) => s.key === config.stationKey)) {
      notes.push(`${file}: station ${config.station} is already trusted; taken once`);
      continue;
    }
    const names: string[] = [];
    for (const raw of config.targets) {
      const t = absoluteTarget(raw, layout.root);
      if (t.type === 'fs' && inside(t.url, layout.root)) {
        notes.push(`target ${raw.name} of station ${config.station} (${t.url}) is left out: it lies inside the station's own folder, so it is the station's local disk, gone with the station and out of a desk's reach`);
        continue;
      }
      const place = placeOf(t);
      let mine = byPlace.get(place);
      if (!mine) {
        const name = targets.some((x) => x.name === t.name) ? uniqueName(`${config.station}-${t.name}`, targets) : t.name;
        mine = { ...t, name };
        byPlace.set(place, mine);
        targets.push(mine);
      } else if (t.originalsAllowed && !mine.originalsAllowed) {
        mine.originalsAllowed = true; // originals of this station may be there
      }
      if (!names.includes(mine.name)) names.push(mine.name);
    }
    stations.push({ name: config.station, key: config.stationKey, targets: names });
    for (const r of config.egress.onpremRanges) if (!egress.onpremRanges.includes(r)) egress.onpremRanges.push(r);
    for (const c of config.egress.countries) if (!egress.countries.includes(c)) egress.countries.push(c);
    if (config.egress.ipCountryDb) {
      const db = path.resolve(layout.root, config.egress.ipCountryDb);
      if (!egress.ipCountryDb) {
        egress.ipCountryDb = db;
        if (config.egress.ipCountryDbSha256) egress.ipCountryDbSha256 = config.egress.ipCountryDbSha256;
      } else if (egress.ipCountryDb !== db) notes.push(`station ${config.station} names another IP-to-country table (${db}); the desk uses ${egress.ipCountryDb}`);
    }
  }
  if (egress.countries.length === 0) egress.countries.push('NL');
  if (targets.length === 0) notes.push('no target is left that a desk can read: add a shared target (S3, WebDAV, a NAS folder) to the stations first');
  const config = { version: 1, kind: 'desk', ...(args.adminPin ? { adminPin: args.adminPin } : {}), desk: args.name, stations, targets: targets.map(stripDefaults), egress };
  const parsed = DeskConfigSchema.safeParse({ ...config, revision: 1, signedAt: new Date().toISOString() });
  if (!parsed.success) throw new KluisError('E_CONFIG_INVALID', `the desk config would be invalid: ${formatZod(parsed.error)}`, { hint: 'this is a bug in kluis' });
  return { config, notes };
}

/**
 * Validates a desk config and writes it signed by `admin` (0644: it holds no secret), with
 * `revision` one above the highest the desk knew (its file, its memory) and `signedAt` now, both
 * inside the signed content; the desk then remembers that revision, so an older file put back is
 * refused (E_CONFIG_REPLAYED), as on a station.
 */
export async function writeDeskConfig(file: string, config: Record<string, unknown>, admin: SecretKey): Promise<DeskConfig> {
  const layout = deskLayoutFor(file);
  const onDisk = await readConfigFile(layout.configFile).then(
    (f) => f.raw as { revision?: unknown } | undefined,
    () => undefined,
  );
  const remembered = (await exists(layout.stateDir)) ? await rememberedRevision(revisionLayout(layout)) : undefined;
  const prev = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 0);
  const revision = Math.max(prev(config.revision), prev(onDisk?.revision), remembered?.revision ?? 0) + 1;
  const signed = { ...config, revision, signedAt: new Date().toISOString() };
  const parsed = DeskConfigSchema.safeParse(signed);
  if (!parsed.success) throw new KluisError('E_CONFIG_INVALID', `desk config is invalid: ${formatZod(parsed.error)}`);
  const doc = signedDocument(signed, admin);
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o644);
  if (await exists(layout.stateDir)) {
    await rememberRevision(revisionLayout(layout), stampOf(parsed.data, signed, doc.signature.key), { station: `desk:${parsed.data.desk}` });
  }
  return parsed.data;
}

/** What revision.ts needs of a layout: the desk's state folder and its own log. */
function revisionLayout(d: DeskLayout): StationLayout {
  return { ...layoutFor(d.configFile), adminPinFile: d.adminPinFile, stateDir: d.stateDir, auditFile: d.auditFile };
}

function stampOf(c: DeskConfig, raw: unknown, signer: string): ConfigStamp {
  return { revision: c.revision, signedAt: c.signedAt, sha256: configSha256(raw), signer };
}

function uniqueName(base: string, taken: TargetConfig[]): string {
  const clean = base.toLowerCase().replace(/[^a-z0-9_-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 28) || 'target';
  let name = clean;
  for (let i = 2; taken.some((t) => t.name === name); i++) name = `${clean}-${i}`;
  return name;
}

/** The stored entry keeps only what differs from the schema's defaults, so the signed file stays readable. */
function stripDefaults(t: TargetConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { name: t.name, type: t.type, url: t.url, class: t.class, required: t.required };
  if (t.originalsAllowed) out.originalsAllowed = true;
  for (const k of ['bucket', 'region', 'tlsPin', 'caFile', 'credentials'] as const) if (t[k] !== undefined) out[k] = t[k];
  return out;
}
