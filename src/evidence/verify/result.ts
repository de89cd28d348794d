/**
 * The shape of a verify report (per file, per target, per check) and the rules that combine
 * outcomes: the worst outcome wins (verified < unchecked < missing < mismatch), and a check that
 * could not be made but proves nothing either way ("soft") does not lower an object's result.
 */
import type { AuditVerifyResult } from '../../audit/index.js';
import type { FullDecode, RecordedEssence } from '../../sanitize/index.js';
import type { CustodySummary } from '../custody.js';

export type Outcome = 'verified' | 'mismatch' | 'missing' | 'unchecked';

export interface Check {
  /** e.g. "ciphertext-sha256", "plaintext-sha256", "essence:jpeg-scan-sha256", "card-sha256". */
  check: string;
  result: Outcome;
  message?: string;
}

export interface FileTargetResult {
  target: string;
  result: Outcome;
  checks: Check[];
}

export interface FileResult {
  path: string;
  objectId?: string;
  status: string;
  result: Outcome;
  targets: FileTargetResult[];
  card?: Check;
}

export interface ManifestResult {
  target: string;
  result: Outcome;
  message?: string;
}

export interface VerifyProblem {
  result: Exclude<Outcome, 'verified'>;
  /** A stable code where the problem has one (e.g. E_CUSTODY_ALTERED), with what to do. */
  code?: string;
  hint?: string;
  target?: string;
  path?: string;
  objectId?: string;
  message: string;
}

export interface VerifyReport {
  batchId: string;
  result: Outcome;
  ok: boolean;
  checkedAt: string;
  manifests: ManifestResult[];
  files: FileResult[];
  /** Objects in the manifest not tied to a card file (e.g. the sealed report). */
  objects: FileResult[];
  audit?: { file: string; result: Outcome; entries: number; batchEntries: number; checkpoints: number; problems: AuditVerifyResult['problems'] };
  /** The batch's custody record (its audit lines, signed, stored with it on every target). */
  custody: CustodyCheck;
  /** The station that signed the batch, as the config trusts it. */
  station?: { name: string; key: string };
  essence: 'rechecked' | 'not rechecked';
  problems: VerifyProblem[];
  /** Things that did not change the outcome but a reader should know (e.g. a listing failed). */
  notes: string[];
}

export interface CustodyCheck {
  result: Outcome;
  /** The record's object id in the batch (from the inner manifest). */
  object?: string;
  targets: Array<{ target: string; result: Outcome; code?: string; message?: string; hint?: string }>;
  /** Who, which card, when, per file and per delivery: from the first record that checked out. */
  record?: CustodySummary;
  message?: string;
}

/** Recomputes one essence hash of a plaintext file (the manifest's entry says how); null when its method is not supported. */
export type EssenceFn = (file: string, format: string | undefined, essence: RecordedEssence) => Promise<string | null>;

/** Decodes a file in full (see decodeFully); throws E_DECODE_FAILED / E_DECODE_UNSUPPORTED. */
export type DecodeFn = (file: string) => Promise<FullDecode>;

const RANK: Record<Outcome, number> = { verified: 0, unchecked: 1, missing: 2, mismatch: 3 };

export function worst(list: Outcome[]): Outcome {
  return list.reduce<Outcome>((a, b) => (RANK[b] > RANK[a] ? b : a), 'verified');
}

/**
 * A check that could not be made but does not make the object "unchecked": an essence hash that
 * could not be recomputed, a full decode of a kind ffmpeg cannot decode. It is shown on its check.
 */
export function soft(c: Check): boolean {
  return c.result === 'unchecked' && (c.check.startsWith('essence:') || c.check === 'decode' || c.check.startsWith('decode:'));
}

export function errText(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return `${e?.message ?? String(err)}${e?.code ? ` [${e.code}]` : ''}`;
}

export function isMissing(err: unknown): boolean {
  return (err as { code?: string })?.code === 'E_TARGET_MISSING';
}
