/**
 * The egress guard: decides, for one target, whether a connection to a host (and to each address
 * that host resolves to) is allowed. It is consulted at connect time for every new connection
 * (see http.ts), not only when the config is read.
 *
 * Promises:
 * - a host on the built-in vendor deny list (drone makers, their CDNs and telemetry hosts) is
 *   refused whatever the config says (E_EGRESS_VENDOR);
 * - a URL carrying user:password@ is refused before any connection (E_CONFIG_CREDENTIALS), as
 *   Node would send it as Basic auth whatever the scheme; credentials come from credentials.ts;
 * - a `cloud` target is reached over HTTPS only (E_EGRESS_PLAINTEXT), and EVERY address its name
 *   resolves to (A and AAAA) must be placed by the offline IP-to-country table in one of
 *   `egress.countries` (default NL), else E_EGRESS_COUNTRY;
 * - an `onprem` target resolves only to loopback, private (RFC 1918, ULA) or admin-listed ranges,
 *   else E_EGRESS_RANGE; link-local (169.254/16, fe80::/10) is NOT private here, because that is
 *   where cloud metadata services live; list it in `egress.onpremRanges` if you mean it;
 * - a cloud metadata service (169.254.169.254, fd00:ec2::254, metadata.google.internal, … see
 *   METADATA_*) is refused for every target class, whatever `egress.onpremRanges` lists
 *   (E_EGRESS_METADATA): fd00:ec2::254 is a ULA address and would otherwise count as on-prem;
 * - the IP-to-country table (country.ts) is used only as pinned: a table that is not the pinned
 *   one refuses every cloud target (E_EGRESS_IPDB_HASH), never falls back;
 * - the name is resolved once, by the guard; the caller connects to an address the guard returned;
 * - every refusal is reported to `onRefusal` (the pipeline audit-logs it) and thrown as a
 *   KluisError with details { target, host, address, reason, retryable: false }.
 *
 * Never: consults a proxy, an online geo service, or the system resolver twice for one connection.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import { KluisError, type ErrorCode } from '../errors.js';
import type { Egress } from '../config/index.js';
import { countryTableFor, type IpCountryTable } from './country.js';

// ---------------------------------------------------------------------------------------------
// Vendor deny list

/**
 * Domains no config can allow: drone and drone-camera makers' clouds, CDNs and telemetry hosts.
 * A host matches when it equals an entry or ends with `.entry`. Kept short and explicit; add, never
 * make configurable.
 */
export const VENDOR_DENY_LIST: readonly string[] = Object.freeze([
  // DJI: main sites, CDNs, app/cloud APIs, flight-record and telemetry hosts, SkyPixel
  'dji.com',
  'dji.net',
  'djicdn.com',
  'djiservice.org',
  'djigo.com',
  'dji-innovations.com',
  'djicorp.com',
  'djiits.com',
  'djivideos.com',
  'dbeta.me',
  'skypixel.com',
  'ryzerobotics.com',
  // Autel, Parrot, Skydio, Yuneec: the other makers whose apps upload flight data
  'autelrobotics.com',
  'autelpilot.com',
  'autelrobotics.cn',
  'parrot.com',
  'skydio.com',
  'yuneec.com',
  // Thermal camera makers whose cores ship in drone payloads
  'flir.com',
  'flir.eu',
]);

export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** The deny-list entry a host falls under, or undefined. */
export function vendorDomainOf(host: string): string | undefined {
  const h = normaliseHost(host);
  return VENDOR_DENY_LIST.find((d) => h === d || h.endsWith(`.${d}`));
}

