/**
 * The offline IP-to-country table the egress guard consults for cloud targets, and its lookup.
 *
 * Promises:
 * - the table is pinned: the shipped one by the SHA-256 of its files in this module
 *   (SHIPPED_DB_PIN), an admin's own one (`egress.ipCountryDb`) by `egress.ipCountryDbSha256`
 *   inside the signed config. The bytes parsed are the bytes hashed; a mismatch is
 *   E_EGRESS_IPDB_HASH (every cloud target is then refused), never a fallback; a table that
 *   cannot be read or holds no rows is E_CONFIG_IPDB;
 * - `lookup` gives the upper-case ISO 3166 alpha-2 code for an address (IPv4-mapped IPv6 included),
 *   or undefined when the table does not place it.
 *
 * Never: consults an online geo service.
 */
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { KluisError } from '../errors.js';

export interface IpCountryTable {
  /** ISO 3166 alpha-2 code (upper case) for an address, or undefined when not in the table. */
  lookup(address: string): string | undefined;
  /** Where the table came from, for `targets test` and the audit log. */
  readonly source: string;
}

export function ipv4ToNumber(a: string): number {
  const p = a.split('.').map(Number);
  return (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0;
}

export function ipv6ToBigInt(a: string): bigint {
  let s = a.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4 && v4[1]) {
    const n = ipv4ToNumber(v4[1]);
    s = s.slice(0, -v4[1].length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  let n = 0n;
  for (const g of groups) n = (n << 16n) + BigInt(parseInt(g || '0', 16));
  return n;
}

function packCc(cc: string): number {
  return (cc.charCodeAt(0) << 8) | cc.charCodeAt(1);
}
function unpackCc(n: number): string {
  return String.fromCharCode(n >> 8, n & 0xff);
}

/** Builds a table from rows of (first address, last address, country). Rows may mix v4 and v6. */
export function buildCountryTable(rows: Iterable<[string, string, string]>, source: string): IpCountryTable {
  const v4: Array<[number, number, number]> = [];
  const v6: Array<[bigint, bigint, number]> = [];
  for (const [first, last, cc] of rows) {
    const code = cc.trim().toUpperCase();
    if (!/^[A-Z]{2}$/.test(code)) continue;
    const f = first.trim().toLowerCase();
    const l = last.trim().toLowerCase();
    const kind = net.isIP(f);
    if (kind === 4 && net.isIP(l) === 4) v4.push([ipv4ToNumber(f), ipv4ToNumber(l), packCc(code)]);
    else if (kind === 6 && net.isIP(l) === 6) v6.push([ipv6ToBigInt(f), ipv6ToBigInt(l), packCc(code)]);
  }
  v4.sort((a, b) => a[0] - b[0]);
  v6.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const s4 = Uint32Array.from(v4, (r) => r[0]);
  const e4 = Uint32Array.from(v4, (r) => r[1]);
  const c4 = Uint16Array.from(v4, (r) => r[2]);
  const s6 = v6.map((r) => r[0]);
  const e6 = v6.map((r) => r[1]);
  const c6 = Uint16Array.from(v6, (r) => r[2]);
  function find<T extends number | bigint>(starts: ArrayLike<T>, x: T): number {
    let lo = 0;
    let hi = starts.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= x) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }
  return {
    source,
    lookup(address: string): string | undefined {
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
      const a = { address: mapped?.[1] ?? address, family: net.isIP(mapped?.[1] ?? address) };
      if (a.family === 0) return undefined;
      if (a.family === 4) {
        const x = ipv4ToNumber(a.address);
        const i = find(s4, x);
        return i >= 0 && x <= e4[i]! ? unpackCc(c4[i]!) : undefined;
      }
      const x = ipv6ToBigInt(a.address);
      const i = find(s6, x);
      return i >= 0 && x <= e6[i]! ? unpackCc(c6[i]!) : undefined;
    },
  };
}

function* csvRows(text: string): Generator<[string, string, string]> {
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [a, b, c] = t.split(',');
    if (a && b && c) yield [a, b, c];
  }
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One table file and the SHA-256 its bytes must have. */
export interface PinnedFile {
  file: string;
  sha256: string;
}

/**
 * Loads a CSV table (`first,last,country` per line, text addresses, v4 and/or v6) from files
 * whose SHA-256 is pinned. Each file is read once; the bytes hashed are the bytes parsed.
 */
export async function loadCountryCsv(files: PinnedFile[], source = files.map((f) => f.file).join(' + ')): Promise<IpCountryTable> {
  const rows: Array<[string, string, string]> = [];
  for (const { file, sha256 } of files) {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(file);
    } catch (err) {
      throw new KluisError('E_CONFIG_IPDB', `cannot read IP-to-country table ${file}`, {
        hint: 'egress.ipCountryDb must name a CSV file of first,last,country lines',
        cause: err,
      });
    }
    const actual = sha256Hex(bytes);
    if (actual !== sha256.toLowerCase()) {
      throw new KluisError('E_EGRESS_IPDB_HASH', `the IP-to-country table ${file} is not the pinned one (SHA-256 ${actual}, pinned ${sha256})`, {
        hint: 'the table decides which country an address is in, so it is used only as pinned: restore the file (npm ci restores the shipped one), or have the admin pin the new table in egress.ipCountryDbSha256 and sign the config',
        details: { file, sha256: actual, pinned: sha256, retryable: false },
      });
    }
    for (const r of csvRows(bytes.toString('utf8'))) rows.push(r);
  }
  if (rows.length === 0) {
    throw new KluisError('E_CONFIG_IPDB', `IP-to-country table ${source} holds no rows`, {
      hint: 'egress.ipCountryDb must name a CSV file of first,last,country lines',
    });
  }
  return buildCountryTable(rows, source);
}

