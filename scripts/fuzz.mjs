#!/usr/bin/env node
/**
 * Seeded fuzz of the sanitizers (issue 15): mutated JPEG, TIFF and MP4/MOV inputs, each through
 * the real entry point `sanitizeFile` (sniff by bytes, sanitize, prove, re-read), in worker
 * threads with a time limit per input. Not part of the test suite (a full run takes tens of
 * minutes); the unit tests fuzz-image / fuzz-mp4 run small seeded slices of the same idea.
 *
 * For every input exactly one of:
 *   refused   a KluisError E_SANITIZE_* (fail closed): fine;
 *   clean     an output that this script's own checks find clean: the project's structure
 *             walkers (JPEG segments / TIFF IFDs / MP4 boxes, run here on the output), exifr over
 *             every metadata kind it knows, and a raw search for the planted and known
 *             identifiers (and, for video, the sanitizer's never-outside-mdat needle list);
 *   finding   a crash (any other error, E_INTERNAL included), a hang (no answer within the time
 *             limit; the worker is terminated and replaced), or telemetry in a passed output.
 * Findings are written to OUT/findings/ (the input bytes and a JSON line), the summary to
 * OUT/summary.json and stdout, refusals other than plain parse/truncation/box-size errors to
 * OUT/refusals.jsonl (to read through: a refusal is fine, but its reason should make sense; the
 * first five inputs of each such code are kept in OUT/refusals/). The
 * exit code is 1 when there is a finding.
 *
 * Inputs depend only on the seed and the per-kind index, never on timing or the worker count:
 * `--only mp4:123` re-runs exactly one case.
 *
 *   node scripts/fuzz.mjs [--seed 0x6b6c7569] [--jpeg 4000] [--tiff 3000] [--mp4 3000]
 *                         [--workers 2] [--timeout-ms 60000] [--out DIR] [--only KIND:INDEX]
 *                         [--dist DIR]   (a copy of dist/, so a rebuild cannot change a long run)
 *
 * Needs the build (`npm run build`) and ffmpeg, ffprobe, exiftool on PATH.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
// --dist DIR runs a copy of the build (so a rebuild during a long run cannot change the code under it).
const distArg = process.argv.indexOf('--dist');
const distDir = isMainThread ? (distArg > 0 ? path.resolve(process.argv[distArg + 1]) : path.join(repo, 'dist')) : workerData.dist;
const dist = (p) => pathToFileURL(path.join(distDir, p)).href;

// ---------------------------------------------------------------------------------------------
// Shared: what counts as telemetry in an output
// ---------------------------------------------------------------------------------------------

/** Planted by the mutators; must never come out. */
const PLANT = 'FUZZSERIAL-0001 drone-dji GPSLatitude';
const IMAGE_NEEDLES = ['KLUISGEN', 'FUZZSERIAL', 'drone-dji', 'GPSLatitude', 'http://ns.adobe.com', '5Z9FKCL1AA2FFS'];
const VIDEO_NEEDLES = ['FUZZSERIAL', 'SN=1SFOJ8J0AB0GAM', '1SFOJ8J0AB0GAM', '3N1SFXK0023ABC', 'FC7303', 'pilot-7', '+52.0907+005.1214', '+60.1813+25.0086', 'drone-dji'];
/** exifr keys that would be telemetry or identity in a sanitized picture. */
const EXIFR_BAD = /GPS|Serial|Make|Model|Software|xmp|drone|Keywords|Creator|Owner|Artist|Copyright|Comment|Lens|Body|Camera|Latitude|Longitude|Altitude|Gimbal|Flight|Yaw|Pitch|Roll/i;
/** Box types that must not be in a sanitized video (metadata, vendor, user data, XMP, tracks of text/data). */
const VIDEO_BAD_BOXES = new Set(['udta', 'meta', 'ilst', 'keys', 'uuid', 'XMP_', 'loci', 'cprt', 'tref', 'gmhd', 'nmhd', 'sthd', 'tx3g', 'text', 'mebx', 'camm', 'gpmd', 'djmd', 'dbgi', 'covr', 'thmb', 'smta', 'meco', 'prfl']);

