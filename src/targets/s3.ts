/**
 * S3-compatible object storage target (@aws-sdk/client-s3; uploads in s3-upload.ts), tuned for Ceph RGW 16
 * and AWS alike: path-style URLs, checksums only WHEN_REQUIRED (Ceph 16 ignores flexible
 * checksums and chokes on aws-chunked stream bodies), and a Content-MD5 header on every PutObject
 * and UploadPart (the one checksum Ceph verifies).
 *
 * Promises:
 * - every request goes through the guarded agents (egress guard at connect time);
 * - put refuses an existing key: HeadObject first, then `If-None-Match: *` on PutObject and
 *   CompleteMultipartUpload (servers that honour it close the race; see docs/targets.md for Ceph);
 * - large bodies go up in 8 MiB parts, one after the other, from one reused buffer (s3-upload.ts);
 *   a failed or aborted upload is aborted server-side, so nothing partial becomes visible;
 * - after the upload, HeadObject must report the promised size and SHA-256 metadata;
 * - object lock retention is set when the bucket has object lock and a retention is asked for;
 * - credentials come from config/credentials.ts, never from the SDK default chain (no IMDS).
 * - the SDK makes one attempt per call (maxAttempts 1): retries live in the outbox.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { KluisError } from '../errors.js';
import { resolveCredentials, type TargetConfig } from '../config/index.js';
import { fileSource, streamSource, uploadObject } from './s3-upload.js';
import { LazyReady, checkedBody, type NetworkTargetDeps, validateKey, validatePrefix } from './common.js';
import type { EgressGuard } from './egress.js';
import { createGuardedAgents, findKluisError, isNetworkError, isTlsError, tlsFailure, unreachable, type GuardedAgents } from './http.js';
import { pageLimit } from './paging.js';
import type { ListPage, ObjectInfo, ProbeResult, PutOptions, Target, TargetCapabilities } from './types.js';

export const S3_PART_SIZE = 8 * 1024 * 1024;

type S3Deps = NetworkTargetDeps;

/**
 * The SDK is loaded with the target's set-up, not with kluis: a station without an S3 target
 * never holds its ~25 MB of modules.
 */
async function loadSdk(): Promise<{ s3: typeof import('@aws-sdk/client-s3'); NodeHttpHandler: typeof import('@smithy/node-http-handler').NodeHttpHandler }> {
  const [s3, http] = await Promise.all([import('@aws-sdk/client-s3'), import('@smithy/node-http-handler')]);
  return { s3, NodeHttpHandler: http.NodeHttpHandler };
}

interface Ready {
  sdk: Awaited<ReturnType<typeof loadSdk>>;
  client: S3Client;
  bucket: string;
  lock: boolean;
}

export class S3Target implements Target {
  readonly type = 's3' as const;
  readonly name: string;
  readonly capabilities: TargetCapabilities = { objectLock: false, versioning: false, multipart: true, serverHash: true };
  private readonly deps: S3Deps;
  private readonly agents: GuardedAgents;
  private readonly lazy = new LazyReady<Ready>(() => this.init());

  constructor(deps: S3Deps) {
    this.deps = deps;
    this.name = deps.cfg.name;
    this.agents = createGuardedAgents({
      guard: deps.guard,
      ...(deps.ca ? { ca: deps.ca } : {}),
      ...(deps.cfg.tlsPin ? { tlsPin: deps.cfg.tlsPin } : {}),
    });
  }

  private ready(): Promise<Ready> {
    return this.lazy.get();
  }

