/**
 * The admin's config: which targets exist, which are required for "secured", who the evidence
 * recipients are, and the sanitize/card policy. Validated with zod at the edge; anything not
 * described here is refused (strict objects), so a typo cannot silently relax a policy.
 *
 * Credentials never live here: a target names environment variables or a 0600 credentials file.
 */
import { z } from 'zod';

export const TargetConfigSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'target names are 1-32 of a-z, 0-9, _ and -'),
    type: z.enum(['fs', 's3', 'webdav']),
    /** fs: a folder (absolute, or relative to the config file); s3/webdav: the endpoint URL. */
    url: z.string().min(1),
    bucket: z.string().optional(),
    region: z.string().optional(),
    /** onprem: own server or NAS; cloud: a Dutch cloud provider (HTTPS, NL addresses only). */
    class: z.enum(['onprem', 'cloud']).default('onprem'),
    required: z.boolean().default(true),
    /** May this target receive unsanitized originals? Off unless the admin says so. */
    originalsAllowed: z.boolean().default(false),
    /** Where credentials come from: environment variable names, or a 0600 file. */
    credentials: z
      .object({
        env: z.record(z.string(), z.string()).optional(),
        file: z.string().optional(),
      })
      .strict()
      .optional(),
    /** Optional pinned TLS public key: base64 SHA-256 of the server's SubjectPublicKeyInfo. */
    tlsPin: z.string().optional(),
    /** Extra CA certificate (PEM file) to trust for this target, e.g. a self-signed own server. */
    caFile: z.string().optional(),
    /** Object lock retention in days where the target supports it (0 = none). */
    retentionDays: z.number().int().min(0).default(0),
    /** Object lock mode for retention (S3): compliance (nobody can delete early) or governance. */
    lockMode: z.enum(['compliance', 'governance']).default('compliance'),
  })
  .strict();
export type TargetConfig = z.infer<typeof TargetConfigSchema>;

export const PolicySchema = z
  .object({
    /** Radiometric thermal data (JPEG APP3/4/5) is image content: keep by default. */
    thermal: z.enum(['keep', 'remove']).default('keep'),
    /** LRF proxies: withheld, or stored after sanitizing as video. */
    lrf: z.enum(['withhold', 'sanitize']).default('withhold'),
    /** A card mounted read-write: warn (and audit) or refuse to read it. */
    writableCard: z.enum(['warn', 'refuse']).default('warn'),
    /** Wipe secured files from the card once every required target verified them. */
    wipeAfterSecured: z.boolean().default(false),
  })
  .strict();
export type Policy = z.infer<typeof PolicySchema>;

export const EgressSchema = z
  .object({
    /** Extra address ranges (CIDR) that onprem targets may resolve to, besides loopback/private. */
    onpremRanges: z.array(z.string()).default([]),
    /** Countries cloud targets may be in (ISO 3166 alpha-2). Only NL unless an issue says otherwise. */
    countries: z.array(z.string().length(2)).default(['NL']),
    /** An IP-to-country table (a country MaxMind DB, .mmdb) to use instead of the shipped one. */
    ipCountryDb: z.string().optional(),
    /** Hex SHA-256 of that table's bytes: required with ipCountryDb, checked at every load. */
    ipCountryDbSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lower-case hex digits')
      .optional(),
  })
  .strict()
  .refine((e) => !e.ipCountryDb || !!e.ipCountryDbSha256, {
    message: 'ipCountryDbSha256 is required with ipCountryDb: the table decides which country an address is in, so the signed config pins its SHA-256',
    path: ['ipCountryDbSha256'],
  });
export type Egress = z.infer<typeof EgressSchema>;

export const ConfigSchema = z
  .object({
    version: z.literal(1),
    /**
     * Raised by one at every signing (kluis config sign, targets add/remove); the station refuses
     * a revision older than the highest it accepted (src/config/revision.ts). Never edit it.
     */
    revision: z.number().int().min(1),
    /** When the admin signed it (ISO 8601 UTC), inside the signed content. */
    signedAt: z.string().datetime(),
    /**
     * Where this station's admin key pin is (absolute, or relative to the config folder); the
     * file must be one only root can change (src/config/pin.ts). KLUIS_ADMIN_PIN overrides it.
     */
    adminPin: z.string().min(1).optional(),
    /** Station name, recorded in the audit log and manifests. */
    station: z.string().min(1),
    /** Station signing public key (kluisstation1…). */
    stationKey: z.string().min(1),
    /** Evidence recipients (kluis1…): every sealed file is readable by each of them. */
    recipients: z.array(z.string()).min(1, 'at least one evidence recipient is needed'),
    targets: z.array(TargetConfigSchema).min(1, 'at least one target is needed'),
    policy: PolicySchema.default({}),
    egress: EgressSchema.default({}),
    /** Card mount roots that `kluis watch` watches. */
    watchRoots: z.array(z.string()).default(['/media', '/run/media']),
  })
  .strict();
export type Config = z.infer<typeof ConfigSchema>;

/** A config before signing: the signer sets `revision` and `signedAt` (config/load.ts). */
export const UnsignedConfigSchema = ConfigSchema.partial({ revision: true, signedAt: true });
export type UnsignedConfig = z.infer<typeof UnsignedConfigSchema>;

/** The file on disk: the config plus the admin's signature over its canonical JSON. */
export const SignedConfigFileSchema = z
  .object({
    config: z.unknown(),
    signature: z
      .object({
        alg: z.literal('ed25519'),
        key: z.string(),
        value: z.string(),
        /** Files signed before revisions put it here, outside the signed bytes; ignored. */
        signedAt: z.string().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
