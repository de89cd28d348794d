/**
 * The one small interface every storage target implements (fs, S3, WebDAV), plus capability
 * flags that callers probe instead of checking the type. Contract, for every implementation:
 *
 * - `put` writes an object so that it is never visible under `key` until complete; it refuses
 *   to overwrite an existing key (E_TARGET_EXISTS); it checks the transfer (Content-MD5/size)
 *   where the protocol allows. It returns only after the target acknowledged the full object.
 * - `head` returns null for a missing key; `get` throws E_TARGET_MISSING for one.
 * - every network call goes through the egress guard (allow-list, NL check, TLS pin), and is
 *   refused with E_EGRESS_* before a single byte of the body is sent.
 * - errors are KluisErrors: E_TARGET_AUTH (credentials), E_TARGET_UNREACHABLE (down/network),
 *   E_TARGET_MISSING, E_TARGET_EXISTS, E_TARGET_IO (anything else). `retryable` on the error's
 *   details says whether the outbox should try again later.
 */
import type { Readable } from 'node:stream';

export interface TargetCapabilities {
  /** Objects can be locked against deletion for a retention period (S3 object lock). */
  objectLock: boolean;
  /** The target keeps old versions of overwritten/deleted objects. */
  versioning: boolean;
  /** Large objects are uploaded in parts that can be retried one by one. */
  multipart: boolean;
  /** The target reports a content hash (MD5/ETag) that can be checked on read-back. */
  serverHash: boolean;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** Hex MD5 of the content, where the target reports one for a single-part object. */
  md5?: string;
}

/** One page of a listing (`Target.listPage`). */
export interface ListPage {
  objects: ObjectInfo[];
  /** Where the next page starts; absent when this page is the last. Opaque: pass it back as is. */
  cursor?: string;
}

export interface PutOptions {
  /** Exact byte length of the body; a mismatch fails the upload. */
  size: number;
  /** Hex SHA-256 of the body, recorded as metadata where the target can keep it. */
  sha256: string;
  /** Hex MD5 of the body, for Content-MD5 where the protocol checks it. */
  md5?: string;
  /** Retain (object lock) until this date, where the target supports it. */
  retainUntil?: Date;
  /**
   * A local file holding exactly the body (the sealed object in the spool). A target may use it
   * instead of `body()` where that saves a full copy (fs: a hard link, or a clone/in-kernel copy);
   * it is only ever read, never modified or removed. Targets that cannot use it ignore it.
   */
  localPath?: string;
}

export interface Target {
  readonly name: string;
  readonly type: 'fs' | 's3' | 'webdav';
  readonly capabilities: TargetCapabilities;
  /** `body` is called once per attempt and must return a fresh stream of the same bytes. */
  put(key: string, body: () => Readable, opts: PutOptions): Promise<void>;
  head(key: string): Promise<ObjectInfo | null>;
  get(key: string): Promise<Readable>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Optional capability (probe with `typeof t.listPage === 'function'`, or use
   * targets/paging.ts): one page of `list(prefix)`, at most `limit` objects (default 1000) in the
   * same order as `list`, starting after `cursor` (from the previous page). Each call stands on
   * its own, so a caller holds one page at a time, and can stop and go on later. Objects put or
   * deleted between calls may or may not show; no key is returned twice in one pass.
   */
  listPage?(prefix: string, cursor?: string, limit?: number): Promise<ListPage>;
  /**
   * Optional capability: the SHA-256 and size of the stored object, read back whole from the
   * target's storage (the same answer as hashing `get(key)`, by the target's cheapest full read;
   * fs: one reused buffer instead of a new one per chunk). E_TARGET_MISSING for a missing key.
   */
  readBackSha256?(key: string): Promise<{ sha256: string; size: number }>;
  delete(key: string): Promise<void>;
  /** Connectivity, credentials and policy check without storing footage. */
  probe(): Promise<ProbeResult>;
  close(): Promise<void>;
}

export interface ProbeResult {
  ok: boolean;
  /** One line per resolved address: address, country (cloud), verdict, reason. */
  addresses: Array<{ address: string; country?: string; allowed: boolean; reason: string }>;
  error?: { code: string; message: string };
}