  private async init(): Promise<Ready> {
    const { cfg, guard } = this.deps;
    let url: URL;
    try {
      url = new URL(cfg.url);
    } catch (err) {
      throw new KluisError('E_CONFIG_INVALID', `target ${cfg.name}: url '${cfg.url}' is not a URL`, { cause: err });
    }
    guard.checkUrl(url);
    await guard.ready();
    if (!cfg.bucket) {
      throw new KluisError('E_CONFIG_INVALID', `target ${cfg.name}: S3 targets need a bucket`, { hint: 'set "bucket" in the target config' });
    }
    const creds = await resolveCredentials(cfg, this.deps.configDir, this.deps.env);
    if (!creds.accessKeyId || !creds.secretAccessKey) {
      throw new KluisError('E_TARGET_AUTH', `target ${cfg.name}: no S3 credentials`, {
        hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or credentials.env / credentials.file in the target config',
        details: { retryable: false },
      });
    }
    const sdk = await loadSdk();
    const { GetObjectLockConfigurationCommand, GetBucketVersioningCommand } = sdk.s3;
    const client = new sdk.s3.S3Client({
      endpoint: cfg.url,
      region: cfg.region ?? 'us-east-1',
      forcePathStyle: true,
      credentials: {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
      },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: new sdk.NodeHttpHandler({
        httpAgent: this.agents.httpAgent,
        httpsAgent: this.agents.httpsAgent,
        connectionTimeout: 15_000,
        requestTimeout: 120_000,
        // A server that stops answering mid-request (seen: RGW with a full OSD) must fail the
        // attempt, not hang the outbox: 2 minutes without a byte either way is an error
        // (retryable). The SDK's requestTimeout alone only warns.
        socketTimeout: 120_000,
      }),
    });
    // Content-MD5 on every buffered PutObject/UploadPart body: the checksum Ceph 16 verifies.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const cmd = (context as { commandName?: string }).commandName;
        if (cmd === 'PutObjectCommand' || cmd === 'UploadPartCommand') {
          const req = args.request as { headers?: Record<string, string>; body?: unknown };
          const b = req.body;
          if (req.headers && (b instanceof Uint8Array || typeof b === 'string')) {
            req.headers['content-md5'] = createHash('md5').update(b).digest('base64');
          }
        }
        return next(args);
      },
      { step: 'build', name: 'kluisContentMd5' },
    );
    const bucket = cfg.bucket;
    let lock = false;
    try {
      const r = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
      lock = r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      const m = this.mapError(err, 'reading the bucket lock configuration');
      if (m.code !== 'E_TARGET_IO' && m.code !== 'E_TARGET_MISSING') throw m; // "no lock config" is fine
    }
    try {
      const v = await client.send(new GetBucketVersioningCommand({ Bucket: bucket }));
      this.capabilities.versioning = v.Status === 'Enabled';
    } catch (err) {
      const m = this.mapError(err, 'reading the bucket versioning');
      if (m.code !== 'E_TARGET_IO') throw m;
    }
    this.capabilities.objectLock = lock;
    return { sdk, client, bucket, lock };
  }

  /** Maps an SDK/network error to a KluisError with a stable code and `retryable`. */
  mapError(err: unknown, what: string): KluisError {
    const k = findKluisError(err);
    if (k) return k;
    const e = err as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const name = e.name ?? e.Code ?? '';
    const msg = `target ${this.name}: ${what}: ${name}${e.message && e.message !== name ? ` (${e.message})` : ''}`;
    if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken', 'Forbidden'].includes(name) || status === 401 || status === 403) {
      return new KluisError('E_TARGET_AUTH', msg, {
        hint: 'check the S3 access key and secret (and that the key may use this bucket)',
        cause: err,
        details: { retryable: false, status },
      });
    }
    if (status !== undefined && status >= 300 && status < 400 && status !== 304) {
      return this.deps.guard.refuse('E_EGRESS_REDIRECT', `server answered ${status} (${name}) while ${what}`, {
        host: new URL(this.deps.cfg.url).hostname,
      });
    }
    if (name === 'PreconditionFailed' || status === 412) {
      return new KluisError('E_TARGET_EXISTS', msg, { cause: err, details: { retryable: false } });
    }
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      if (name === 'NoSuchBucket') {
        return new KluisError('E_TARGET_IO', msg, { hint: `create bucket ${this.deps.cfg.bucket} first`, cause: err, details: { retryable: false } });
      }
      return new KluisError('E_TARGET_MISSING', msg, { cause: err, details: { retryable: false } });
    }
    if (isTlsError(err)) return tlsFailure(this.name, err);
    if (isNetworkError(err) || name === 'TimeoutError' || name === 'RequestTimeout' || (status !== undefined && status >= 500)) {
      return unreachable(this.name, err, what);
    }
    return new KluisError('E_TARGET_IO', msg, { cause: err, details: { retryable: name === 'BadDigest', status } });
  }

  async put(key: string, body: () => Readable, opts: PutOptions): Promise<void> {
    validateKey(key);
    const { sdk, client, bucket, lock } = await this.ready();
    if (await this.head(key)) {
      throw new KluisError('E_TARGET_EXISTS', `target ${this.name}: object ${key} already exists`, { details: { retryable: false } });
    }
    const retainUntil =
      opts.retainUntil ?? (this.deps.cfg.retentionDays > 0 ? new Date(Date.now() + this.deps.cfg.retentionDays * 86_400_000) : undefined);
    // A sealed object in the spool is read in place into the part buffers; anything else streams
    // through the size and SHA-256 check.
    const params: Omit<PutObjectCommandInput, 'Body'> = {
      Bucket: bucket,
      Key: key,
      ContentType: 'application/octet-stream',
      Metadata: { sha256: opts.sha256.toLowerCase() },
      IfNoneMatch: '*',
      ...(lock && retainUntil
        ? { ObjectLockMode: this.deps.cfg.lockMode === 'governance' ? 'GOVERNANCE' : 'COMPLIANCE', ObjectLockRetainUntilDate: retainUntil }
        : {}),
    };
    const deps = { sdk: sdk.s3, client, partSize: S3_PART_SIZE };
    try {
      const local = opts.localPath ? await fileSource(opts.localPath, opts.size, opts.sha256, this.name) : null;
      let done = false;
      if (local) {
        try {
          await uploadObject(deps, params, local);
          done = true;
        } catch (err) {
          // The local file did not hold the promised bytes (that upload was abandoned): the body
          // stream, checked on its own, is what goes up instead.
          if (!(err instanceof KluisError && err.code === 'E_TARGET_BODY')) throw err;
        }
      }
      if (!done) await uploadObject(deps, params, streamSource(checkedBody(body(), opts.size, opts.sha256, this.name)));
    } catch (err) {
      throw this.mapError(err, `uploading ${key}`);
    }
    const info = await this.headRaw(key);
    if (!info || info.size !== opts.size || info.sha256 !== opts.sha256.toLowerCase()) {
      throw new KluisError(
        'E_TARGET_IO',
        `target ${this.name}: read-back of ${key} shows ${info ? `${info.size} bytes, sha256 ${info.sha256 ?? '(none)'}` : 'no object'}; expected ${opts.size} bytes`,
        { details: { retryable: true } },
      );
    }
    if (opts.md5 && info.md5 && info.md5 !== opts.md5.toLowerCase()) {
      throw new KluisError('E_TARGET_IO', `target ${this.name}: ETag of ${key} is ${info.md5}, expected MD5 ${opts.md5}`, { details: { retryable: true } });
    }
  }

  private async headRaw(key: string): Promise<(ObjectInfo & { sha256?: string }) | null> {
    const { sdk, client, bucket } = await this.ready();
    try {
      const r = await client.send(new sdk.s3.HeadObjectCommand({ Bucket: bucket, Key: key }));
      const etag = (r.ETag ?? '').replace(/"/g, '');
      return {
        key,
        size: r.ContentLength ?? 0,
        ...(/^[0-9a-f]{32}$/.test(etag) ? { md5: etag } : {}),
        ...(r.Metadata?.sha256 ? { sha256: r.Metadata.sha256 } : {}),
      };
    } catch (err) {
      const m = this.mapError(err, `checking ${key}`);
      if (m.code === 'E_TARGET_MISSING') return null;
      throw m;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    validateKey(key);
    const r = await this.headRaw(key);
    if (!r) return null;
    return { key: r.key, size: r.size, ...(r.md5 ? { md5: r.md5 } : {}) };
  }

  async get(key: string): Promise<Readable> {
    validateKey(key);
    const { sdk, client, bucket } = await this.ready();
    try {
      const r = await client.send(new sdk.s3.GetObjectCommand({ Bucket: bucket, Key: key }));
      return r.Body as Readable;
    } catch (err) {
      throw this.mapError(err, `reading ${key}`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    const { sdk, client, bucket } = await this.ready();
    let token: string | undefined;
    do {
      let r;
      try {
        r = await client.send(new sdk.s3.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      } catch (err) {
        throw this.mapError(err, `listing ${prefix || '/'}`);
      }
      for (const o of r.Contents ?? []) {
        if (!o.Key) continue;
        const etag = (o.ETag ?? '').replace(/"/g, '');
        yield { key: o.Key, size: o.Size ?? 0, ...(/^[0-9a-f]{32}$/.test(etag) ? { md5: etag } : {}) };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async listPage(prefix: string, cursor?: string, limit?: number): Promise<ListPage> {
    validatePrefix(prefix);
    const n = pageLimit(limit);
    const { sdk, client, bucket } = await this.ready();
    let r;
    try {
      r = await client.send(new sdk.s3.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: n, ...(cursor ? { ContinuationToken: cursor } : {}) }));
    } catch (err) {
      throw this.mapError(err, `listing ${prefix || '/'}`);
    }
    const objects: ObjectInfo[] = [];
    for (const o of r.Contents ?? []) {
      if (!o.Key) continue;
      const etag = (o.ETag ?? '').replace(/"/g, '');
      objects.push({ key: o.Key, size: o.Size ?? 0, ...(/^[0-9a-f]{32}$/.test(etag) ? { md5: etag } : {}) });
    }
    return r.IsTruncated && r.NextContinuationToken ? { objects, cursor: r.NextContinuationToken } : { objects };
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    const { sdk, client, bucket } = await this.ready();
    try {
      await client.send(new sdk.s3.DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      const m = this.mapError(err, `deleting ${key}`);
      if (m.code !== 'E_TARGET_MISSING') throw m;
    }
  }

  /** Policy verdict per address, then HeadBucket (connectivity + credentials). Uploads nothing. */
  async probe(): Promise<ProbeResult> {
    const addresses: ProbeResult['addresses'] = [];
    try {
      const url = new URL(this.deps.cfg.url);
      this.deps.guard.checkUrl(url);
      for (const v of await this.deps.guard.explain(url.hostname)) {
        addresses.push({ address: v.address, ...(v.country ? { country: v.country } : {}), allowed: v.allowed, reason: v.reason });
      }
      const { sdk, client, bucket } = await this.ready();
      await client.send(new sdk.s3.HeadBucketCommand({ Bucket: bucket })).catch((err: unknown) => {
        throw this.mapError(err, `checking bucket ${bucket}`);
      });
      return { ok: addresses.every((a) => a.allowed), addresses };
    } catch (err) {
      const k = err instanceof KluisError ? err : this.mapError(err, 'probing');
      return { ok: false, addresses, error: { code: k.code, message: k.message } };
    }
  }

  async close(): Promise<void> {
    const r = await this.lazy.current()?.catch(() => undefined);
    r?.client.destroy();
    this.agents.destroy();
  }
}
