/**
 * The station's audit log: its line format, its writer and its checker. Other folders import
 * exactly these; the rest of src/audit is internal (the dependency check, .dependency-cruiser.cjs,
 * holds other folders to this file).
 */
export {
  AUDIT_EVENT_TYPES, ZERO_HASH, entryHash, checkpointMessage, type AuditEntry, type AuditEventType,
} from './format.js';
export { AuditLog, type AuditOpenOptions } from './writer.js';
export { readAuditLog, verifyAuditLog, type AuditProblem, type AuditVerifyResult } from './verify.js';
