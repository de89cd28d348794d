/**
 * Small readers for box payloads: big-endian integers, latin1 text, the handler name of an
 * `hdlr`, and the printable strings (ASCII and UTF-16) a payload carries. Pure; never throws on
 * short input (missing bytes read as zero).
 */

export function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) >>> 0) + ((b[at + 1] ?? 0) << 16) + ((b[at + 2] ?? 0) << 8) + (b[at + 3] ?? 0);
}

export function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** The handler name of a `hdlr` payload, C-string or QuickTime Pascal string. */
export function handlerName(payload: Uint8Array): { type: string; name: string } {
  const type = latin1(payload.subarray(8, 12));
  const rest = payload.subarray(24);
  let name: string;
  if (rest.length > 0 && rest[0] === rest.length - 1 && rest.length > 1) {
    name = latin1(rest.subarray(1)); // Pascal string filling the box
  } else if (rest.length > 0 && (rest[0] ?? 0) > 0 && (rest[0] ?? 0) < 32 && (rest[0] ?? 0) <= rest.length - 1) {
    name = latin1(rest.subarray(1, 1 + (rest[0] ?? 0)));
  } else {
    name = latin1(rest);
  }
  return { type, name: name.replace(/\0+$/, '') };
}

export function isAllZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/** Printable runs (ASCII and UTF-16) of at least `min` characters, for needles and notes. */
export function printableRuns(b: Uint8Array, min = 6): string[] {
  const out = new Set<string>();
  const text = latin1(b);
  for (const m of text.matchAll(/[\x20-\x7e]{2,}/g)) if (m[0].trim().length >= min) out.add(m[0].trim());
  for (const m of text.matchAll(/(?:[\x20-\x7e]\0){2,}/g)) {
    const s = m[0].replace(/\0/g, '').trim();
    if (s.length >= min) out.add(s);
  }
  for (const m of text.matchAll(/(?:\0[\x20-\x7e]){2,}/g)) {
    const s = m[0].replace(/\0/g, '').trim();
    if (s.length >= min) out.add(s);
  }
  return [...out];
}
