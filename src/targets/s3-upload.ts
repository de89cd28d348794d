/**
 * Putting one object into S3: a body that fits one part goes up as one PutObject; a larger one as
 * a multipart upload of `partSize` parts, one after the other.
 *
 * Promises:
 * - memory is one reused part buffer per upload (util/reuse.ts), whatever the object's size: a
 *   local file is read straight into it, a stream is copied into it. Nothing is allocated per
 *   part or per read (lib-storage's part-by-concatenation kept the main thread's heap ~90 MB
 *   larger);
 * - the body is checked before the object can become visible: a local file must have the promised
 *   size and SHA-256 when its last byte is read (a stream is checked by CheckedBody), else the
 *   upload is abandoned with E_TARGET_BODY;
 * - CompleteMultipartUpload and the one-part PutObject carry `params` (If-None-Match, metadata,
 *   object lock); a failure after CreateMultipartUpload aborts the upload server-side (best
 *   effort), so nothing partial becomes visible;
 * - the parts are numbered from 1 in order, and every part but the last is `partSize` bytes.
 */
import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import type { CompletedPart, PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { give, take } from '../util/reuse.js';
import { BodyCheck } from './common.js';

type Sdk = typeof import('@aws-sdk/client-s3');

/** Where the bytes come from: fills `buf` from the start, returns how many (fewer only at the end). */
export interface PartSource {
  fill(buf: Buffer): Promise<number>;
  /** After the last fill: throws E_TARGET_BODY when the bytes were not the promised ones. */
  check(): void;
  close(): Promise<void>;
}

/**
 * A local file, read in place and checked against the promised size and SHA-256 as it is read;
 * null when it cannot be opened or has another size (the caller then streams the body).
 */
export async function fileSource(file: string, size: number, sha256: string, target: string): Promise<PartSource | null> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
    if ((await fh.stat()).size !== size) {
      await fh.close();
      return null;
    }
  } catch {
    return null;
  }
  const body = new BodyCheck(size, sha256, target);
  return {
    async fill(buf) {
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, body.bytes + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      body.update(buf.subarray(0, got));
      return got;
    },
    check: () => body.finish(),
    close: () => fh.close(),
  };
}

/** A stream (a CheckedBody, which errors when the bytes are not the promised ones), copied into the part buffers. */
export function streamSource(body: Readable): PartSource {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let rest: Buffer | null = null;
  let ended = false;
  return {
    async fill(buf) {
      let got = 0;
      while (got < buf.length) {
        if (!rest || rest.length === 0) {
          if (ended) break;
          const r = await it.next();
          if (r.done) {
            ended = true;
            break;
          }
          rest = r.value;
        }
        const n = Math.min(rest.length, buf.length - got);
        rest.copy(buf, got, 0, n);
        rest = rest.subarray(n);
        got += n;
      }
      return got;
    },
    check() {
      // CheckedBody has failed the stream already when the bytes were wrong.
    },
    close: async () => {
      if (!ended) await it.return?.();
      body.destroy();
    },
  };
}

export interface UploadDeps {
  sdk: Sdk;
  client: S3Client;
  partSize: number;
}

/**
 * Uploads everything `src` gives as the object `params` names (its Body is ignored). One part is
 * on its way at a time, from one buffer: reading the next part from the spool takes a few
 * milliseconds against tens for sending it, and the outbox already sends two objects at once.
 */
export async function uploadObject(deps: UploadDeps, params: Omit<PutObjectCommandInput, 'Body'>, src: PartSource): Promise<void> {
  const { sdk, client, partSize } = deps;
  const buf = take(partSize);
  let uploadId: string | undefined;
  try {
    let n = await src.fill(buf);
    if (n < partSize) {
      src.check();
      await client.send(new sdk.PutObjectCommand({ ...params, Body: buf.subarray(0, n) }));
      return;
    }
    const { IfNoneMatch, ...createParams } = params;
    const created = await client.send(new sdk.CreateMultipartUploadCommand(createParams));
    uploadId = created.UploadId;
    if (!uploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
    const parts: CompletedPart[] = [];
    for (let partNumber = 1; n > 0; partNumber++) {
      const r = await client.send(new sdk.UploadPartCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId, PartNumber: partNumber, Body: buf.subarray(0, n) }));
      parts.push({ PartNumber: partNumber, ETag: r.ETag });
      n = await src.fill(buf);
    }
    src.check();
    await client.send(
      new sdk.CompleteMultipartUploadCommand({
        Bucket: params.Bucket,
        Key: params.Key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
        ...(IfNoneMatch ? { IfNoneMatch } : {}),
      }),
    );
    uploadId = undefined;
  } catch (err) {
    if (uploadId) await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId })).catch(() => undefined);
    throw err;
  } finally {
    // Every request that read the buffer has settled.
    give(buf);
    await src.close().catch(() => undefined);
  }
}
