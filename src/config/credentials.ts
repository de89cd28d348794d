/**
 * Target credentials: never inside the signed config. A target's `credentials` block names
 * environment variables (`env: { accessKeyId: "MY_S3_KEY", ... }`) or a credentials file
 * (`file`, relative to the config folder) that must be mode 0600 or stricter; a file that group
 * or others may read is refused. With neither, S3 targets read the AWS SDK's standard variables
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), and WebDAV targets
 * KLUIS_WEBDAV_USERNAME / KLUIS_WEBDAV_PASSWORD.
 *
 * We never fall back to the SDK's default provider chain: it may contact instance-metadata or SSO
 * endpoints, which would be network egress outside the guard.
 *
 * Credentials file format: `name=value` lines; `#` comments; names as below (AWS-style upper-case
 * names are accepted too).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { KluisError } from '../errors.js';
import type { TargetConfig } from './schema.js';

export interface TargetCredentials {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  username?: string;
  password?: string;
}

const FIELDS = ['accessKeyId', 'secretAccessKey', 'sessionToken', 'username', 'password'] as const;
type Field = (typeof FIELDS)[number];

const ALIASES: Record<string, Field> = {
  accesskeyid: 'accessKeyId',
  aws_access_key_id: 'accessKeyId',
  secretaccesskey: 'secretAccessKey',
  aws_secret_access_key: 'secretAccessKey',
  sessiontoken: 'sessionToken',
  aws_session_token: 'sessionToken',
  username: 'username',
  user: 'username',
  password: 'password',
};

export function parseCredentialsText(text: string, file: string): TargetCredentials {
  const out: TargetCredentials = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith('[')) return;
    const eq = t.indexOf('=');
    if (eq < 1) {
      throw new KluisError('E_CONFIG_CREDENTIALS', `credentials file ${file} line ${i + 1} is not name=value`);
    }
    const name = t.slice(0, eq).trim().toLowerCase();
    const field = ALIASES[name];
    if (!field) {
      throw new KluisError('E_CONFIG_CREDENTIALS', `credentials file ${file} line ${i + 1}: unknown name '${t.slice(0, eq).trim()}'`, {
        hint: `use ${FIELDS.join(', ')}`,
      });
    }
    out[field] = t.slice(eq + 1).trim();
  });
  return out;
}

export async function readCredentialsFile(file: string): Promise<TargetCredentials> {
  let st;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    throw new KluisError('E_CONFIG_CREDENTIALS', `cannot read credentials file ${file}`, {
      hint: 'check credentials.file in the target config (relative to the config folder)',
      cause: err,
    });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new KluisError(
      'E_CONFIG_CREDENTIALS',
      `credentials file ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)})`,
      { hint: `run: chmod 600 ${file}` },
    );
  }
  return parseCredentialsText(await fsp.readFile(file, 'utf8'), file);
}

/** Resolves a target's credentials from its file, named variables, or the standard variables. */
export async function resolveCredentials(
  cfg: TargetConfig,
  configDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TargetCredentials> {
  const out: TargetCredentials = {};
  if (cfg.credentials?.file) {
    Object.assign(out, await readCredentialsFile(path.resolve(configDir, cfg.credentials.file)));
  }
  for (const [fieldName, varName] of Object.entries(cfg.credentials?.env ?? {})) {
    const field = ALIASES[fieldName.toLowerCase()];
    if (!field) {
      throw new KluisError('E_CONFIG_CREDENTIALS', `target ${cfg.name}: credentials.env names unknown field '${fieldName}'`, {
        hint: `use ${FIELDS.join(', ')}`,
      });
    }
    const v = env[varName];
    if (v === undefined || v === '') {
      throw new KluisError('E_CONFIG_CREDENTIALS', `target ${cfg.name}: environment variable ${varName} (for ${field}) is not set`, {
        hint: `export ${varName}=… for the kluis service`,
      });
    }
    out[field] = v;
  }
  if (!cfg.credentials) {
    if (cfg.type === 's3') {
      if (env.AWS_ACCESS_KEY_ID) out.accessKeyId = env.AWS_ACCESS_KEY_ID;
      if (env.AWS_SECRET_ACCESS_KEY) out.secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
      if (env.AWS_SESSION_TOKEN) out.sessionToken = env.AWS_SESSION_TOKEN;
    } else if (cfg.type === 'webdav') {
      if (env.KLUIS_WEBDAV_USERNAME) out.username = env.KLUIS_WEBDAV_USERNAME;
      if (env.KLUIS_WEBDAV_PASSWORD) out.password = env.KLUIS_WEBDAV_PASSWORD;
    }
  }
  return out;
}
