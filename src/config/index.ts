/**
 * What other folders use of the config: loading and signing a station's config, an evidence
 * desk's config, the station's layout, the admin pin, the remembered config revision, target
 * credentials, and the config's schemas and types. The rest of src/config is internal (the
 * dependency check, .dependency-cruiser.cjs, holds other folders to this file).
 */
export {
  loadConfig, readConfigFile, readSignedConfig, isDeskConfig, writeSignedConfig, signedDocument, formatZod,
  type LoadedConfig,
} from './load.js';
export { layoutFor, type StationLayout } from './layout.js';
export {
  DeskConfigSchema, buildDeskConfig, deskLayoutFor, loadDeskConfig, writeDeskConfig,
  type DeskConfig, type DeskStation, type DeskLayout, type LoadedDesk,
} from './desk.js';
export { assertPinProtected, pinFileFor, pinProblem, type PinProblem } from './pin.js';
export { rememberRevision, rememberedRevision, type ConfigStamp, type Remembered } from './revision.js';
export { resolveCredentials, type TargetCredentials } from './credentials.js';
export { TargetConfigSchema, UnsignedConfigSchema, type Config, type UnsignedConfig, type TargetConfig, type Egress, type Policy } from './schema.js';
