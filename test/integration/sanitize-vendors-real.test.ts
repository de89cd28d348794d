/**
 * Vendor coverage on real files (issue 19): one round trip per file of test/fixtures/real that is
 * not DJI's older set, each through the public `sanitizeFile` only, so the test holds while the
 * sanitizers' internals change. Per file: the identifiers and telemetry it really carries are
 * first found in the input (so every case can fail), then must be gone from every byte of the
 * output and from ExifTool's full read; the essence is compared by ffmpeg runs of this test, not
 * the module's; thermal data is kept where policy says so. Files that must fail closed do, with
 * the structure named in the message and no output left. Where each file came from, its licence
 * and what it carries: test/fixtures/real/SOURCES.md. The vendor x model table that these cases
 * prove: docs/sanitize-policy.md, "Vendor coverage".
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { KluisError } from '../../src/errors.js';
import { sanitizeFile, sniffFile, type SanitizeResult } from '../../src/sanitize/index.js';

const REAL = path.resolve('test/fixtures/real');
const out = mkdtempSync(path.join(tmpdir(), 'kluis-vendors-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function exiftool(file: string): Record<string, unknown> {
  return JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', '-n', file], { maxBuffer: 256 << 20 }).toString())[0];
}

/** ffmpeg's first decoded picture, native pixel format, no autorotate (input named by its extension). */
function pixels(file: string): string {
  const raw = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-noautorotate', '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-'], { maxBuffer: 512 << 20 });
  return createHash('sha256').update(raw).digest('hex');
}

/** ffmpeg's own per-stream hash of the picture and sound packets. */
function streamhash(file: string): string[] {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:V', '-map', '0:a?', '-c', 'copy', '-f', 'streamhash', '-hash', 'sha256', '-'])
    .toString()
    .trim()
    .split('\n');
}

/** The APPn markers of a JPEG, in order (a small walker of its own, up to the first SOS). */
function appMarkers(bytes: Buffer): number[] {
  const found: number[] = [];
  let i = 2;
  while (i + 4 <= bytes.length && bytes[i] === 0xff && bytes[i + 1] !== 0xda) {
    const m = bytes[i + 1]!;
    if (m >= 0xe0 && m <= 0xef) found.push(m - 0xe0);
    i += 2 + bytes.readUInt16BE(i + 2);
  }
  return found;
}

/** ExifTool keys that a clean still must not have (groups and names). */
const FORBIDDEN_KEY = /GPS|Serial|SensorID|^IFD0:(Make|Model|Software|ImageDescription|Artist|Copyright)|XMP|FLIR|MakerNotes|MPF|IPTC|Photoshop|ExifIFD|IFD1|DJI-DBG|GoPro|InfiRay|UniqueID|UniqueCameraModel/i;

interface StillCase {
  file: string;
  vendor: string;
  /** Strings in the input (identifiers, telemetry, vendor namespaces) that must not survive. */
  gone: string[];
  /** ExifTool keys (group:name) the input has and the output must not. */
  keys: string[];
  /** APPn markers the output must still hold (thermal data under policy keep). */
  thermal?: number[];
  /** Classes that must appear in SanitizeResult.removed. */
  removed: string[];
}

