/**
 * A plain S3 client for a test's own set-up and checks against the test services' Ceph RGW (make
 * and inspect buckets), with the settings kluis's S3 target uses (path style, checksums only when
 * required: Ceph 16 refuses the flexible ones).
 */
import { S3Client } from '@aws-sdk/client-s3';

export interface S3Service {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function rawS3Client(s: S3Service): S3Client {
  return new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
