/**
 * Small country MaxMind DB (.mmdb) files for tests, so the guard is tested through the same reader
 * (the `maxmind` package) as the shipped database. Production code never writes mmdb.
 *
 * `countryMmdb(rows)` takes [CIDR, country] rows (IPv4 and IPv6 mixed) and writes an IPv6 tree
 * with 24-bit records, IPv4 networks at ::/96 as in the real country files. Later rows win where
 * networks overlap. Records are shaped like ip-location-db's country files ({ country_code }), or
 * like MaxMind's GeoIP2/GeoLite2 country files ({ country: { iso_code } }) with shape 'geoip2'.
 * Format: the MaxMind DB File Format Specification, version 2.0.
 */
import * as net from 'node:net';

type Value = string | { u16: number } | { u32: number } | { u64: number } | Value[] | { [key: string]: Value };
type Child = { node: number } | { data: number } | null;

function control(type: number, size: number): number[] {
  const head = (type > 7 ? 0 : type) << 5;
  const ext = type > 7 ? [type - 7] : [];
  if (size < 29) return [head | size, ...ext];
  if (size < 285) return [head | 29, ...ext, size - 29];
  const v = size - 285;
  return [head | 30, ...ext, v >> 8, v & 0xff];
}

function uint(type: number, n: number): number[] {
  const bytes: number[] = [];
  for (let v = BigInt(n); v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn));
  return [...control(type, bytes.length), ...bytes];
}

function encode(v: Value): number[] {
  if (typeof v === 'string') {
    const b = [...Buffer.from(v, 'utf8')];
    return [...control(2, b.length), ...b];
  }
  if (Array.isArray(v)) return [...control(11, v.length), ...v.flatMap(encode)];
  if ('u16' in v && typeof v.u16 === 'number') return uint(5, v.u16);
  if ('u32' in v && typeof v.u32 === 'number') return uint(6, v.u32);
  if ('u64' in v && typeof v.u64 === 'number') return uint(9, v.u64);
  const entries = Object.entries(v as Record<string, Value>);
  return [...control(7, entries.length), ...entries.flatMap(([k, x]) => [...encode(k), ...encode(x)])];
}

/** The 16 bytes of an address in the IPv6 tree (IPv4 at ::a.b.c.d) and the prefix length there. */
function network(cidr: string): { bytes: Buffer; prefix: number } {
  const [addr = '', bits] = cidr.split('/');
  const family = net.isIP(addr);
  if (family === 0) throw new Error(`not an address: ${cidr}`);
  const bytes = Buffer.alloc(16);
  if (family === 4) {
    addr.split('.').forEach((p, i) => (bytes[12 + i] = Number(p)));
    return { bytes, prefix: 96 + (bits === undefined ? 32 : Number(bits)) };
  }
  const [head = '', tail] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
  return { bytes, prefix: bits === undefined ? 128 : Number(bits) };
}

export function countryMmdb(rows: ReadonlyArray<readonly [string, string]>, opts: { shape?: 'ip-location-db' | 'geoip2' } = {}): Buffer {
  const data: number[] = [];
  const offsets = new Map<string, number>();
  const nodes: Array<[Child, Child]> = [[null, null]];
  for (const [cidr, cc] of rows) {
    let at = offsets.get(cc);
    if (at === undefined) {
      at = data.length;
      offsets.set(cc, at);
      data.push(...encode(opts.shape === 'geoip2' ? { country: { iso_code: cc } } : { country_code: cc }));
    }
    const { bytes, prefix } = network(cidr);
    if (prefix === 0) {
      nodes[0] = [{ data: at }, { data: at }];
      continue;
    }
    let n = 0;
    for (let depth = 0; depth < prefix; depth++) {
      const bit = (bytes[depth >> 3]! >> (7 - (depth & 7))) & 1;
      if (depth === prefix - 1) {
        nodes[n]![bit] = { data: at };
        break;
      }
      let child = nodes[n]![bit]!;
      if (!child || 'data' in child) {
        // A wider network's leaf splits into a node whose two halves keep its data.
        nodes.push([child, child]);
        child = { node: nodes.length - 1 };
        nodes[n]![bit] = child;
      }
      n = child.node;
    }
  }
  const count = nodes.length;
  const record = (c: Child): number => (c === null ? count : 'node' in c ? c.node : count + 16 + c.data);
  const tree = nodes.flatMap(([l, r]) => [record(l), record(r)].flatMap((v) => [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]));
  const metadata = encode({
    node_count: { u32: count },
    record_size: { u16: 24 },
    ip_version: { u16: 6 },
    database_type: 'kluis-test-country',
    languages: ['en'],
    binary_format_major_version: { u16: 2 },
    binary_format_minor_version: { u16: 0 },
    build_epoch: { u64: 1_750_000_000 },
    description: { en: 'kluis test country table' },
  });
  return Buffer.concat([
    Buffer.from(tree),
    Buffer.alloc(16),
    Buffer.from(data),
    Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'),
    Buffer.from(metadata),
  ]);
}