const STILLS: StillCase[] = [
  {
    file: 'image/parrot_disco.jpg',
    vendor: 'Parrot Disco',
    gone: ['PI020656AA6F405528', '97832972651DE3EE5EE38C01757D43A3', '0F7CD4452C3F1ABD0E3C2305CB34B2D8', 'Disco_2021-09-25', 'xmlns:Camera', 'PARROT', 'Dragon 1.7.1'],
    keys: ['GPS:GPSLatitude', 'IFD0:CameraSerialNumber', 'IFD0:ImageDescription', 'XMP-Camera:Yaw'],
    removed: ['exif', 'vendor-xmp'],
  },
  {
    file: 'image/skydio2.jpg',
    vendor: 'Skydio 2',
    gone: ['S2.0F.B.0043BX', 'Skydio2-43bx', '60BB8B94681B42C5B5D4CC0638DCDD69', '73D0A8B6-1B6E-4956-AC50-B8F07158BB7D', 'drone-skydio', 'Skydio'],
    keys: ['GPS:GPSLatitude', 'ExifIFD:SerialNumber', 'XMP-drone-skydio:VehicleId', 'XMP-drone-skydio:CameraOrientationNEDYaw', 'Photoshop:PhotoshopThumbnail', 'IFD1:ThumbnailImage'],
    removed: ['exif', 'vendor-xmp', 'iptc'],
  },
  {
    file: 'image/skydio_x2_ir.jpg',
    vendor: 'Skydio X2 (infrared camera)',
    gone: ['E1.0J.A.00K7BK', 'SkydioX2-k7bk', '05D8F84A2E984643BF22CFE955F24E11', '982C81B3-5A10-4D42-95E8-BBF5372A7F26', 'drone-skydio', 'Skydio'],
    keys: ['GPS:GPSLatitude', 'ExifIFD:SerialNumber', 'XMP-drone-skydio:Latitude', 'XMP-drone-skydio:VehicleSpeedNEDX'],
    removed: ['exif', 'vendor-xmp'],
  },
  {
    file: 'image/teal2_boson_ir.jpg',
    vendor: 'Teal 2 (FLIR Boson 640 thermal camera)',
    gone: ['Teledyne FLIR', 'Boson 640', 'GStreamer', 'PlatformYaw', 'CameraPitch'],
    keys: ['GPS:GPSLatitude', 'XMP-exif:GPSLatitude', 'XMP-exif:PlatformYaw', 'IFD0:Model'],
    removed: ['exif', 'vendor-xmp'],
  },
  {
    file: 'image/dji_m3t_R.jpg',
    vendor: 'DJI Mavic 3 Thermal (M3T)',
    gone: ['5L4SK6A02AA064', 'Mini_640', 'DJI-DBG', '10.00.03.09'],
    keys: ['IFD0:Model', 'MPF0:NumberOfImages', 'IFD1:ThumbnailImage'],
    thermal: [3, 4, 5],
    removed: ['exif', 'serial', 'second-image'],
  },
  {
    file: 'image/dji_m3td_R.jpg',
    vendor: 'DJI Matrice 3TD (Dock 2)',
    gone: ['5L4HM3201AA083', 'HM-TM640-2020240229AACHEA1389239', 'EA1389239', 'HIDR', 'DJI M3TD', '09.02.00.82'],
    keys: ['IFD0:Model', 'ExifIFD:UniqueCameraModel'],
    thermal: [3, 4],
    removed: ['exif', 'serial', 'second-image', 'padding'],
  },
  {
    file: 'image/dji_m4t_R.jpg',
    vendor: 'DJI Matrice 4T',
    gone: ['8AVSM9112AA0QZ', 'DJI M4T', '10.00.08.09'],
    keys: ['IFD0:Model', 'ExifIFD:UniqueCameraModel'],
    thermal: [3, 4, 5],
    removed: ['exif', 'serial', 'second-image'],
  },
  {
    file: 'image/dji_h30t_R.jpg',
    vendor: 'DJI Zenmuse H30T',
    gone: ['7JBSL97100000H', 'G1280S_24D010SWR', 'DJI H30T', '00.08.24.08'],
    keys: ['IFD0:Model', 'ExifIFD:UniqueCameraModel'],
    thermal: [3, 4, 5],
    removed: ['exif', 'serial', 'second-image'],
  },
  {
    file: 'image/gopro_hero6.jpg',
    vendor: 'GoPro HERO6 Black',
    gone: ['C3221324657219', 'LAJ7061317601275', 'HERO6 Black', 'HD6.01.01.51.00', 'GOPR0482'],
    keys: ['GPS:GPSLatitude', 'ExifIFD:SerialNumber', 'GoPro:CameraSerialNumber', 'GoPro:MediaUniqueID'],
    removed: ['exif', 'other'],
  },
  {
    file: 'image/flir_e40.jpg',
    vendor: 'FLIR E40 (handheld)',
    gone: ['49033333', 'DFEFCF34DB66420630B77BD9250CD7F2', 'FLIR E40', 'Common_dll', 'FFF\0'],
    keys: ['FLIR:CameraSerialNumber', 'FLIR:RawThermalImage', 'ExifIFD:ImageUniqueID'],
    removed: ['exif', 'other'],
  },
  {
    file: 'image/infiray_p2_dummy.jpg',
    vendor: 'InfiRay P2 Pro (ExifTool test file, thermal data replaced by text)',
    gone: ['P200019B15656148', 'P2_B_V2.0_2080100019B15656148', 'infisense', 'IJPEG', '<dummy imaging data>', '2.07.01.00'],
    keys: ['InfiRay:IRSensorSerialNumber', 'InfiRay:IJPEGVersion', 'IFD0:Make', 'GPS:GPSLatitudeRef'],
    removed: ['exif', 'thermal', 'other'],
  },
];

