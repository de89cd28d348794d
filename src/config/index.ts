/**
 * What other folders use of the config: loading and signing a station's config, an evidence
 * desk's config, and the config's types. The rest of src/config is internal (the dependency
 * check, .dependency-cruiser.cjs, holds other folders to this file).
 */
export {
  layoutFor, loadConfig, readConfigFile, readSignedConfig, isDeskConfig, writeSignedConfig, signedDocument, formatZod,
  type StationLayout, type LoadedConfig,
} from './load.js';
export {
  DeskConfigSchema, buildDeskConfig, deskLayoutFor, loadDeskConfig, writeDeskConfig,
  type DeskConfig, type DeskStation, type DeskLayout, type LoadedDesk,
} from './desk.js';
export type { Config, TargetConfig, Egress, Policy } from './schema.js';
