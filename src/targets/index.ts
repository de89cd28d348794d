/**
 * Opens a target from its config: the one entry point the pipeline and the CLI use.
 *
 * `openTarget` never connects and never throws for policy: it builds the target and its egress
 * guard; policy refusals (vendor host, plain http for cloud, addresses outside the allowed
 * ranges/countries, TLS pin, redirects) surface as E_EGRESS_* from the first operation that would
 * connect, reported once per refusal to `ctx.onRefusal`. This keeps "one refused target" a per-
 * target outcome in the pipeline rather than a failure to start.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import type { Egress, TargetConfig } from '../config/index.js';
import { EgressGuard, type Refusal, type Resolver } from './egress.js';
import type { IpCountryTable } from './country.js';
import { FsTarget } from './fs.js';
import { S3Target } from './s3.js';
import { WebDavTarget } from './webdav.js';
import type { Target } from './types.js';

export interface TargetContext {
  /** Folder of the config file: relative fs paths, credentials files and caFile resolve here. */
  configDir: string;
  egress: Egress;
  /** Called for every egress refusal (the pipeline audit-logs it). */
  onRefusal?: (r: Refusal) => void;
  /** Environment for credentials; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Tests: an IP-to-country table instead of egress.ipCountryDb / the shipped one. */
  countryTable?: IpCountryTable;
  /** Tests: a resolver instead of the system's (never real DNS in tests). */
  resolver?: Resolver;
}

export function guardFor(cfg: TargetConfig, ctx: TargetContext): EgressGuard {
  return new EgressGuard({
    target: cfg.name,
    targetClass: cfg.class,
    egress: ctx.egress,
    configDir: ctx.configDir,
    ...(ctx.countryTable ? { countryTable: ctx.countryTable } : {}),
    ...(ctx.resolver ? { resolver: ctx.resolver } : {}),
    ...(ctx.onRefusal ? { onRefusal: ctx.onRefusal } : {}),
  });
}

function readCa(cfg: TargetConfig, configDir: string): Buffer | undefined {
  if (!cfg.caFile) return undefined;
  const file = path.resolve(configDir, cfg.caFile);
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KluisError('E_CONFIG_INVALID', `target ${cfg.name}: cannot read caFile ${file}`, { cause: err });
  }
}

export function openTarget(cfg: TargetConfig, ctx: TargetContext): Target {
  const env = ctx.env ?? process.env;
  switch (cfg.type) {
    case 'fs': {
      const root = path.resolve(ctx.configDir, cfg.url.replace(/^file:\/\//, ''));
      return new FsTarget(cfg.name, root);
    }
    case 's3': {
      const ca = readCa(cfg, ctx.configDir);
      return new S3Target({ cfg, configDir: ctx.configDir, env, guard: guardFor(cfg, ctx), ...(ca ? { ca } : {}) });
    }
    case 'webdav': {
      const ca = readCa(cfg, ctx.configDir);
      return new WebDavTarget({ cfg, configDir: ctx.configDir, env, guard: guardFor(cfg, ctx), ...(ca ? { ca } : {}) });
    }
  }
}

export type { Target, ObjectInfo, PutOptions, ProbeResult, TargetCapabilities, ListPage } from './types.js';
export { listPages } from './paging.js';
export { readOnly } from './readonly.js';
export { FsTarget } from './fs.js';
export type { IpCountryTable } from './country.js';
export { countryTableOf, sha256Hex, SHIPPED_DB_PACKAGE, SHIPPED_DB_PIN } from './country.js';
// The egress policy's pieces that `kluis config` and `kluis targets` show or check on their own.
export { metadataHostOf, vendorDomainOf, normaliseHost, parseRanges, redactUrl, type Refusal, type Resolver } from './egress.js';
