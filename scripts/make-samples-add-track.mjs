#!/usr/bin/env node
// Adds vendor-style telemetry to an MP4/MOV that ffmpeg wrote, the way drones write it and ffmpeg
// cannot: a binary timed-data track (e.g. DJI `djmd`/`dbgi`) and raw QuickTime `udta` string atoms
// (DJI `©csn` serial, `©mdl` model, `©xyz` location). Used by scripts/make-samples and by
// test/fixtures/generated-video/make-fixtures.sh; small files only (it reads the file whole).
//
//   node make-samples-add-track.mjs IN OUT [--track FOURCC:HANDLER_NAME:SAMPLES_FILE]
//                                   [--udta TYPE=VALUE]... [--sample-ms N]
//
// SAMPLES_FILE holds one sample per line (each line, without its newline, is one sample's bytes).
// The moov box is rebuilt and moved to the end; existing chunk offsets are corrected; the new
// track's samples go into a second mdat after it.
import { readFileSync, writeFileSync } from 'node:fs';

const [, , input, output, ...rest] = process.argv;
if (!input || !output) {
  console.error('usage: make-samples-add-track.mjs IN OUT [--track FOURCC:NAME:FILE] [--udta TYPE=VALUE]...');
  process.exit(2);
}
let track = null;
const udta = [];
let sampleMs = 1000;
for (let i = 0; i < rest.length; i++) {
  const a = rest[i];
  if (a === '--track') {
    const [fourcc, name, file] = rest[++i].split(':');
    track = { fourcc, name, samples: readFileSync(file, 'latin1').split('\n').filter((l) => l.length > 0).map((l) => Buffer.from(l, 'latin1')) };
  } else if (a === '--udta') {
    const s = rest[++i];
    const eq = s.indexOf('=');
    udta.push({ type: s.slice(0, eq).replace(/^\(c\)/, '\u00a9'), value: s.slice(eq + 1) });
  } else if (a === '--sample-ms') {
    sampleMs = Number(rest[++i]);
  } else {
    throw new Error(`unknown argument ${a}`);
  }
}

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'udta', 'edts', 'dinf']);
function parse(buf, start, end) {
  const out = [];
  let pos = start;
  while (pos + 8 <= end) {
    let size = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    let hs = 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(pos + 8));
      hs = 16;
    } else if (size === 0) size = end - pos;
    const b = { type, start: pos, size, hs };
    if (CONTAINERS.has(type)) b.children = parse(buf, pos + hs, pos + size);
    out.push(b);
    pos += size;
  }
  return out;
}
function box(type, ...parts) {
  const body = Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + body.length, 0);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, body]);
}
function u32(...vals) {
  const b = Buffer.alloc(4 * vals.length);
  vals.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
}
function u16(...vals) {
  const b = Buffer.alloc(2 * vals.length);
  vals.forEach((v, i) => b.writeUInt16BE(v, 2 * i));
  return b;
}

const buf = readFileSync(input);
const tops = parse(buf, 0, buf.length);
const moov = tops.find((b) => b.type === 'moov');
if (!moov) throw new Error('no moov');

// Re-serialize moov with corrected chunk offsets (moov moves to the end).
function serialize(b, shift) {
  if (b.children) {
    const kids = b.children.map((c) => serialize(c, shift));
    return box(b.type, ...kids);
  }
  const raw = Buffer.from(buf.subarray(b.start, b.start + b.size));
  if (b.type === 'stco' || b.type === 'co64') {
    const n = raw.readUInt32BE(12);
    for (let i = 0; i < n; i++) {
      if (b.type === 'stco') {
        const o = raw.readUInt32BE(16 + 4 * i);
        raw.writeUInt32BE(o > moov.start ? o - shift : o, 16 + 4 * i);
      } else {
        const o = raw.readBigUInt64BE(16 + 8 * i);
        raw.writeBigUInt64BE(o > BigInt(moov.start) ? o - BigInt(shift) : o, 16 + 8 * i);
      }
    }
  }
  return raw;
}

const mvhd = moov.children.find((c) => c.type === 'mvhd');
const mvhdRaw = Buffer.from(buf.subarray(mvhd.start, mvhd.start + mvhd.size));
const v1 = mvhdRaw[8] === 1;
const nextIdAt = mvhd.size - 4;
const nextId = mvhdRaw.readUInt32BE(nextIdAt);
const movieScale = mvhdRaw.readUInt32BE(v1 ? 8 + 4 + 16 : 8 + 4 + 8);

const others = tops.filter((b) => b !== moov).map((b) => buf.subarray(b.start, b.start + b.size));
const prefix = Buffer.concat(others);

function buildTrak(mdatPayloadOffset) {
  const n = track.samples.length;
  const durMs = n * sampleMs;
  const tkhd = box('tkhd', u32(0x00000003, 0, 0, nextId, 0, Math.round((durMs * movieScale) / 1000), 0, 0), u16(0, 0, 0, 0),
    u32(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000), u32(0, 0));
  const mdhd = box('mdhd', u32(0, 0, 0, 1000, durMs), u16(0x55c4, 0));
  const name = Buffer.from(`${track.name}\0`, 'latin1');
  const hdlr = box('hdlr', u32(0, 0), Buffer.from('meta'), u32(0, 0, 0), name);
  const nmhd = box('nmhd', u32(0));
  const dinf = box('dinf', box('dref', u32(0, 1), box('url ', u32(1))));
  const entry = box(track.fourcc, Buffer.alloc(6), u16(1));
  const stsd = box('stsd', u32(0, 1), entry);
  const stts = box('stts', u32(0, 1, n, sampleMs));
  const stsc = box('stsc', u32(0, 1, 1, n, 1));
  const stsz = box('stsz', u32(0, 0, n), ...track.samples.map((s) => u32(s.length)));
  const stco = box('stco', u32(0, 1, mdatPayloadOffset));
  const stbl = box('stbl', stsd, stts, stsc, stsz, stco);
  return box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', nmhd, dinf, stbl)));
}

function udtaAtoms() {
  return udta.map(({ type, value }) => {
    const v = Buffer.from(value, 'latin1');
    // QuickTime international text: 16-bit length, 16-bit language (0x7fff = undetermined as DJI writes), text.
    return box(type, u16(v.length, 0x7fff), v);
  });
}

function buildMoov(mdatPayloadOffset) {
  const kids = [];
  let sawUdta = false;
  for (const c of moov.children) {
    if (c.type === 'mvhd') {
      const raw = Buffer.from(mvhdRaw);
      if (track) raw.writeUInt32BE(nextId + 1, nextIdAt);
      kids.push(raw);
    } else if (c.type === 'udta') {
      sawUdta = true;
      kids.push(box('udta', ...c.children.map((k) => serialize(k, moov.size)), ...udtaAtoms()));
    } else if (c.type === 'trak' || c.type === 'iods' || c.type === 'meta' || c.type === 'uuid') {
      kids.push(serialize(c, moov.size));
    } else {
      kids.push(serialize(c, moov.size));
    }
  }
  if (track) kids.push(buildTrak(mdatPayloadOffset));
  if (!sawUdta && udta.length > 0) kids.push(box('udta', ...udtaAtoms()));
  return box('moov', ...kids);
}

// The new moov's size does not depend on the offset value, so build twice.
const probe = buildMoov(0);
const mdatOffset = prefix.length + probe.length + 8;
const newMoov = buildMoov(mdatOffset);
const parts = [prefix, newMoov];
if (track) parts.push(box('mdat', ...track.samples));
writeFileSync(output, Buffer.concat(parts));
