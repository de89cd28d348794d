/**
 * Test helper: the connection settings written by scripts/services/up.sh (Ceph S3, Apache
 * WebDAV). Missing settings FAIL the suite with a clear message; only KLUIS_NO_SERVICES=1 (local
 * quick runs) lets a suite run without them, testing the fs target alone.
 */
import { readFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Services {
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string };
  webdav: { url: string; username: string; password: string; caFile: string; pin: string };
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function servicesEnvFile(): string {
  return process.env.KLUIS_SERVICES_ENV ?? path.join(repoRoot, '.services.env');
}

/** The services, or null when KLUIS_NO_SERVICES=1; throws (fails the suite) when they are missing. */
export function loadServices(): Services | null {
  const file = servicesEnvFile();
  if (!existsSync(file)) {
    if (process.env.KLUIS_NO_SERVICES === '1') return null;
    throw new Error(
      `test services are not running: ${file} is missing. Start them with \`bash scripts/services/up.sh\` ` +
        '(stop with scripts/services/down.sh), or set KLUIS_NO_SERVICES=1 for a local fs-only run.',
    );
  }
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m && m[1]) env[m[1]] = m[2] ?? '';
  }
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`${file} lacks ${k}; run scripts/services/down.sh and up.sh again`);
    return v;
  };
  return {
    s3: {
      endpoint: need('KLUIS_S3_ENDPOINT'),
      accessKeyId: need('KLUIS_S3_ACCESS_KEY_ID'),
      secretAccessKey: need('KLUIS_S3_SECRET_ACCESS_KEY'),
      region: need('KLUIS_S3_REGION'),
    },
    webdav: {
      url: need('KLUIS_WEBDAV_URL'),
      username: need('KLUIS_WEBDAV_USER'),
      password: need('KLUIS_WEBDAV_PASSWORD'),
      caFile: need('KLUIS_WEBDAV_CA'),
      pin: need('KLUIS_WEBDAV_PIN'),
    },
  };
}