// ---------------------------------------------------------------------------------------------
// Worker: one input at a time through sanitizeFile, then the independent checks
// ---------------------------------------------------------------------------------------------

async function workerMain() {
  const { sanitizeFile } = await import(dist('sanitize/index.js'));
  const { walkCheckJpeg, walkCheckTiff, rawSearch } = await import(dist('sanitize/verify/image.js'));
  const { walkBoxes, allBoxes, BufferSource } = await import(dist('sanitize/video/boxes.js'));
  const { DEFAULT_NEEDLES } = await import(dist('sanitize/video/rules.js'));
  const exifr = (await import('exifr')).default;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-fuzz-w-'));
  const policy = { thermal: 'keep' };

  async function imageFindings(bytes, format) {
    const found = [];
    const walk = format === 'jpeg' ? walkCheckJpeg(bytes, policy) : walkCheckTiff(bytes);
    for (const f of walk.found) found.push(`${walk.tool}: ${f}`);
    for (const f of rawSearch(bytes, IMAGE_NEEDLES).found) found.push(`raw: ${f}`);
    let ex;
    try {
      ex = await exifr.parse(Buffer.from(bytes), { tiff: true, ifd0: true, ifd1: true, exif: true, gps: true, interop: true, xmp: true, iptc: true, icc: false, jfif: false, makerNote: true, userComment: true, multiSegment: true, mergeOutput: true });
    } catch (e) {
      // exifr refusing a file it cannot parse is not a finding (the walker has the say on structure).
      ex = undefined;
    }
    for (const k of Object.keys(ex ?? {})) if (EXIFR_BAD.test(k)) found.push(`exifr: ${k}`);
    return found;
  }

  async function videoFindings(bytes) {
    const found = [];
    let tree;
    try {
      tree = await walkBoxes(new BufferSource(bytes));
    } catch (e) {
      return [`box-walker: output does not parse: ${e?.message ?? e}`];
    }
    // ffmpeg's MP4 muxer always writes udta/meta{hdlr 'mdir' without a name, ilst with nothing
    // in it}: that exact empty form is not metadata. Checked here byte by byte, anything else is.
    const emptyUdta = (u) => {
      const meta = u.children ?? [];
      if (meta.length !== 1 || meta[0].type !== 'meta') return false;
      const kids = meta[0].children ?? [];
      const hdlr = kids.find((k) => k.type === 'hdlr');
      const ilst = kids.find((k) => k.type === 'ilst');
      if (kids.length !== 2 || !hdlr || !ilst || ilst.size !== 8) return false;
      const p = bytes.subarray(hdlr.offset + hdlr.headerSize, hdlr.offset + hdlr.size);
      return Buffer.from(p.subarray(8, 12)).toString('latin1') === 'mdir' && p.subarray(24).every((x) => x === 0);
    };
    const skip = new Set();
    for (const b of allBoxes(tree.boxes)) {
      if (b.type === 'udta' && emptyUdta(b)) for (const x of allBoxes([b])) skip.add(x);
    }
    for (const b of allBoxes(tree.boxes)) {
      if (skip.has(b)) continue;
      if (VIDEO_BAD_BOXES.has(b.type) || b.type.startsWith('\u00a9')) found.push(`box-walker: ${b.path} (${b.type})`);
    }
    // Outside mdat nothing may carry the known strings (mdat holds coded essence: random bytes).
    const meta = [];
    for (const b of tree.boxes) if (b.type !== 'mdat') meta.push(Buffer.from(bytes.subarray(b.offset, b.offset + b.size)));
    const nonEssence = Buffer.concat(meta);
    for (const f of rawSearch(nonEssence, [...VIDEO_NEEDLES, ...DEFAULT_NEEDLES]).found) found.push(`raw outside mdat: ${f}`);
    for (const f of rawSearch(bytes, ['FUZZSERIAL', 'SN=1SFOJ8J0AB0GAM']).found) found.push(`raw: ${f}`);
    let ex;
    try {
      ex = await exifr.parse(Buffer.from(bytes), { tiff: true, gps: true, xmp: true, iptc: true, makerNote: true, userComment: true, mergeOutput: true });
    } catch {
      ex = undefined;
    }
    for (const k of Object.keys(ex ?? {})) if (EXIFR_BAD.test(k)) found.push(`exifr: ${k}`);
    return found;
  }

  parentPort.on('message', async (job) => {
    const input = path.join(dir, `in-${job.kind}-${job.index}`);
    const output = path.join(dir, `out-${job.kind}-${job.index}`);
    let reply;
    try {
      await fsp.writeFile(input, job.bytes);
      let res;
      try {
        res = await sanitizeFile(input, output, policy);
      } catch (e) {
        const code = e && typeof e.code === 'string' && e.name === 'KluisError' ? e.code : null;
        if (code && code.startsWith('E_SANITIZE_')) {
          reply = { outcome: 'refused', code, message: String(e.message).slice(0, 500), leftOutput: existsSync(output) };
        } else {
          const cause = e?.cause ? ` (cause: ${e.cause?.stack ?? e.cause})` : '';
          reply = { outcome: 'finding', what: 'crash', detail: `${code ?? e?.name ?? 'Error'}: ${e?.message ?? e}${cause}`.slice(0, 4000) };
        }
      }
      if (!reply) {
        const bytes = await fsp.readFile(output);
        const found = res.format === 'jpeg' || res.format === 'tiff' || res.format === 'dng' ? await imageFindings(bytes, res.format === 'jpeg' ? 'jpeg' : 'tiff') : await videoFindings(bytes);
        reply = found.length ? { outcome: 'finding', what: 'telemetry', detail: found.join('; ').slice(0, 4000), format: res.format } : { outcome: 'clean', format: res.format };
      }
      if (reply.outcome === 'refused' && reply.leftOutput) reply = { outcome: 'finding', what: 'crash', detail: `refused with ${reply.code} but left an output file` };
    } catch (e) {
      reply = { outcome: 'finding', what: 'crash', detail: `script error: ${e?.stack ?? e}` };
    } finally {
      await fsp.rm(input, { force: true });
      await fsp.rm(output, { force: true });
    }
    parentPort.postMessage({ id: job.id, ...reply });
  });
  parentPort.postMessage({ ready: true });
}

