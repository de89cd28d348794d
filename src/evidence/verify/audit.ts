/**
 * The station's audit log, when verify runs on the station that holds it: its chain and signed
 * checkpoints (src/audit/verify.ts), and how many of its lines are this batch's.
 */
import { readAuditLog, verifyAuditLog } from '../../audit/index.js';
import type { PublicKey } from '../../seal/index.js';
import { errText, isMissing, type Outcome, type VerifyProblem, type VerifyReport } from './result.js';

/** Checks the log `auditFile` with the station key; its problems go to `problems`. */
export async function checkAudit(auditFile: string, stationPub: PublicKey, batchId: string, problems: VerifyProblem[]): Promise<NonNullable<VerifyReport['audit']>> {
  try {
    const a = await verifyAuditLog(auditFile, stationPub);
    let batchEntries = 0;
    for await (const { entry } of readAuditLog(auditFile)) if (entry?.batchId === batchId) batchEntries++;
    for (const p of a.problems) problems.push({ result: 'mismatch', path: `audit log line ${p.line}`, message: `audit log line ${p.line}: ${p.code}: ${p.message}` });
    return { file: auditFile, result: a.ok ? 'verified' : 'mismatch', entries: a.entries, batchEntries, checkpoints: a.checkpoints, problems: a.problems };
  } catch (err) {
    const result: Exclude<Outcome, 'verified'> = isMissing(err) || (err as { code?: string }).code === 'E_AUDIT_MISSING' ? 'missing' : 'unchecked';
    problems.push({ result, message: `audit log: ${errText(err)}` });
    return { file: auditFile, result, entries: 0, batchEntries: 0, checkpoints: 0, problems: [] };
  }
}
