/**
 * The journal: where every batch, file and delivery stands, durably. SQLite (node:sqlite) in
 * WAL mode with synchronous=FULL, so a committed state survives power loss. The pipeline
 * writes a file's state only after the work behind it is itself durable (spool file fsynced,
 * sealed object fsynced, target acknowledged), so a restart resumes from the last state and
 * redoes at most the step that was in flight.
 *
 * It also keeps an event table that other processes (the dashboard) tail.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { Sqlite } from '../util/sqlite.js';

/**
 * seen → acquired (card hashes; sealed original durable in the spool; plaintext working copy) →
 * sealed (sanitized object sealed and queued), or held (could not be sanitized: only its sealed
 * original is kept, on the targets that allow originals or in <state>/held/). 'sanitized' is
 * only found in journals written before sanitize and seal became one step.
 */
export type FileState = 'seen' | 'acquired' | 'sanitized' | 'sealed' | 'held' | 'withheld' | 'rejected' | 'failed' | 'missing';
export type DeliveryState = 'pending' | 'delivered' | 'verified' | 'refused' | 'failed';
export type BatchStatus = 'acquiring' | 'processing' | 'delivering' | 'secured' | 'partial' | 'failed';

export interface BatchRow {
  id: string;
  card_fingerprint: string;
  card_root: string;
  card_label: string | null;
  card_uuid: string | null;
  operator: string | null;
  case_ref: string | null;
  status: BatchStatus;
  created_at: string;
  updated_at: string;
  safe_to_remove_at: string | null;
  secured_at: string | null;
  manifest_written: number;
  report_object: string | null;
  recipients: string;
}

export interface FileRow {
  batch_id: string;
  path: string;
  class: 'footage' | 'sidecar' | 'other';
  format: string | null;
  size: number;
  mtime_ms: number;
  state: FileState;
  error_code: string | null;
  error_message: string | null;
  error_hint: string | null;
  card_sha256: string | null;
  card_xxh128: string | null;
  spool_path: string | null;
  sanitized_path: string | null;
  sanitize_json: string | null;
  object_id: string | null;
  sealed_path: string | null;
  sealed_sha256: string | null;
  sealed_size: number | null;
  thumb_path: string | null;
  /** The unsanitized original, sealed for targets whose config allows originals. */
  orig_object_id: string | null;
  orig_sealed_path: string | null;
  orig_sealed_sha256: string | null;
  orig_sealed_size: number | null;
  /** Where the sealed original is held on the station (state 'held' with no originals target). */
  held_path: string | null;
}

export interface DeliveryRow {
  batch_id: string;
  object_key: string;
  target: string;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number;
  last_error_code: string | null;
  last_error: string | null;
  size: number;
  sha256: string;
  local_path: string;
  updated_at: string;
}