// ---------------------------------------------------------------------------------------------
// Main: bases, deterministic mutations, the pool, the tally
// ---------------------------------------------------------------------------------------------

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function args(argv) {
  const o = { seed: 0x6b6c7569, jpeg: 4000, tiff: 3000, mp4: 3000, workers: 2, timeoutMs: 60_000, out: path.join(repo, 'test-results', 'fuzz'), only: null };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--seed') o.seed = Number(v), i++;
    else if (k === '--jpeg') o.jpeg = Number(v), i++;
    else if (k === '--tiff') o.tiff = Number(v), i++;
    else if (k === '--mp4') o.mp4 = Number(v), i++;
    else if (k === '--workers') o.workers = Number(v), i++;
    else if (k === '--timeout-ms') o.timeoutMs = Number(v), i++;
    else if (k === '--out') o.out = path.resolve(v), i++;
    else if (k === '--only') o.only = v, i++;
    else if (k === '--dist') i++;
    else throw new Error(`unknown option ${k}`);
  }
  return o;
}

// ---- JPEG mutations (segment-aware) ----

function jpegSegmentOffsets(buf, walkJpeg) {
  try {
    return walkJpeg(buf).segments.map((s) => s.offset);
  } catch {
    return [2];
  }
}

function mutateJpeg(src, r, walkJpeg) {
  const b = Buffer.from(src);
  const pick = (n) => Math.floor(r() * n);
  const offs = jpegSegmentOffsets(src, walkJpeg);
  switch (pick(8)) {
    case 0: {
      const n = 1 + pick(8);
      for (let k = n; k > 0; k--) {
        const i = pick(b.length);
        b[i] = b[i] ^ (1 << pick(8));
      }
      return { bytes: b, label: `${n} bit flip(s)` };
    }
    case 1: {
      const at = pick(b.length);
      return { bytes: b.subarray(0, at), label: `truncate at ${at}` };
    }
    case 2: {
      const o = offs[pick(offs.length)];
      if (o + 4 <= b.length) b.writeUInt16BE(r() < 0.5 ? pick(0x10000) : Math.max(0, b.readUInt16BE(o + 2) + pick(9) - 4), o + 2);
      return { bytes: b, label: `length of segment at ${o}` };
    }
    case 3: {
      const o = offs[pick(offs.length)];
      const marker = [0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe7, 0xed, 0xee, 0xfe, 0xdb, 0xc4, 0xdd, 0xe0, 0xeb][pick(14)];
      const plant = Buffer.from(PLANT);
      const body = [
        plant,
        Buffer.concat([Buffer.from('Exif\0\0'), Buffer.from('MM\0\x2a\0\0\0\x08\0\x01\x88\x25\0\x04\0\0\0\x01\0\0\0\x1a\0\0\0\0', 'latin1'), plant]),
        Buffer.concat([Buffer.from('http://ns.adobe.com/xap/1.0/\0'), Buffer.from(`<x:xmpmeta><drone-dji:GpsLatitude>52.09</drone-dji:GpsLatitude>${PLANT}</x:xmpmeta>`)]),
        Buffer.concat([Buffer.from([0xaa, 0x55, 0x12, 0x06]), Buffer.alloc(0x4fc), Buffer.from([0x55, 0xaa, 0x12, 0x06]), plant]),
        Buffer.concat([Buffer.from('ICC_PROFILE\0\x01\x01'), plant]),
      ][pick(5)];
      const seg = Buffer.concat([Buffer.from([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body]);
      return { bytes: Buffer.concat([b.subarray(0, o), seg, b.subarray(o)]), label: `insert FF${marker.toString(16)} (${body.length}) at ${o}` };
    }
    case 4: {
      const o = offs[pick(offs.length)];
      const l = o + 4 <= b.length ? b.readUInt16BE(o + 2) + 2 : 0;
      return { bytes: Buffer.concat([b.subarray(0, o + l), b.subarray(o, o + l), b.subarray(o + l)]), label: `duplicate segment at ${o}` };
    }
    case 5: {
      const o = offs[pick(offs.length)];
      if (o + 1 < b.length) b[o + 1] = pick(256);
      return { bytes: b, label: `marker byte at ${o + 1}` };
    }
    case 6:
      return { bytes: Buffer.concat([b, r() < 0.5 ? Buffer.from(PLANT) : b.subarray(0, Math.min(b.length, 4096))]), label: 'data after EOI' };
    default: {
      // noise inside one segment's payload (EXIF/XMP/ICC/thermal parsers)
      const o = offs[pick(offs.length)];
      const l = o + 4 <= b.length ? b.readUInt16BE(o + 2) : 0;
      const n = 1 + pick(16);
      for (let k = 0; k < n && l > 2; k++) {
        const i = o + 4 + pick(l - 2);
        if (i < b.length) b[i] = pick(256);
      }
      return { bytes: b, label: `${n} noise byte(s) in segment at ${o}` };
    }
  }
}

// ---- TIFF mutations (IFD-aware) ----

function mutateTiff(src, r) {
  const b = Buffer.from(src);
  const pick = (n) => Math.floor(r() * n);
  const le = b[0] === 0x49;
  const u16 = (o) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const w16 = (v, o) => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const w32 = (v, o) => (le ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o));
  const ifd0 = le ? b.readUInt32LE(4) : b.readUInt32BE(4);
  const n = ifd0 + 2 <= b.length ? u16(ifd0) : 0;
  const entryAt = () => ifd0 + 2 + pick(Math.max(1, n)) * 12;
  switch (pick(7)) {
    case 0: {
      const k = 1 + pick(8);
      for (let j = k; j > 0; j--) {
        const i = r() < 0.7 ? ifd0 + pick(2 + n * 12 + 4) : pick(b.length);
        if (i < b.length) b[i] = b[i] ^ (1 << pick(8));
      }
      return { bytes: b, label: `${k} bit flip(s)` };
    }
    case 1: {
      const at = pick(b.length);
      return { bytes: b.subarray(0, at), label: `truncate at ${at}` };
    }
    case 2: {
      const e = entryAt();
      if (e + 12 <= b.length) w32(r() < 0.5 ? pick(b.length * 2) : pick(0xffffffff), e + 8);
      return { bytes: b, label: `value/offset of entry at ${e}` };
    }
    case 3: {
      const e = entryAt();
      const tags = [256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 320, 330, 347, 700, 33723, 34665, 34853, 50706, 50712, 50735, 51008, 37500, 42033];
      if (e + 12 <= b.length) {
        if (r() < 0.5) w16(tags[pick(tags.length)], e);
        else w16(1 + pick(14), e + 2);
      }
      return { bytes: b, label: `relabel entry at ${e}` };
    }
    case 4: {
      const e = entryAt();
      if (e + 12 <= b.length) w32(pick(1 << 20), e + 4);
      return { bytes: b, label: `count of entry at ${e}` };
    }
    case 5: {
      // next-IFD pointer: a loop, past the end, or a planted second IFD holding a GPS pointer and text
      const at = ifd0 + 2 + n * 12;
      if (at + 4 > b.length) return { bytes: b, label: 'no next pointer' };
      const choice = pick(3);
      if (choice === 0) {
        w32(ifd0, at);
        return { bytes: b, label: 'next IFD points to IFD0 (loop)' };
      }
      if (choice === 1) {
        w32(b.length + pick(1000), at);
        return { bytes: b, label: 'next IFD past the end' };
      }
      const base = b.length + (b.length % 2);
      const text = Buffer.from(`${PLANT}\0`);
      const ifd = Buffer.alloc(2 + 2 * 12 + 4);
      const put16 = (v, o) => (le ? ifd.writeUInt16LE(v, o) : ifd.writeUInt16BE(v, o));
      const put32 = (v, o) => (le ? ifd.writeUInt32LE(v, o) : ifd.writeUInt32BE(v, o));
      put16(2, 0);
      put16(270, 2), put16(2, 4), put32(text.length, 6), put32(base + ifd.length, 10); // ImageDescription
      put16(34853, 14), put16(4, 16), put32(1, 18), put32(ifd0, 22); // GPSInfo pointing anywhere
      put32(0, 26);
      w32(base, at);
      return { bytes: Buffer.concat([b, Buffer.alloc(base - b.length), ifd, text]), label: 'planted IFD1 with text and GPS pointer' };
    }
    default: {
      const k = 1 + pick(32);
      for (let j = 0; j < k; j++) {
        const i = pick(b.length);
        b[i] = pick(256);
      }
      return { bytes: b, label: `${k} noise byte(s)` };
    }
  }
}

// ---- MP4 mutations (box-aware) ----

const JUNK_TYPES = ['udta', 'meta', 'trak', 'uuid', 'moov', 'stsd', '\u00a9xyz', 'free', 'mdat', 'ilst', 'keys', 'dref', 'XMP_', 'hdlr', 'elst', 'stco'];

function mutateMp4(base, r) {
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const nonMdat = base.boxes.filter((b) => b.type !== 'mdat');
  const kind = pick(['header-flip', 'size', 'truncate', 'junk', 'junk', 'noise', 'noise', 'swap']);
  const buf = Buffer.from(base.bytes);
  const box = pick(kind === 'truncate' ? base.boxes : nonMdat);
  switch (kind) {
    case 'header-flip': {
      const at = box.offset + Math.floor(r() * 8);
      buf[at] = (buf[at] ?? 0) ^ (1 << Math.floor(r() * 8));
      return { bytes: buf, label: `flip header byte ${at} of ${box.path}` };
    }
    case 'size': {
      const sizes = [0, 1, 7, 8, box.size - 1, box.size + 1, box.size * 2, 0xffffffff, Math.floor(r() * 0xffffffff)];
      const v = pick(sizes) >>> 0;
      buf.writeUInt32BE(v, box.offset);
      return { bytes: buf, label: `size of ${box.path} = ${v}` };
    }
    case 'truncate': {
      const at = Math.floor(r() * buf.length);
      return { bytes: buf.subarray(0, at), label: `truncate at ${at}` };
    }
    case 'junk': {
      const type = pick(JUNK_TYPES);
      const len = 8 + Math.floor(r() * 48);
      const junk = Buffer.alloc(len);
      for (let i = 8; i < len; i++) junk[i] = Math.floor(r() * 256);
      if (r() < 0.6) junk.write(('SN=1SFOJ8J0AB0GAM ' + PLANT).slice(0, Math.max(0, len - 8)), 8, 'latin1');
      junk.writeUInt32BE(len, 0);
      junk.write(type, 4, 'latin1');
      const at = box.offset + box.size;
      for (const a of base.boxes) {
        if (a.offset < box.offset && a.offset + a.size >= at && a.headerSize === 8 && a !== box && box.path.startsWith(`${a.path}/`)) buf.writeUInt32BE(a.size + len, a.offset);
      }
      // chunk offsets after the insertion point now point 'len' bytes early: left so on purpose
      return { bytes: Buffer.concat([buf.subarray(0, at), junk, buf.subarray(at)]), label: `junk ${JSON.stringify(type)} (${len}) after ${box.path}` };
    }
    case 'swap': {
      // rename a box to a metadata-looking type (same size): a disguised udta/meta/uuid
      const type = pick(['udta', 'meta', 'uuid', 'free', 'skip', 'wide', 'ilst', '\u00a9too', 'XMP_']);
      buf.write(type, box.offset + 4, 'latin1');
      return { bytes: buf, label: `${box.path} renamed ${JSON.stringify(type)}` };
    }
    default: {
      const n = 1 + Math.floor(r() * 8);
      for (let i = 0; i < n; i++) {
        const at = box.offset + Math.floor(r() * box.size);
        if (at < buf.length) buf[at] = Math.floor(r() * 256);
      }
      return { bytes: buf, label: `${n} noise byte(s) in ${box.path}` };
    }
  }
}

async function loadBases() {
  const { walkJpeg } = await import(dist('sanitize/jpeg/walker.js'));
  const { walkBoxes, allBoxes, BufferSource } = await import(dist('sanitize/video/boxes.js'));
  const fx = (...p) => path.join(repo, 'test', 'fixtures', ...p);
  const read = (f) => ({ name: path.basename(f), bytes: readFileSync(f) });
  const jpeg = [
    fx('generated', 'tagged.jpg'), fx('generated', 'after-eoi.jpg'), fx('generated', 'orient6.jpg'), fx('generated', 'icc.jpg'),
    fx('real', 'image', 'mavic3pro_xmp.jpg'), fx('real', 'image', 'mavic2pro_makernotes.jpg'), fx('real', 'image', 'gopro_hero6.jpg'),
    fx('real', 'image', 'flir_e40.jpg'), fx('real', 'image', 'teal2_boson_ir.jpg'), fx('real', 'image', 'skydio_x2_ir.jpg'),
  ].filter((f) => existsSync(f)).map(read);
  const tiff = [fx('generated', 'tagged.tiff'), fx('generated', 'tagged-dng.tiff'), fx('real', 'image', 'exiftool_dng_dummy.dng')].filter((f) => existsSync(f)).map(read);
  const mp4 = [];
  for (const f of [fx('generated-video', 'xmp-text-data.mp4'), fx('generated-video', 'cover-art.mp4'), fx('generated-video', 'keys-location.mov'), fx('real', 'video', 'dji-mini2_udta.mp4'), fx('real', 'video', 'DJI_20260315180109_0003_D.MP4')]) {
    const b = read(f);
    const tree = await walkBoxes(new BufferSource(b.bytes));
    mp4.push({ ...b, boxes: [...allBoxes(tree.boxes)] });
  }
  return { jpeg, tiff, mp4, walkJpeg };
}

/** The deterministic input stream of one kind: index i is the same on every run with this seed. */
function* inputs(kind, count, seed, bases) {
  const r = rng(seed ^ { jpeg: 0x0a11, tiff: 0x7111, mp4: 0x3b44 }[kind]);
  const list = bases[kind];
  for (let i = 0; i < count; i++) {
    const base = list[i % list.length];
    const m = kind === 'jpeg' ? mutateJpeg(base.bytes, r, bases.walkJpeg) : kind === 'tiff' ? mutateTiff(base.bytes, r) : mutateMp4(base, r);
    yield { kind, index: i, base: base.name, label: m.label, bytes: m.bytes };
  }
}

async function main() {
  const o = args(process.argv);
  if (!existsSync(path.join(distDir, 'sanitize', 'index.js'))) throw new Error(`no build in ${distDir}: run \`npm run build\` first`);
  const bases = await loadBases();
  mkdirSync(path.join(o.out, 'findings'), { recursive: true });
  const findingsLog = path.join(o.out, 'findings', 'findings.jsonl');
  rmSync(findingsLog, { force: true });
  // Refusals other than the common structural ones, to read through after a run.
  const rareLog = path.join(o.out, 'refusals.jsonl');
  rmSync(rareLog, { force: true });
  const COMMON = new Set(['E_SANITIZE_PARSE', 'E_SANITIZE_TRUNCATED', 'E_SANITIZE_BOX_SIZE', 'E_SANITIZE_BOX_TRUNCATED']);
  const rareKept = {};
  rmSync(path.join(o.out, 'refusals'), { recursive: true, force: true });
  mkdirSync(path.join(o.out, 'refusals'), { recursive: true });

  // Round-robin over the kinds so a partial run still covers all three.
  let counts = { jpeg: o.jpeg, tiff: o.tiff, mp4: o.mp4 };
  let onlyIndex = null;
  if (o.only) {
    const [k, i] = o.only.split(':');
    onlyIndex = { kind: k, index: Number(i) };
    counts = { jpeg: 0, tiff: 0, mp4: 0, [k]: Number(i) + 1 };
  }
  const streams = ['jpeg', 'tiff', 'mp4'].map((k) => inputs(k, counts[k], o.seed, bases));
  function* all() {
    let live = streams.slice();
    while (live.length) {
      const next = [];
      for (const s of live) {
        const v = s.next();
        if (!v.done) {
          next.push(s);
          if (!onlyIndex || (v.value.kind === onlyIndex.kind && v.value.index === onlyIndex.index)) yield v.value;
        }
      }
      live = next;
    }
  }
  const queue = all();

  const tally = {};
  for (const k of ['jpeg', 'tiff', 'mp4']) tally[k] = { inputs: 0, clean: 0, refused: 0, findings: 0, codes: {}, producedAs: {} };
  const findings = [];
  const started = Date.now();
  let done = 0;
  const total = onlyIndex ? 1 : o.jpeg + o.tiff + o.mp4;

  function record(job, res) {
    const t = tally[job.kind];
    t.inputs++;
    done++;
    if (res.outcome === 'refused') {
      t.refused++;
      t.codes[res.code] = (t.codes[res.code] ?? 0) + 1;
      if (!COMMON.has(res.code)) {
        appendFileSync(rareLog, `${JSON.stringify({ kind: job.kind, index: job.index, base: job.base, label: job.label, code: res.code, message: res.message })}\n`);
        // The first few inputs of each such code are kept, to look at.
        const key = `${job.kind}:${res.code}`;
        rareKept[key] = (rareKept[key] ?? 0) + 1;
        if (rareKept[key] <= 5) writeFileSync(path.join(o.out, 'refusals', `${job.kind}-${job.index}.bin`), job.bytes);
      }
    } else if (res.outcome === 'clean') {
      t.clean++;
      t.producedAs[res.format] = (t.producedAs[res.format] ?? 0) + 1;
    } else {
      t.findings++;
      const f = { kind: job.kind, index: job.index, seed: o.seed, base: job.base, label: job.label, what: res.what, detail: res.detail };
      findings.push(f);
      writeFileSync(path.join(o.out, 'findings', `${job.kind}-${job.index}.bin`), job.bytes);
      appendFileSync(findingsLog, `${JSON.stringify(f)}\n`);
      process.stderr.write(`FINDING ${f.what} ${f.kind}:${f.index} (${f.base}: ${f.label}): ${String(f.detail).slice(0, 300)}\n`);
    }
    if (done % 250 === 0 || done === total) {
      const s = (Date.now() - started) / 1000;
      process.stderr.write(`fuzz: ${done}/${total} in ${s.toFixed(0)} s (${findings.length} findings)\n`);
    }
  }

  let nextId = 1;
  function runWorker() {
    return new Promise((resolveSlot) => {
      let w;
      let current = null;
      let timer = null;
      const spawn = () => {
        w = new Worker(fileURLToPath(import.meta.url), { workerData: { worker: true, dist: distDir } });
        w.on('message', (m) => {
          if (m.ready) return feed();
          if (!current || m.id !== current.id) return;
          clearTimeout(timer);
          const job = current;
          current = null;
          record(job, m);
          feed();
        });
        w.on('error', (e) => {
          clearTimeout(timer);
          if (current) {
            const job = current;
            current = null;
            record(job, { outcome: 'finding', what: 'crash', detail: `worker died: ${e?.stack ?? e}` });
          }
          spawn();
        });
      };
      const feed = () => {
        const v = queue.next();
        if (v.done) {
          w.terminate().then(() => resolveSlot());
          return;
        }
        current = { ...v.value, id: nextId++ };
        const job = current;
        timer = setTimeout(() => {
          if (current !== job) return;
          current = null;
          record(job, { outcome: 'finding', what: 'hang', detail: `no answer within ${o.timeoutMs} ms` });
          w.removeAllListeners();
          w.terminate().finally(spawn);
        }, o.timeoutMs);
        w.postMessage({ id: job.id, kind: job.kind, index: job.index, bytes: job.bytes });
      };
      spawn();
    });
  }
  await Promise.all(Array.from({ length: Math.max(1, o.workers) }, runWorker));

  const seconds = (Date.now() - started) / 1000;
  const summary = {
    seed: `0x${o.seed.toString(16)}`,
    inputs: done,
    seconds: Math.round(seconds),
    workers: o.workers,
    timeoutMs: o.timeoutMs,
    perKind: tally,
    findings: findings.map(({ detail, ...f }) => ({ ...f, detail: String(detail).slice(0, 500) })),
  };
  writeFileSync(path.join(o.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.exitCode = findings.length ? 1 : 0;
}

if (isMainThread) {
  main().catch((e) => {
    process.stderr.write(`fuzz: ${e?.stack ?? e}\n`);
    process.exitCode = 2;
  });
} else if (workerData?.worker) {
  workerMain().catch((e) => {
    process.stderr.write(`fuzz worker: ${e?.stack ?? e}\n`);
    process.exit(3);
  });
}
