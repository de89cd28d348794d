/**
 * The IP-to-country lookup the egress guard uses for cloud targets: a country MaxMind DB (.mmdb)
 * file, read with the `maxmind` package, and used only when its bytes have the pinned SHA-256.
 *
 * Promises:
 * - the shipped database is npm package SHIPPED_DB_PACKAGE at exactly SHIPPED_DB_PIN.version
 *   (package.json names it without a range), its file pinned by SHA-256 in this module; an
 *   admin's own database (`egress.ipCountryDb`, relative to the config folder) is pinned by
 *   `egress.ipCountryDbSha256` inside the signed config;
 * - the file is read once and the bytes hashed are the bytes the reader parses; a mismatch is
 *   E_EGRESS_IPDB_HASH (every cloud target is then refused; nothing falls back); a file that
 *   cannot be read or is no MaxMind DB is E_CONFIG_IPDB;
 * - `lookup` gives the upper-case ISO 3166 alpha-2 code of the record for an address (an
 *   IPv4-mapped IPv6 address is looked up as its IPv4 address), shaped as in ip-location-db's
 *   country files (`country_code`) or MaxMind's GeoIP2/GeoLite2 country files
 *   (`country.iso_code`), or undefined when the database has no such record: the guard then
 *   refuses the address;
 * - a database loaded and checked stays in memory as checked (one Buffer the size of the file)
 *   for the life of the process; a file changed meanwhile is met at the next start.
 *
 * Never: downloads anything; looks an address up anywhere but in the pinned file.
 */
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { Reader, type Response } from 'maxmind';
import { KluisError } from '../errors.js';

export interface IpCountryTable {
  /** ISO 3166 alpha-2 code (upper case) for an address, or undefined when the database has none. */
  lookup(address: string): string | undefined;
  /** Where the database came from, for `targets test` and the audit log. */
  readonly source: string;
}

/** A country record as the two known publishers shape it. */
interface CountryRecord {
  country_code?: unknown;
  country?: { iso_code?: unknown };
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const NOT_A_DB_HINT =
  'egress.ipCountryDb must name a country MaxMind DB (.mmdb) file, e.g. an ip-location-db *-country.mmdb or a GeoLite2-Country.mmdb';

/**
 * A table over mmdb bytes already checked by the caller (tests build small ones). Throws
 * E_CONFIG_IPDB when the bytes are no MaxMind DB.
 */
export function countryTableOf(bytes: Buffer, source: string): IpCountryTable {
  let reader: Reader<Response>;
  try {
    reader = new Reader<Response>(bytes);
  } catch (err) {
    throw new KluisError('E_CONFIG_IPDB', `the IP-to-country table ${source} is not a MaxMind DB file: ${(err as Error).message}`, {
      hint: NOT_A_DB_HINT,
      cause: err,
    });
  }
  return {
    source,
    lookup(address: string): string | undefined {
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
      const a = mapped?.[1] ?? address;
      if (net.isIP(a) === 0) return undefined;
      let rec: CountryRecord | null;
      try {
        rec = reader.get(a) as CountryRecord | null;
      } catch {
        return undefined; // e.g. an IPv6 address asked of an IPv4-only database
      }
      const cc = rec?.country_code ?? rec?.country?.iso_code;
      return typeof cc === 'string' && /^[A-Za-z]{2}$/.test(cc) ? cc.toUpperCase() : undefined;
    },
  };
}

/** Reads `file` once, checks its SHA-256 against `sha256`, and opens the bytes checked. */
export async function loadCountryDb(file: string, sha256: string, source = file): Promise<IpCountryTable> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    throw new KluisError('E_CONFIG_IPDB', `cannot read IP-to-country table ${file}`, { hint: NOT_A_DB_HINT, cause: err });
  }
  const actual = sha256Hex(bytes);
  if (actual !== sha256.toLowerCase()) {
    throw new KluisError('E_EGRESS_IPDB_HASH', `the IP-to-country table ${file} is not the pinned one (SHA-256 ${actual}, pinned ${sha256})`, {
      hint: 'the table decides which country an address is in, so it is used only as pinned: restore the file (npm ci restores the shipped one), or have the admin pin the new table in egress.ipCountryDbSha256 and sign the config',
      details: { file, sha256: actual, pinned: sha256, retryable: false },
    });
  }
  return countryTableOf(bytes, source);
}

/** The shipped database: ip-location-db's geo-whois-asn-country in MaxMind DB form (IPv4 + IPv6). */
export const SHIPPED_DB_PACKAGE = '@ip-location-db/geo-whois-asn-country-mmdb';

/**
 * The shipped database as this code was reviewed with: the exact package version and the
 * SHA-256 of the file used. Updating the data is a code change: bump the version in package.json,
 * then these, in one reviewed commit (test/unit/egress.test.ts fails until they agree).
 */
export const SHIPPED_DB_PIN = Object.freeze({
  version: '2.3.2026061719',
  file: 'geo-whois-asn-country.mmdb',
  sha256: 'c5f7c0e9bd6a6ccb5a2e9634764544a0d08bd0bd8788b8aedfac87bea184c652',
});

export async function shippedDbInfo(): Promise<{ dir: string; version: string; file: string }> {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve(`${SHIPPED_DB_PACKAGE}/package.json`);
  const dir = path.dirname(pkgFile);
  const pkg = JSON.parse(await fsp.readFile(pkgFile, 'utf8')) as { version: string };
  return { dir, version: pkg.version, file: path.join(dir, SHIPPED_DB_PIN.file) };
}

/** Loads the shipped database from `dir` (the installed package by default), checked against SHIPPED_DB_PIN. */
export async function loadShippedTable(dir?: string): Promise<IpCountryTable> {
  const where = dir ?? (await shippedDbInfo()).dir;
  return loadCountryDb(path.join(where, SHIPPED_DB_PIN.file), SHIPPED_DB_PIN.sha256, `${SHIPPED_DB_PACKAGE}@${SHIPPED_DB_PIN.version} (pinned)`);
}

/** The part of the egress config that chooses the database. */
export interface CountryDbChoice {
  ipCountryDb?: string | undefined;
  ipCountryDbSha256?: string | undefined;
}

const tableCache = new Map<string, Promise<IpCountryTable>>();

/** The database the config asks for (egress.ipCountryDb relative to configDir, pinned) or the shipped one; cached. */
export function countryTableFor(egress: CountryDbChoice, configDir: string): Promise<IpCountryTable> {
  const file = egress.ipCountryDb ? path.resolve(configDir, egress.ipCountryDb) : undefined;
  const key = file ? `${file}#${egress.ipCountryDbSha256 ?? ''}` : '(shipped)';
  let p = tableCache.get(key);
  if (!p) {
    if (file && !egress.ipCountryDbSha256) {
      p = Promise.reject(
        new KluisError('E_EGRESS_IPDB_HASH', `the IP-to-country table ${file} is not pinned (egress.ipCountryDbSha256 is missing)`, {
          hint: 'the admin puts the SHA-256 of the table in egress.ipCountryDbSha256 and signs the config',
          details: { file, retryable: false },
        }),
      );
    } else {
      p = file ? loadCountryDb(file, egress.ipCountryDbSha256!) : loadShippedTable();
    }
    p.catch(() => tableCache.delete(key));
    tableCache.set(key, p);
  }
  return p;
}
