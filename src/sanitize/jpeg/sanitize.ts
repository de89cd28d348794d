/**
 * JPEG sanitizer (allow-list). Promises: the output holds SOI, the structures needed to decode the
 * picture (DQT, DHT, DAC, SOFn, DRI, DNL, SOS with its entropy-coded data, copied byte for byte),
 * a JFIF header rewritten without thumbnail, an Adobe APP14 rewritten from its five fields, an
 * ICC profile when it holds only colour tags, thermal APP3/4/5 under policy thermal=keep when the
 * file has a DJI thermal parameter block kluis knows (with the DJI device identifiers blanked), a
 * freshly written EXIF carrying only Orientation when it is not 1, and EOI. Everything else is dropped and listed. It never copies an EXIF, XMP, IPTC, comment,
 * MPF or vendor segment, and never keeps a byte after the first EOI.
 */
import { createHash } from 'node:crypto';
import { KluisError } from '../../errors.js';
import type { RemovedItem, SanitizePolicy } from '../types.js';
import { isAdobeHeader, isJfifHeader } from './decoder-segments.js';
import { minimalOrientationApp1, isExifPayload, readOrientation } from './exif-orientation.js';
import { isIccChunk, judgeIcc, reassembleIcc } from './icc.js';
import { hasAsciiIdentifier, knownThermalParams, scrubThermalApp4, textLikeRuns } from './thermal.js';
import { M, SOF_MARKERS, markerName, payload, startsWithAscii, walkJpeg, type JpegSegment } from './walker.js';

export interface JpegSanitizeOutput {
  bytes: Uint8Array;
  removed: RemovedItem[];
  kept: string[];
  orientation: number | undefined;
  /** Identifier strings seen in the input (blanked in kept segments, or read from removed DJI-DBG): the residue check searches the output for them. */
  blankedStrings: string[];
}

const DECODE_MARKERS = new Set<number>([M.DQT, M.DHT, M.DAC, M.DRI, M.DNL, M.SOS, ...SOF_MARKERS]);

function classifyRemoved(buf: Uint8Array, s: JpegSegment): { what: string; label: string } {
  const p = payload(buf, s);
  const m = s.marker;
  if (m === M.COM) return { what: 'comment', label: 'COM' };
  if (m === M.APP1) {
    if (isExifPayload(p)) return { what: 'exif', label: 'APP1/Exif (IFD0, ExifIFD, GPS, MakerNotes, IFD1 thumbnail)' };
    if (startsWithAscii(p, 'http://ns.adobe.com/xap/1.0/\0')) return { what: 'vendor-xmp', label: 'APP1/XMP' };
    if (startsWithAscii(p, 'http://ns.adobe.com/xmp/extension/\0')) return { what: 'vendor-xmp', label: 'APP1/ExtendedXMP' };
    if (startsWithAscii(p, 'FLIR\0')) return { what: 'other', label: 'APP1/FLIR record' };
    return { what: 'other', label: 'APP1' };
  }
  if (m === M.APP2) {
    if (startsWithAscii(p, 'MPF\0')) return { what: 'other', label: 'APP2/MPF' };
    if (isIccChunk(p)) return { what: 'other', label: 'APP2/ICC_PROFILE' };
    return { what: 'other', label: 'APP2' };
  }
  if (m === 0xed) return { what: 'iptc', label: 'APP13/Photoshop-IPTC' };
  if (m === 0xe7 && startsWithAscii(p, 'DJI-DBG\0')) return { what: 'serial', label: 'APP7/DJI-DBG' };
  if (startsWithAscii(p, 'PADDING\0') || p.every((b) => b === 0)) return { what: 'padding', label: `${markerName(m)}/padding` };
  if (m === M.APP0) {
    if (startsWithAscii(p, 'JFIF\0')) return { what: 'thumbnail', label: 'APP0/JFIF extra bytes' };
    if (startsWithAscii(p, 'JFXX\0')) return { what: 'thumbnail', label: 'APP0/JFXX thumbnail' };
  }
  return { what: 'other', label: markerName(m) };
}