/** The shipped table: npm package @ip-location-db/geo-whois-asn-country (CSV, v4 + v6). */
export const SHIPPED_DB_PACKAGE = '@ip-location-db/geo-whois-asn-country';

/**
 * The shipped table as this code was reviewed with: the exact package version (package.json pins
 * it without a range) and the SHA-256 of each file used. Updating the table is a code change:
 * bump the version in package.json, then these, in one reviewed commit.
 */
export const SHIPPED_DB_PIN = Object.freeze({
  version: '2.3.2026061719',
  files: Object.freeze({
    'geo-whois-asn-country-ipv4.csv': 'f08438247ce315e7f2aafe72b487ad103204c95d91e866e6c5306659e555496f',
    'geo-whois-asn-country-ipv6.csv': 'f06aa7d51b1d3b38c67d2216bd7bb003744aed7b5173d86d728ca466fb57728b',
  }) as Readonly<Record<string, string>>,
});

export async function shippedDbInfo(): Promise<{ dir: string; version: string; files: string[] }> {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve(`${SHIPPED_DB_PACKAGE}/package.json`);
  const dir = path.dirname(pkgFile);
  const pkg = JSON.parse(await fsp.readFile(pkgFile, 'utf8')) as { version: string };
  return { dir, version: pkg.version, files: Object.keys(SHIPPED_DB_PIN.files).map((f) => path.join(dir, f)) };
}

/** Loads the shipped table from `dir` (the installed package by default), checked against SHIPPED_DB_PIN. */
export async function loadShippedTable(dir?: string): Promise<IpCountryTable> {
  const where = dir ?? (await shippedDbInfo()).dir;
  const files = Object.entries(SHIPPED_DB_PIN.files).map(([name, sha256]) => ({ file: path.join(where, name), sha256 }));
  return loadCountryCsv(files, `${SHIPPED_DB_PACKAGE}@${SHIPPED_DB_PIN.version} (pinned)`);
}

const tableCache = new Map<string, Promise<IpCountryTable>>();

/** The part of the egress config that chooses the table. */
export interface CountryDbChoice {
  ipCountryDb?: string | undefined;
  ipCountryDbSha256?: string | undefined;
}

/** The table the config asks for (egress.ipCountryDb relative to configDir, pinned) or the shipped one; cached. */
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
      p = file ? loadCountryCsv([{ file, sha256: egress.ipCountryDbSha256! }]) : loadShippedTable();
    }
    p.catch(() => tableCache.delete(key));
    tableCache.set(key, p);
  }
  return p;
}
