/**
 * A station's status, read from the journal: batches (with "safe to remove" and secured), files
 * per state, the held originals, targets and the outbox. One declared shape, which `kluis status
 * --json` prints and the dashboard serves per batch. Reads only; contacts no target.
 */
import type { Station } from './station.js';
import { batchOutcome, type BatchOutcome, type FileOutcome, type TargetOutcome } from './finalize.js';

export interface FileCounts {
  files: number;
  footage: number;
  /** Footage files secured. */
  secured: number;
  withheld: number;
  rejected: number;
  failed: number;
  held: number;
  queued: number;
}

export interface HeldFile {
  path: string;
  code: string;
  message: string;
  /** Where on the station the sealed original is held, when no target holds it. */
  heldAt?: string;
  targets: string[];
  original?: FileOutcome['original'];
}

export interface BatchStatus {
  batchId: string;
  status: 'secured' | 'partial' | 'failed';
  phase: string;
  createdAt: string;
  safeToRemove: boolean;
  safeToRemoveAt: string | null;
  securedAt: string | null;
  operator: string | null;
  case: string | null;
  card: BatchOutcome['card'];
  counts: FileCounts;
  held: HeldFile[];
  targets: TargetOutcome[];
  /** Every file, when the status was asked for one batch. */
  files?: FileOutcome[];
}

export interface TargetStatus {
  name: string;
  type: string;
  class: string;
  required: boolean;
  outbox: number;
  verified: number;
  refused: number;
  lastSuccess?: string;
  lastError?: { code: string; message: string };
}

export interface StationStatus {
  station: string;
  batches: BatchStatus[];
  targets: TargetStatus[];
}

/** Files per state (footage counted apart; `secured` counts footage only). */
export function fileCounts(files: Array<Pick<FileOutcome, 'class' | 'status'>>): FileCounts {
  const n = (s: FileOutcome['status']): number => files.filter((f) => f.status === s).length;
  const footage = files.filter((f) => f.class === 'footage');
  return {
    files: files.length,
    footage: footage.length,
    secured: footage.filter((f) => f.status === 'secured').length,
    withheld: n('withheld'),
    rejected: n('rejected'),
    failed: n('failed'),
    held: n('held'),
    queued: n('queued'),
  };
}

export function stationStatus(station: Station, onlyBatch?: string): StationStatus {
  const { journal } = station;
  const batches = journal.batches().filter((b) => !onlyBatch || b.id === onlyBatch || b.id.startsWith(onlyBatch));
  const deliveries = journal.allDeliveries();
  return {
    station: station.config.station,
    batches: batches.map((b) => {
      const o = batchOutcome(station, b.id);
      return {
        batchId: b.id,
        status: o.status,
        phase: b.status,
        createdAt: b.created_at,
        safeToRemove: o.safeToRemove,
        safeToRemoveAt: b.safe_to_remove_at,
        securedAt: b.secured_at,
        operator: b.operator,
        case: b.case_ref,
        card: o.card,
        counts: fileCounts(o.files),
        held: o.files
          .filter((f) => f.status === 'held')
          .map((f) => ({
            path: f.path,
            code: f.error?.code ?? '',
            message: f.error?.message ?? '',
            ...(f.heldAt ? { heldAt: f.heldAt } : {}),
            targets: Object.keys(f.targets ?? {}),
            ...(f.original ? { original: f.original } : {}),
          })),
        targets: o.targets,
        ...(onlyBatch ? { files: o.files } : {}),
      };
    }),
    targets: [...station.targetConfigs.values()].map((t) => {
      const rows = deliveries.filter((d) => d.target === t.name);
      const ok = rows.filter((d) => d.state === 'verified').sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1))[0];
      const bad = rows.filter((d) => d.last_error_code && d.state !== 'verified').sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1))[0];
      return {
        name: t.name,
        type: t.type,
        class: t.class,
        required: t.required,
        outbox: rows.filter((d) => d.state === 'pending' || d.state === 'delivered').length,
        verified: rows.filter((d) => d.state === 'verified').length,
        refused: rows.filter((d) => d.state === 'refused').length,
        ...(ok ? { lastSuccess: ok.updated_at } : {}),
        ...(bad ? { lastError: { code: bad.last_error_code!, message: bad.last_error ?? '' } } : {}),
      };
    }),
  };
}