function segmentBytes(marker: number, body: Uint8Array): Uint8Array {
  const len = body.length + 2;
  if (len > 0xffff) throw new KluisError('E_INTERNAL', 'segment too large to write');
  const out = new Uint8Array(len + 2);
  out[0] = 0xff;
  out[1] = marker;
  out[2] = len >> 8;
  out[3] = len & 0xff;
  out.set(body, 4);
  return out;
}

function refuse(message: string): KluisError {
  return new KluisError('E_SANITIZE_PARSE', `JPEG: ${message}`, {
    hint: 'kluis cannot account for this structure, so the file is withheld (fail closed)',
  });
}

/** `alloc` makes the output buffer (it need not be zero-filled: every byte of it is set). */
export function sanitizeJpegBytes(buf: Uint8Array, policy: SanitizePolicy, alloc: (size: number) => Buffer = Buffer.allocUnsafe): JpegSanitizeOutput {
  const layout = walkJpeg(buf);
  // Untyped APP3/4/5 are radiometric data only beside a DJI thermal parameter block kluis knows;
  // in any other file they are another maker's structures, which the allow-list does not keep.
  const knownThermal = layout.segments.some((s) => s.marker === M.APP4 && knownThermalParams(payload(buf, s)) !== undefined);
  const removed: RemovedItem[] = [];
  const kept: string[] = [];
  const blankedStrings: string[] = [];
  const out: Uint8Array[] = [Uint8Array.from([0xff, M.SOI])];

  let orientation: number | undefined;
  let jfif: Uint8Array | undefined;
  const iccSegs: JpegSegment[] = [];
  const thermalDecision = new Map<number, 'keep' | 'drop'>();
  const body: Uint8Array[] = [];
  let iccInsertAt = -1;

  for (const s of layout.segments) {
    const p = payload(buf, s);
    const m = s.marker;
    if (DECODE_MARKERS.has(m)) {
      const bytes = buf.subarray(s.offset, s.end);
      body.push(bytes);
      continue;
    }
    if (m === M.APP0 && isJfifHeader(p) && jfif === undefined) {
      // version(2) units(1) Xdensity(2) Ydensity(2), thumbnail 0x0: written by us, not copied.
      jfif = segmentBytes(M.APP0, Uint8Array.from([...p.subarray(0, 12), 0, 0]));
      kept.push('APP0/JFIF header (no thumbnail)');
      if (p.length > 14) removed.push({ where: 'APP0/JFIF thumbnail', what: 'thumbnail', bytes: p.length - 14 });
      continue;
    }
    if (m === M.APP1 && isExifPayload(p) && orientation === undefined) {
      orientation = readOrientation(p);
    }
    if (m === M.APP14 && isAdobeHeader(p)) {
      body.push(segmentBytes(M.APP14, p.subarray(0, 12)));
      kept.push(`APP14/Adobe (colour transform ${p[11]})`);
      if (p.length > 12) removed.push({ where: 'APP14/Adobe extra bytes', what: 'other', bytes: p.length - 12 });
      continue;
    }
    if (m === M.APP2 && isIccChunk(p)) {
      iccSegs.push(s);
      if (iccInsertAt < 0) iccInsertAt = body.length;
      continue;
    }
    if (m === M.APP3 || m === M.APP4 || m === M.APP5) {
      const typed = hasAsciiIdentifier(p);
      if (policy.thermal === 'keep' && !typed && !knownThermal) {
        removed.push({ where: `${markerName(m)}/thermal-like data without a known thermal parameter block`, what: 'thermal', bytes: s.end - s.offset });
        continue;
      }
      if (policy.thermal === 'keep' && !typed) {
        const prev = thermalDecision.get(m);
        if (prev === 'drop') throw refuse(`${markerName(m)} mixes thermal data with typed vendor segments`);
        thermalDecision.set(m, 'keep');
        const checkText = (data: Uint8Array): void => {
          const t = textLikeRuns(data);
          if (t.length) {
            throw new KluisError('E_SANITIZE_RESIDUE', `JPEG: ${markerName(m)} thermal segment at byte ${s.offset} holds text ("${t[0]!.text.slice(0, 40)}")`, {
              hint: 'thermal data is kept as it is, so text inside it cannot be removed safely; the file is withheld. Sanitize with policy thermal=remove to keep the picture without thermal data.',
            });
          }
        };
        if (m === M.APP4) {
          const r = scrubThermalApp4(p);
          if (r.kind === 'refuse') throw refuse(r.reason);
          checkText(r.kind === 'scrubbed' ? r.payload : p);
          if (r.kind === 'scrubbed') {
            body.push(segmentBytes(m, r.payload));
            for (const b of r.blanked) {
              blankedStrings.push(b.text);
              removed.push({ where: `APP4/DJI thermal ${b.field} +0x${b.offset.toString(16)}`, what: 'serial', bytes: b.text.length });
            }
            continue;
          }
        }
        checkText(p);
        body.push(buf.subarray(s.offset, s.end));
        continue;
      }
      if (policy.thermal === 'keep' && typed) {
        if (thermalDecision.get(m) === 'keep') throw refuse(`${markerName(m)} mixes thermal data with typed vendor segments`);
        thermalDecision.set(m, 'drop');
      }
      removed.push({ where: `${markerName(m)}${typed ? '' : '/thermal'}`, what: typed ? 'other' : 'thermal', bytes: s.end - s.offset });
      continue;
    }
    if (m === 0xe7 && startsWithAscii(p, 'DJI-DBG\0')) {
      // "[sensor_id:4X9SJBK02AA04M]…": remember the values so the output can be searched for them.
      for (const hit of Buffer.from(p).toString('latin1').matchAll(/\[([A-Za-z_]+):([\x21-\x5a\x5c\x5e-\x7e]{4,64})\]/g)) {
        if (hit[2]) blankedStrings.push(hit[2]);
      }
    }
    const c = classifyRemoved(buf, s);
    removed.push({ where: c.label, what: c.what, bytes: s.end - s.offset });
  }

  if (iccSegs.length) {
    const profile = reassembleIcc(iccSegs.map((s) => payload(buf, s)));
    const verdict = profile ? judgeIcc(profile) : { ok: false, note: 'chunks inconsistent', tags: [] };
    const bytes = iccSegs.reduce((a, s) => a + (s.end - s.offset), 0);
    if (verdict.ok) {
      body.splice(iccInsertAt, 0, ...iccSegs.map((s) => buf.subarray(s.offset, s.end)));
      kept.push(`APP2/ICC_PROFILE "${verdict.note}" (${verdict.tags.join(',')})`);
    } else {
      removed.push({ where: `APP2/ICC_PROFILE (${verdict.note})`, what: 'other', bytes });
    }
  }
  for (const [m, d] of thermalDecision) if (d === 'keep') kept.push(`${markerName(m)}/thermal (radiometric data, policy thermal=keep)`);

  if (jfif) out.push(jfif);
  if (orientation !== undefined && orientation !== 1) {
    out.push(minimalOrientationApp1(orientation));
    kept.push(`APP1/Exif Orientation=${orientation} (written by kluis, not copied)`);
  }
  out.push(...body, Uint8Array.from([0xff, M.EOI]));
  if (layout.trailing > 0) removed.push({ where: 'after EOI', what: 'second-image', bytes: layout.trailing });

  const total = out.reduce((a, b) => a + b.length, 0);
  // Not zero-filled: every byte is set below. (A fresh zeroed array of a photo's size costs more
  // than the copy itself.)
  const bytes = alloc(total);
  let o = 0;
  for (const b of out) {
    bytes.set(b, o);
    o += b.length;
  }
  return { bytes, removed, kept, orientation, blankedStrings };
}

/**
 * SHA-256 over every scan (SOS segment + entropy-coded data) of a JPEG, in order: the essence
 * method `jpeg-scan-sha256` that kluis recorded before `jpeg-decoder-segments-sha256` replaced it
 * (kept so that manifests written then still verify).
 */
export function jpegScanSha256(buf: Uint8Array): string {
  const layout = walkJpeg(buf);
  const h = createHash('sha256');
  for (const s of layout.segments) if (s.marker === M.SOS) h.update(buf.subarray(s.offset, s.end));
  return h.digest('hex');
}