// ---------------------------------------------------------------------------------------------
// Addresses and ranges

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses. Injectable so tests never touch real DNS. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (host) => {
  const list = await dns.promises.lookup(host, { all: true, verbatim: true });
  return list.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** Turns an IPv4-mapped IPv6 address (::ffff:1.2.3.4) into the IPv4 address it carries. */
export function unmapAddress(address: string): ResolvedAddress {
  const a = normaliseHost(address);
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (m && m[1]) return { address: m[1], family: 4 };
  const fam = net.isIP(a);
  if (fam === 0) throw new KluisError('E_EGRESS_RANGE', `not an IP address: ${address}`);
  return { address: a, family: fam === 6 ? 6 : 4 };
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

const PRIVATE = new net.BlockList();
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');

const UNSPECIFIED = new net.BlockList();
UNSPECIFIED.addSubnet('0.0.0.0', 8, 'ipv4');
UNSPECIFIED.addAddress('::', 'ipv6');

function fam(a: ResolvedAddress): 'ipv4' | 'ipv6' {
  return a.family === 6 ? 'ipv6' : 'ipv4';
}

export function isLoopback(address: string): boolean {
  const a = unmapAddress(address);
  return LOOPBACK.check(a.address, fam(a));
}

/** Parses admin CIDR strings ("10.20.0.0/16", "2001:db8::/32", or a bare address). */
export function parseRanges(ranges: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const r of ranges) {
    const [addr, bits] = r.trim().split('/');
    const family = addr ? net.isIP(addr) : 0;
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (!addr || family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      throw new KluisError('E_CONFIG_INVALID', `egress.onpremRanges: '${r}' is not a CIDR range`, {
        hint: 'write ranges as ADDRESS/BITS, e.g. 10.20.0.0/16 or 2001:db8::/32',
      });
    }
    list.addSubnet(addr, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Cloud metadata services

/**
 * Addresses of cloud instance-metadata and host-agent services: they hand out credentials and
 * must never receive anything, whatever the config says. Add, never make configurable.
 */
export const METADATA_RANGES: readonly string[] = Object.freeze([
  '169.254.169.0/24', // AWS IMDS, DNS, NTP; GCP, Azure IMDS, OpenStack, DigitalOcean, Oracle, Hetzner
  '169.254.170.0/24', // AWS ECS task metadata / EKS pod identity agents
  '100.100.100.200/32', // Alibaba Cloud metadata
  '168.63.129.16/32', // Azure WireServer / host agent
  '192.0.0.192/32', // Oracle Cloud legacy metadata
  'fd00:ec2::/64', // AWS IMDS (fd00:ec2::254), DNS, NTP, EKS pod identity over IPv6
  'fd20:ce::/64', // GCP metadata server over IPv6 (fd20:ce::254)
]);

/** Host names of metadata services (matched like the vendor list: equal, or a subdomain). */
export const METADATA_HOSTS: readonly string[] = Object.freeze([
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
]);

const METADATA = parseRanges(METADATA_RANGES);

/** Whether `address` (any textual form Node accepts, IPv4-mapped included) is a metadata service. */
export function isMetadataAddress(address: string): boolean {
  let a: ResolvedAddress;
  try {
    a = unmapAddress(address);
  } catch {
    return false;
  }
  return METADATA.check(a.address, fam(a));
}

/** Why `host` (a URL's host name or literal address) is a metadata service, or undefined. */
export function metadataHostOf(host: string): string | undefined {
  const h = normaliseHost(host);
  if (net.isIP(h)) return isMetadataAddress(h) ? `${h} is a cloud metadata address` : undefined;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(h);
  if (m && isMetadataAddress(m[1]!)) return `${h} is a cloud metadata address`;
  const name = METADATA_HOSTS.find((d) => h === d || h.endsWith(`.${d}`));
  return name ? `${h} is a cloud metadata service (${name})` : undefined;
}

/** `url` with any user name and password replaced, for printing. Non-URLs come back as they are. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (!u.username && !u.password) return url;
  u.username = 'REDACTED';
  u.password = '';
  return u.toString();
}

// ---------------------------------------------------------------------------------------------
// The guard

export interface Refusal {
  target: string;
  host?: string;
  address?: string;
  reason: string;
  code: string;
}

export interface AddressVerdict {
  address: string;
  family: 4 | 6;
  country?: string;
  allowed: boolean;
  reason: string;
  code?: ErrorCode;
}

export interface EgressGuardOptions {
  target: string;
  targetClass: 'onprem' | 'cloud';
  egress: Egress;
  configDir: string;
  /** Injected table (tests); otherwise loaded from egress.ipCountryDb or the shipped package. */
  countryTable?: IpCountryTable;
  resolver?: Resolver;
  onRefusal?: (r: Refusal) => void;
}

const HINTS: Record<string, string> = {
  E_EGRESS_VENDOR: 'this host belongs to a drone or camera maker; kluis never sends footage there, whatever the config says',
  E_EGRESS_COUNTRY: 'cloud targets must resolve only to addresses in the allowed countries (egress.countries); check the endpoint, or update the IP-to-country table (egress.ipCountryDb)',
  E_EGRESS_RANGE: 'onprem targets must resolve to loopback, private or admin-listed ranges (egress.onpremRanges); add the range to the config and sign it, or set class "cloud"',
  E_EGRESS_PLAINTEXT: 'use an https:// URL (cloud targets always; WebDAV with a password except on loopback)',
  E_EGRESS_PIN: "the server's TLS public key differs from the pinned tlsPin; if the key was rotated on purpose, the admin updates tlsPin and signs the config",
  E_EGRESS_REDIRECT: 'the server answered with a redirect; kluis never follows one. Configure the final URL directly',
  E_EGRESS_METADATA: 'that is a cloud metadata service, which hands out credentials; kluis never connects to one, whatever the config says',
};

export class EgressGuard {
  readonly target: string;
  readonly targetClass: 'onprem' | 'cloud';
  private readonly egress: Egress;
  private readonly configDir: string;
  private readonly resolver: Resolver;
  private readonly onRefusal: ((r: Refusal) => void) | undefined;
  private readonly ranges: net.BlockList;
  private readonly countries: Set<string>;
  private table: IpCountryTable | undefined;

  constructor(opts: EgressGuardOptions) {
    this.target = opts.target;
    this.targetClass = opts.targetClass;
    this.egress = opts.egress;
    this.configDir = opts.configDir;
    this.resolver = opts.resolver ?? systemResolver;
    this.onRefusal = opts.onRefusal;
    this.table = opts.countryTable;
    this.ranges = parseRanges(opts.egress.onpremRanges ?? []);
    this.countries = new Set((opts.egress.countries ?? ['NL']).map((c) => c.toUpperCase()));
  }

  /** Reports and builds the error for a refusal; the caller throws it. */
  refuse(code: ErrorCode, reason: string, where: { host?: string; address?: string } = {}): KluisError {
    const r: Refusal = { target: this.target, reason, code, ...where };
    try {
      this.onRefusal?.(r);
    } catch {
      // The audit sink failing must not turn a refusal into an allowed connection; the error
      // below is still thrown. The sink is responsible for its own error reporting.
    }
    const at = where.address ? ` (${where.host ?? ''}${where.host ? ' → ' : ''}${where.address})` : where.host ? ` (${where.host})` : '';
    return new KluisError(code, `target ${this.target}: ${reason}${at}`, {
      ...(HINTS[code] ? { hint: HINTS[code] } : {}),
      details: { ...r, retryable: false },
    });
  }

  /**
   * Checks a URL before any connection: vendor host, scheme, plain-http rules.
   * `basicAuth`: the request would carry a password in clear text on http.
   */
  checkUrl(url: URL): void {
    const host = normaliseHost(url.hostname);
    // Node's http client turns URL userinfo into a Basic Authorization header by itself, past
    // the plain-http password rule, and messages that print the URL would print the password.
    if (url.username || url.password) {
      throw new KluisError('E_CONFIG_CREDENTIALS', `target ${this.target}: the URL for ${host} carries a user name or password`, {
        hint: 'remove user:password@ from the URL; give credentials with credentials.env or credentials.file in the target config, then sign it',
        details: { target: this.target, host, retryable: false },
      });
    }
    const vendor = vendorDomainOf(host);
    if (vendor) throw this.refuse('E_EGRESS_VENDOR', `${host} is on the built-in vendor deny list (${vendor})`, { host });
    const metadata = metadataHostOf(host);
    if (metadata) throw this.refuse('E_EGRESS_METADATA', metadata, { host });
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw this.refuse('E_EGRESS_PLAINTEXT', `unsupported URL scheme ${url.protocol}`, { host });
    }
    if (this.targetClass === 'cloud' && url.protocol !== 'https:') {
      throw this.refuse('E_EGRESS_PLAINTEXT', 'cloud targets must use https', { host });
    }
  }

  private async countryTable(): Promise<IpCountryTable> {
    if (!this.table) this.table = await countryTableFor(this.egress, this.configDir);
    return this.table;
  }

  /** Loads what the checks need (the country table for cloud targets). */
  async ready(): Promise<void> {
    if (this.targetClass === 'cloud') await this.countryTable();
  }

  /** The verdict for one address, without reporting. */
  async verdict(address: string): Promise<AddressVerdict> {
    const a = unmapAddress(address);
    const f = fam(a);
    if (UNSPECIFIED.check(a.address, f)) {
      return { ...a, allowed: false, reason: 'unspecified address', code: 'E_EGRESS_RANGE' };
    }
    if (METADATA.check(a.address, f)) {
      return { ...a, allowed: false, reason: 'a cloud metadata service address (never allowed, whatever the config lists)', code: 'E_EGRESS_METADATA' };
    }
    if (this.targetClass === 'onprem') {
      if (LOOPBACK.check(a.address, f)) return { ...a, allowed: true, reason: 'loopback' };
      if (PRIVATE.check(a.address, f)) return { ...a, allowed: true, reason: 'private range' };
      if (this.ranges.check(a.address, f)) return { ...a, allowed: true, reason: 'admin-listed range (egress.onpremRanges)' };
      return { ...a, allowed: false, reason: 'not loopback, private or an admin-listed range', code: 'E_EGRESS_RANGE' };
    }
    const table = await this.countryTable();
    const country = table.lookup(a.address);
    if (!country) {
      return { ...a, allowed: false, reason: `not in the IP-to-country table (${table.source})`, code: 'E_EGRESS_COUNTRY' };
    }
    if (!this.countries.has(country)) {
      return { ...a, country, allowed: false, reason: `placed in ${country}, allowed: ${[...this.countries].join(', ')}`, code: 'E_EGRESS_COUNTRY' };
    }
    return { ...a, country, allowed: true, reason: `placed in ${country}` };
  }

  /** Resolves `host` once; verdicts for every address. Throws only when resolution fails. */
  async explain(hostname: string): Promise<AddressVerdict[]> {
    const host = normaliseHost(hostname);
    const vendor = vendorDomainOf(host);
    if (vendor) {
      return [{ address: host, family: 4, allowed: false, reason: `vendor deny list (${vendor})`, code: 'E_EGRESS_VENDOR' }];
    }
    const metadata = !net.isIP(host) ? metadataHostOf(host) : undefined;
    if (metadata) return [{ address: host, family: 4, allowed: false, reason: metadata, code: 'E_EGRESS_METADATA' }];
    let addrs: ResolvedAddress[];
    if (net.isIP(host)) addrs = [{ address: host, family: net.isIP(host) === 6 ? 6 : 4 }];
    else {
      try {
        addrs = await this.resolver(host);
      } catch (err) {
        throw new KluisError('E_TARGET_UNREACHABLE', `target ${this.target}: cannot resolve ${host}: ${(err as Error).message}`, {
          hint: 'check the name and the station’s DNS',
          cause: err,
          details: { retryable: true },
        });
      }
      if (addrs.length === 0) {
        throw new KluisError('E_TARGET_UNREACHABLE', `target ${this.target}: ${host} resolves to no address`, {
          details: { retryable: true },
        });
      }
    }
    const out: AddressVerdict[] = [];
    for (const a of addrs) out.push(await this.verdict(a.address));
    return out;
  }

  /**
   * Resolves `host` once and checks every address; refuses (report + throw) if ANY address is
   * not allowed, so a name that resolves to NL and elsewhere is refused as a whole. Returns the
   * checked addresses; the caller must connect to one of these and nothing else.
   */
  async resolveAndCheck(hostname: string, opts: { plaintextPassword?: boolean } = {}): Promise<ResolvedAddress[]> {
    const host = normaliseHost(hostname);
    const verdicts = await this.explain(host);
    for (const v of verdicts) {
      if (!v.allowed) throw this.refuse(v.code ?? 'E_EGRESS_RANGE', v.reason, { host, ...(v.address !== host ? { address: v.address } : {}) });
      if (opts.plaintextPassword && !isLoopback(v.address)) {
        throw this.refuse('E_EGRESS_PLAINTEXT', 'a password would be sent over plain http to a non-loopback address', {
          host,
          address: v.address,
        });
      }
    }
    return verdicts.map((v) => ({ address: v.address, family: v.family }));
  }
}