describe.each(STILLS)('$vendor: $file', (c) => {
  const input = path.join(REAL, c.file);
  const output = path.join(out, path.basename(c.file));
  let res: SanitizeResult;

  test('the input carries what must go (the case can fail)', () => {
    const bytes = readFileSync(input);
    for (const s of c.gone) expect(bytes.includes(Buffer.from(s, 'latin1')), s).toBe(true);
    const tags = exiftool(input);
    for (const k of c.keys) expect(Object.keys(tags), k).toContain(k);
  });

  test('sanitizes with equal essence; the output holds none of it', async () => {
    res = await sanitizeFile(input, output, { thermal: 'keep' });
    expect(res.format).toBe(await sniffFile(input));
    for (const e of res.essence) expect(e.after, e.method).toBe(e.before);
    for (const k of res.checks) expect(k.found, k.tool).toEqual([]);
    const classes = new Set(res.removed.map((r) => r.what));
    for (const cls of c.removed) expect([...classes], cls).toContain(cls);
    expect(pixels(output)).toBe(pixels(input));

    const bytes = readFileSync(output);
    expect(res.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    for (const s of c.gone) {
      expect(bytes.includes(Buffer.from(s, 'latin1')), s).toBe(false);
      expect(bytes.includes(Buffer.from(s, 'utf16le')), `${s} (UTF-16)`).toBe(false);
    }
    const after = exiftool(output);
    expect(Object.keys(after).filter((k) => FORBIDDEN_KEY.test(k))).toEqual([]);
    for (const k of c.keys) expect(Object.keys(after), k).not.toContain(k);
  });

  test('thermal data is kept under policy keep (DJI layouts only) and gone under remove', async () => {
    const kept = appMarkers(readFileSync(output));
    for (const m of c.thermal ?? []) expect(kept, `APP${m}`).toContain(m);
    if (!c.thermal) {
      expect(kept.filter((m) => m >= 3 && m <= 5)).toEqual([]);
      return;
    }
    expect(res.kept.filter((k) => k.includes('/thermal')).length).toBe(c.thermal.length);
    const noThermal = path.join(out, `nothermal-${path.basename(c.file)}`);
    await sanitizeFile(input, noThermal, { thermal: 'remove' });
    expect(appMarkers(readFileSync(noThermal)).filter((m) => m >= 3 && m <= 5)).toEqual([]);
    expect(pixels(noThermal)).toBe(pixels(input));
  });
});

describe('DJI thermal: only the identifiers inside the kept thermal segments change', () => {
  /** The payloads of every segment with marker 0xFF m, concatenated. */
  const segments = (bytes: Buffer, m: number): Buffer => {
    const parts: Buffer[] = [];
    let i = 2;
    while (i + 4 <= bytes.length && bytes[i] === 0xff && bytes[i + 1] !== 0xda) {
      const len = bytes.readUInt16BE(i + 2);
      if (bytes[i + 1] === m) parts.push(bytes.subarray(i + 4, i + 2 + len));
      i += 2 + len;
    }
    return Buffer.concat(parts);
  };

  test.each(['dji_m3t_R.jpg', 'dji_m4t_R.jpg', 'dji_h30t_R.jpg'])('%s: APP3 (raw temperatures) and APP5 (calibration) byte for byte', async (name) => {
    const input = readFileSync(path.join(REAL, 'image', name));
    const output = readFileSync(path.join(out, name));
    for (const m of [0xe3, 0xe5]) {
      expect(segments(input, m).length).toBeGreaterThan(0);
      expect(segments(output, m).equals(segments(input, m))).toBe(true);
    }
  });

  test('H30T: APP4 differs from the input only in its 16-byte IDString at 0x85', () => {
    const a = segments(readFileSync(path.join(REAL, 'image', 'dji_h30t_R.jpg')), 0xe4);
    const b = segments(readFileSync(path.join(out, 'dji_h30t_R.jpg')), 0xe4);
    expect(b.length).toBe(a.length);
    const diff = [...a.keys()].filter((i) => a[i] !== b[i]);
    expect(diff.length).toBeGreaterThan(0);
    expect(diff.every((i) => i >= 0x85 && i < 0x95)).toBe(true);
    expect(b.subarray(0x85, 0x95).equals(Buffer.alloc(16))).toBe(true);
  });

  test('M3TD: the typed "HIDR" APP5 (holds the core serial) is removed, the APP3/APP4 thermal data kept', async () => {
    const res = await sanitizeFile(path.join(REAL, 'image', 'dji_m3td_R.jpg'), path.join(out, 'm3td-again.jpg'), { thermal: 'keep' });
    expect(res.removed.some((r) => r.where === 'APP5')).toBe(true);
    expect(res.kept.filter((k) => k.includes('/thermal'))).toEqual([
      'APP3/thermal (radiometric data, policy thermal=keep)',
      'APP4/thermal (radiometric data, policy thermal=keep)',
    ]);
  });
});

describe('DNG (real): Magic Lantern raw from a Canon EOS 550D', () => {
  const input = path.join(REAL, 'raw', 'magiclantern_550d.dng');
  const output = path.join(out, 'magiclantern_550d.dng');
  /** Decoding tags whose values must come through unchanged. */
  const DECODING = ['CFAPattern2', 'CFARepeatPatternDim', 'BlackLevel', 'WhiteLevel', 'ColorMatrix1', 'AsShotNeutral', 'AnalogBalance', 'ActiveArea', 'DefaultCropOrigin', 'DefaultCropSize', 'DNGVersion', 'BitsPerSample', 'ImageWidth', 'ImageHeight'];

  test('the input carries what must go', () => {
    const bytes = readFileSync(input);
    for (const s of ['Magic Lantern', 'Canon EOS Kiss X4']) expect(bytes.includes(Buffer.from(s)), s).toBe(true);
    expect(Object.keys(exiftool(input))).toEqual(expect.arrayContaining(['IFD0:Make', 'IFD0:Software', 'IFD0:UniqueCameraModel', 'ExifIFD:ExifVersion']));
  });

  test('is sanitized as DNG: image data and decoding tags kept, everything else gone, same proofs as TIFF', async () => {
    const res = await sanitizeFile(input, output, { thermal: 'keep' });
    expect(res.format).toBe('dng');
    // Ingest proves the coded bytes (no decode); the pixels are compared by this test's own ffmpeg runs below.
    expect(res.essence.map((e) => e.method.split(' ')[0])).toEqual(['tiff-image-data-and-decoding-tags-sha256']);
    for (const e of res.essence) expect(e.after).toBe(e.before);
    expect(res.checks.map((k) => k.tool).sort()).toEqual(['byte-search', 'exifr', 'exiftool', 'ifd-walker']);
    for (const k of res.checks) expect(k.found, k.tool).toEqual([]);
    expect(new Set(res.removed.map((r) => r.what))).toEqual(new Set(['make-model', 'firmware', 'other']));

    const bytes = readFileSync(output);
    for (const s of ['Magic Lantern', 'Canon EOS Kiss X4', 'Canon']) expect(bytes.includes(Buffer.from(s)), s).toBe(false);
    const before = exiftool(input);
    const after = exiftool(output);
    for (const t of DECODING) expect(after[`IFD0:${t}`], t).toEqual(before[`IFD0:${t}`]);
    expect(Object.keys(after).filter((k) => /^(IFD0|ExifIFD|SubIFD\d*):(.*Make|.*Model|Software|Artist|Copyright|ModifyDate|ExifVersion)$|^ExifIFD:/.test(k))).toEqual([]);
    // The raw CFA samples, decoded by ffmpeg in this test (not by the module's run).
    expect(pixels(output)).toBe(pixels(input));
  });
});

describe('GoPro Karma (drone) video: GPMF gpmd track, timecode, udta', () => {
  const input = path.join(REAL, 'video', 'gopro_karma.mp4');
  const output = path.join(out, 'gopro_karma.mp4');
  const GONE = ['GoPro Karma v1.0', 'Local Position NED', 'GPS RAW', 'HD5.02.02.00.00', 'LAE6101112400243', 'GoPro MET', 'GoPro SOS', 'GoPro AVC', 'GoPro TCD'];

  test('the input carries what must go', () => {
    const bytes = readFileSync(input);
    for (const s of GONE) expect(bytes.includes(Buffer.from(s)), s).toBe(true);
    const tags = exiftool(input);
    expect(Object.keys(tags).some((k) => k.startsWith('Track4:GPS'))).toBe(true);
  });

  test('only picture and sound remain, bit-exact, and no reader finds telemetry', async () => {
    const res = await sanitizeFile(input, output, { thermal: 'keep' });
    expect(res.format).toBe('mp4');
    expect(res.essence).toHaveLength(2);
    for (const e of res.essence) expect(e.after).toBe(e.before);
    for (const k of res.checks) expect(k.found, k.tool).toEqual([]);
    const removed = res.removed.map((r) => `${r.what} ${r.where}`);
    expect(removed.some((r) => r.startsWith('timed-metadata') && r.includes('gpmd'))).toBe(true);
    expect(removed.some((r) => r.startsWith('firmware') && r.includes('FIRM'))).toBe(true);

    const bytes = readFileSync(output);
    for (const s of GONE) expect(bytes.includes(Buffer.from(s)), s).toBe(false);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-of', 'json', '-show_streams', output]).toString()) as { streams: Array<{ codec_type: string }> };
    expect(probe.streams.map((s) => s.codec_type)).toEqual(['video', 'audio']);
    const after = exiftool(output);
    expect(Object.keys(after).filter((k) => /GPS|Serial|Firmware|UserData|GoPro|Track[3-9]/.test(k))).toEqual([]);
    expect(streamhash(output)).toEqual(streamhash(input));
  });
});

describe('real files that must fail closed, naming the structure', () => {
  async function refusal(name: string, policy: 'keep' | 'remove'): Promise<KluisError> {
    const dir = mkdtempSync(path.join(out, 'refused-'));
    const err = await sanitizeFile(path.join(REAL, 'refused', name), path.join(dir, name), { thermal: policy }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KluisError);
    expect(readdirSync(dir)).toEqual([]);
    expect((err as KluisError).hint ?? '').not.toBe('');
    return err as KluisError;
  }

  test('ExifTool DNG.dng: its raw tile holds "<Dummy raw image data>", refused with the tile and the reason', async () => {
    const e = await refusal('exiftool_dng_dummy.dng', 'keep');
    expect(e.code).toBe('E_SANITIZE_PARSE');
    expect(e.message).toContain('IFD0/SubIFD0');
    expect(e.message).toContain('tile 0');
    expect(e.message).toContain('no SOI');
  });

  test('no output file name is left behind anywhere', () => {
    expect(existsSync(path.join(out, 'exiftool_dng_dummy.dng'))).toBe(false);
  });
});

describe('thermal segments of a maker without a known DJI parameter block are removed, not kept', () => {
  test('InfiRay: APP3/APP4/APP5 are listed as removed thermal data even under thermal=keep', async () => {
    const res = await sanitizeFile(path.join(REAL, 'image', 'infiray_p2_dummy.jpg'), path.join(out, 'infiray-again.jpg'), { thermal: 'keep' });
    expect(res.removed.filter((r) => r.what === 'thermal').map((r) => r.where.slice(0, 4))).toEqual(['APP3', 'APP4', 'APP5']);
    expect(res.kept.filter((k) => k.includes('thermal'))).toEqual([]);
  });
});