export interface EventRow {
  id: number;
  time: string;
  batch_id: string | null;
  type: string;
  data: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  card_fingerprint TEXT NOT NULL,
  card_root TEXT NOT NULL,
  card_label TEXT, card_uuid TEXT,
  operator TEXT, case_ref TEXT,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  safe_to_remove_at TEXT, secured_at TEXT,
  manifest_written INTEGER NOT NULL DEFAULT 0,
  report_object TEXT,
  recipients TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_fp ON batches(card_fingerprint);
CREATE TABLE IF NOT EXISTS files (
  batch_id TEXT NOT NULL REFERENCES batches(id),
  path TEXT NOT NULL,
  class TEXT NOT NULL, format TEXT,
  size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  error_code TEXT, error_message TEXT, error_hint TEXT,
  card_sha256 TEXT, card_xxh128 TEXT,
  spool_path TEXT, sanitized_path TEXT, sanitize_json TEXT,
  object_id TEXT, sealed_path TEXT, sealed_sha256 TEXT, sealed_size INTEGER,
  thumb_path TEXT,
  orig_object_id TEXT, orig_sealed_path TEXT, orig_sealed_sha256 TEXT, orig_sealed_size INTEGER,
  held_path TEXT,
  PRIMARY KEY (batch_id, path)
);
CREATE TABLE IF NOT EXISTS deliveries (
  batch_id TEXT NOT NULL,
  object_key TEXT NOT NULL,
  target TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error_code TEXT, last_error TEXT,
  size INTEGER NOT NULL, sha256 TEXT NOT NULL, local_path TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (batch_id, object_key, target)
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time TEXT NOT NULL,
  batch_id TEXT,
  type TEXT NOT NULL,
  data TEXT NOT NULL
);
`;

export class Journal {
  readonly db: Sqlite;

  private constructor(db: Sqlite) {
    this.db = db;
  }

  static open(file: string): Journal {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const db = new Sqlite(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 10000');
    db.pragma('foreign_keys = ON');
    db.exec(SCHEMA);
    // Columns added after the first release: add them to journals made before.
    const cols = new Set((db.prepare('PRAGMA table_info(files)').all() as Array<{ name: string }>).map((c) => c.name));
    for (const [name, type] of [['orig_object_id', 'TEXT'], ['orig_sealed_path', 'TEXT'], ['orig_sealed_sha256', 'TEXT'], ['orig_sealed_size', 'INTEGER'], ['held_path', 'TEXT']]) {
      if (!cols.has(name!)) db.exec(`ALTER TABLE files ADD COLUMN ${name} ${type}`);
    }
    return new Journal(db);
  }

  close(): void {
    this.db.close();
  }

  now(): string {
    return new Date().toISOString();
  }

  createBatch(b: Omit<BatchRow, 'created_at' | 'updated_at' | 'safe_to_remove_at' | 'secured_at' | 'manifest_written' | 'report_object'>): void {
    const t = this.now();
    this.db
      .prepare(
        `INSERT INTO batches (id, card_fingerprint, card_root, card_label, card_uuid, operator, case_ref, status, created_at, updated_at, recipients)
         VALUES (@id, @card_fingerprint, @card_root, @card_label, @card_uuid, @operator, @case_ref, @status, @t, @t, @recipients)`,
      )
      .run({ ...b, t });
  }

  batch(id: string): BatchRow | undefined {
    return this.db.prepare('SELECT * FROM batches WHERE id = ?').get(id) as BatchRow | undefined;
  }

  batches(): BatchRow[] {
    return this.db.prepare('SELECT * FROM batches ORDER BY created_at DESC').all() as BatchRow[];
  }

  batchesForCard(fingerprint: string): BatchRow[] {
    return this.db.prepare('SELECT * FROM batches WHERE card_fingerprint = ? ORDER BY created_at DESC').all(fingerprint) as BatchRow[];
  }

  unfinishedBatches(): BatchRow[] {
    return this.db.prepare(`SELECT * FROM batches WHERE status NOT IN ('secured','failed') ORDER BY created_at`).all() as BatchRow[];
  }

  setBatch(id: string, fields: Partial<BatchRow>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${k} = @${k}`).join(', ');
    this.db.prepare(`UPDATE batches SET ${sets}, updated_at = @__t WHERE id = @__id`).run({ ...fields, __t: this.now(), __id: id });
  }

  addFile(f: Pick<FileRow, 'batch_id' | 'path' | 'class' | 'format' | 'size' | 'mtime_ms' | 'state'> & Partial<FileRow>): void {
    const row: FileRow = {
      error_code: null, error_message: null, error_hint: null, card_sha256: null, card_xxh128: null,
      spool_path: null, sanitized_path: null, sanitize_json: null, object_id: null, sealed_path: null,
      sealed_sha256: null, sealed_size: null, thumb_path: null,
      orig_object_id: null, orig_sealed_path: null, orig_sealed_sha256: null, orig_sealed_size: null, held_path: null, ...f,
    };
    this.db
      .prepare(
        `INSERT OR IGNORE INTO files (batch_id, path, class, format, size, mtime_ms, state, error_code, error_message, error_hint,
           card_sha256, card_xxh128, spool_path, sanitized_path, sanitize_json, object_id, sealed_path, sealed_sha256, sealed_size, thumb_path,
           orig_object_id, orig_sealed_path, orig_sealed_sha256, orig_sealed_size, held_path)
         VALUES (@batch_id, @path, @class, @format, @size, @mtime_ms, @state, @error_code, @error_message, @error_hint,
           @card_sha256, @card_xxh128, @spool_path, @sanitized_path, @sanitize_json, @object_id, @sealed_path, @sealed_sha256, @sealed_size, @thumb_path,
           @orig_object_id, @orig_sealed_path, @orig_sealed_sha256, @orig_sealed_size, @held_path)`,
      )
      .run(row);
  }

  files(batchId: string): FileRow[] {
    return this.db.prepare('SELECT * FROM files WHERE batch_id = ? ORDER BY path').all(batchId) as FileRow[];
  }

  file(batchId: string, p: string): FileRow | undefined {
    return this.db.prepare('SELECT * FROM files WHERE batch_id = ? AND path = ?').get(batchId, p) as FileRow | undefined;
  }

  setFile(batchId: string, p: string, fields: Partial<FileRow>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${k} = @${k}`).join(', ');
    this.db.prepare(`UPDATE files SET ${sets} WHERE batch_id = @__b AND path = @__p`).run({ ...fields, __b: batchId, __p: p });
  }

  /** Queues an object for every target in one transaction (idempotent). */
  enqueue(batchId: string, objectKey: string, targets: string[], o: { size: number; sha256: string; localPath: string }): void {
    const t = this.now();
    const stmt = this.db.prepare(
      `INSERT OR IGNORE INTO deliveries (batch_id, object_key, target, state, size, sha256, local_path, updated_at)
       VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const target of targets) stmt.run(batchId, objectKey, target, o.size, o.sha256, o.localPath, t);
    })();
  }

  deliveries(batchId: string): DeliveryRow[] {
    return this.db.prepare('SELECT * FROM deliveries WHERE batch_id = ? ORDER BY object_key, target').all(batchId) as DeliveryRow[];
  }

  delivery(batchId: string, objectKey: string, target: string): DeliveryRow | undefined {
    return this.db.prepare('SELECT * FROM deliveries WHERE batch_id = ? AND object_key = ? AND target = ?').get(batchId, objectKey, target) as DeliveryRow | undefined;
  }

  /** Deliveries still to put or to verify ('pending', 'delivered'), of one batch or of all. */
  openDeliveries(batchId?: string): DeliveryRow[] {
    const open = "state IN ('pending', 'delivered')";
    return batchId === undefined
      ? (this.db.prepare(`SELECT * FROM deliveries WHERE ${open}`).all() as DeliveryRow[])
      : (this.db.prepare(`SELECT * FROM deliveries WHERE batch_id = ? AND ${open} ORDER BY object_key, target`).all(batchId) as DeliveryRow[]);
  }

  allDeliveries(): DeliveryRow[] {
    return this.db.prepare('SELECT * FROM deliveries').all() as DeliveryRow[];
  }

  setDelivery(batchId: string, objectKey: string, target: string, fields: Partial<DeliveryRow>): void {
    const keys = Object.keys(fields);
    const sets = keys.map((k) => `${k} = @${k}`).join(', ');
    this.db
      .prepare(`UPDATE deliveries SET ${sets}${keys.length ? ',' : ''} updated_at = @__t WHERE batch_id = @__b AND object_key = @__k AND target = @__g`)
      .run({ ...fields, __t: this.now(), __b: batchId, __k: objectKey, __g: target });
  }

  addEvent(type: string, batchId: string | null, data: Record<string, unknown>): EventRow {
    const time = this.now();
    const json = JSON.stringify(data);
    const r = this.db.prepare('INSERT INTO events (time, batch_id, type, data) VALUES (?, ?, ?, ?)').run(time, batchId, type, json);
    return { id: Number(r.lastInsertRowid), time, batch_id: batchId, type, data: json };
  }

  eventsAfter(id: number, limit = 500): EventRow[] {
    return this.db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?').all(id, limit) as EventRow[];
  }
}
