import { describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KluisError } from '../../src/errors.js';
import {
  BufferSource,
  FileSource,
  allBoxes,
  walkBoxes,
  walkFile,
  type ByteSource,
} from '../../src/sanitize/video/boxes.js';
import { handlerName, printableRuns } from '../../src/sanitize/video/box-text.js';
import { findingsIn } from '../../src/sanitize/video/exiftool.js';
import { sniffVideo } from '../../src/sanitize/video/index.js';
import { realVideo } from '../integration/sanitize-video-helpers.js';

function box(type: string, ...payload: Uint8Array[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KluisError);
    return (err as KluisError).code;
  }
  return 'no error';
}

const ftyp = box('ftyp', Buffer.from('isom\0\0\0\x01isom', 'latin1'));

describe('walkBoxes', () => {
  it('walks the real DJI Mini 2 file down to the vendor atoms and the sample entries', async () => {
    const tree = await walkFile(realVideo('dji-mini2_udta.mp4'));
    const paths = [...allBoxes(tree.boxes)].map((b) => b.path);
    expect(paths).toContain('moov/udta/©csn');
    expect(paths).toContain('moov/udta/©xyz');
    expect(paths).toContain('moov/udta/meta/ilst/©cmt');
    expect(paths).toContain('moov/trak[1]/mdia/minf/stbl/stsd/avc1/avcC');
    expect(paths.filter((p) => /^moov\/trak\[\d\]$/.test(p))).toHaveLength(3);
    const mdat = tree.boxes.find((b) => b.type === 'mdat');
    expect(mdat?.children).toBeUndefined();
  });

  it('reads QuickTime-style meta (no version field) and ISO meta (FullBox) alike', async () => {
    const hdlr = box('hdlr', Buffer.alloc(4), Buffer.from('\0\0\0\0mdta', 'latin1'), Buffer.alloc(13));
    const keys = box('keys', Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]));
    const qt = box('moov', box('meta', hdlr, keys));
    const iso = box('moov', box('meta', Buffer.alloc(4), hdlr, keys));
    for (const file of [qt, iso]) {
      const tree = await walkBoxes(new BufferSource(Buffer.concat([ftyp, file])));
      const types = [...allBoxes(tree.boxes)].map((b) => b.type);
      expect(types).toEqual(['ftyp', 'moov', 'meta', 'hdlr', 'keys']);
    }
  });

  it('indexes repeated siblings so every path names one box', async () => {
    const tree = await walkBoxes(new BufferSource(Buffer.concat([ftyp, box('moov', box('trak'), box('trak'), box('udta'))])));
    expect([...allBoxes(tree.boxes)].map((b) => b.path)).toEqual(['ftyp', 'moov', 'moov/trak[1]', 'moov/trak[2]', 'moov/udta']);
  });

  it('parses 64-bit sizes, size 0 at the top (to the end), and uuid extended types', async () => {
    const big = Buffer.alloc(16 + 10);
    big.writeUInt32BE(1, 0);
    big.write('mdat', 4, 'latin1');
    big.writeUInt32BE(0, 8);
    big.writeUInt32BE(26, 12);
    const uuid = box('uuid', Buffer.from('be7acfcb97a942e89c71999491e3afac', 'hex'), Buffer.from('<x:xmpmeta/>'));
    const tail = Buffer.from([0, 0, 0, 0, ...Buffer.from('free'), 1, 2, 3]);
    const tree = await walkBoxes(new BufferSource(Buffer.concat([ftyp, big, uuid, tail])));
    expect(tree.boxes.map((b) => [b.type, b.size, b.headerSize])).toEqual([
      ['ftyp', 20, 8],
      ['mdat', 26, 16],
      ['uuid', 8 + 16 + 12, 24],
      ['free', 11, 8],
    ]);
    expect(tree.boxes[2]?.uuid).toBe('be7acfcb-97a9-42e8-9c71-999491e3afac');
  });

  it('records stray bytes after the last child instead of skipping them silently', async () => {
    const tree = await walkBoxes(new BufferSource(Buffer.concat([ftyp, box('moov', box('udta', box('©xyz', Buffer.from('+1')), Buffer.from([0, 0, 0, 0])))])));
    const udta = [...allBoxes(tree.boxes)].find((b) => b.type === 'udta');
    expect(udta?.trailing?.length).toBe(4);
  });

  it('fails closed on malformed input with E_SANITIZE_* codes', async () => {
    const small = Buffer.concat([ftyp, Buffer.from([0, 0, 0, 4, ...Buffer.from('moov')])]);
    expect(await codeOf(walkBoxes(new BufferSource(small)))).toBe('E_SANITIZE_BOX_SIZE');
    const overParent = box('moov', Buffer.from([0, 0, 0, 99, ...Buffer.from('trak')]));
    expect(await codeOf(walkBoxes(new BufferSource(Buffer.concat([ftyp, overParent]))))).toBe('E_SANITIZE_BOX_SIZE');
    const cut = Buffer.concat([ftyp, box('mdat', Buffer.alloc(100))]).subarray(0, 60);
    expect(await codeOf(walkBoxes(new BufferSource(cut)))).toBe('E_SANITIZE_BOX_TRUNCATED');
    const tailJunk = Buffer.concat([ftyp, Buffer.from([1, 2, 3])]);
    expect(await codeOf(walkBoxes(new BufferSource(tailJunk)))).toBe('E_SANITIZE_BOX_TRUNCATED');
    const nestedZero = box('moov', Buffer.from([0, 0, 0, 0, ...Buffer.from('trak')]));
    expect(await codeOf(walkBoxes(new BufferSource(Buffer.concat([ftyp, nestedZero]))))).toBe('E_SANITIZE_BOX_SIZE');
    expect(await codeOf(walkBoxes(new BufferSource(Buffer.alloc(0))))).toBe('E_SANITIZE_EMPTY');
  });

  it('stops a nesting bomb and a box flood instead of recursing or looping', async () => {
    let nested = box('udta');
    for (let i = 0; i < 40; i++) nested = box('udta', nested);
    expect(await codeOf(walkBoxes(new BufferSource(Buffer.concat([ftyp, box('moov', nested)]))))).toBe('E_SANITIZE_BOX_DEPTH');
    const flood = box('moov', ...Array.from({ length: 200 }, () => box('free')));
    expect(await codeOf(walkBoxes(new BufferSource(Buffer.concat([ftyp, flood])), { maxBoxes: 100 }))).toBe('E_SANITIZE_BOX_COUNT');
  });

  it('reads only box headers of a 6 GB sparse file, never its mdat', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-boxes-'));
    try {
      const file = path.join(dir, 'big.mp4');
      const mdatSize = 6 * 1024 ** 3;
      const head = Buffer.alloc(16);
      head.writeUInt32BE(1, 0);
      head.write('mdat', 4, 'latin1');
      head.writeUInt32BE(Math.floor(mdatSize / 2 ** 32), 8);
      head.writeUInt32BE(mdatSize % 2 ** 32, 12);
      const moov = box('moov', box('mvhd', Buffer.alloc(100)));
      const fh = await fsp.open(file, 'w');
      await fh.write(ftyp, 0, ftyp.length, 0);
      await fh.write(head, 0, 16, ftyp.length);
      await fh.write(moov, 0, moov.length, ftyp.length + mdatSize);
      await fh.close();
      const real = await FileSource.open(file);
      let bytesRead = 0;
      const counting: ByteSource = {
        size: real.size,
        read: async (o, l) => {
          const r = await real.read(o, l);
          bytesRead += r.length;
          return r;
        },
      };
      try {
        const tree = await walkBoxes(counting);
        expect(tree.boxes.map((b) => [b.type, b.size])).toEqual([
          ['ftyp', 20],
          ['mdat', mdatSize],
          ['moov', moov.length],
        ]);
        expect(bytesRead).toBeLessThan(4096);
      } finally {
        await real.close();
      }
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('helpers of the rules', () => {
  it('reads handler names as C strings and as QuickTime Pascal strings', () => {
    const pre = Buffer.concat([Buffer.alloc(8), Buffer.from('vide'), Buffer.alloc(12)]);
    expect(handlerName(Buffer.concat([pre, Buffer.from('VideoHandler\0')]))).toEqual({ type: 'vide', name: 'VideoHandler' });
    expect(handlerName(Buffer.concat([pre, Buffer.from('\x08DJI meta')]))).toEqual({ type: 'vide', name: 'DJI meta' });
    expect(handlerName(Buffer.concat([pre, Buffer.from([0])]))).toEqual({ type: 'vide', name: '' });
  });

  it('finds ASCII and UTF-16 strings (DJI Xtra firmware strings are UTF-16)', () => {
    const b = Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from('SN=1SFOJ8J0AB0GAM'), Buffer.from([0]), Buffer.from('v01.43.0074', 'utf16le')]);
    expect(printableRuns(b)).toEqual(expect.arrayContaining(['SN=1SFOJ8J0AB0GAM', 'v01.43.0074']));
  });

  it('ExifTool rule: structural tags pass, identifying ones do not', () => {
    const clean = {
      SourceFile: '/x/DJI.mp4',
      'QuickTime:MajorBrand': 'isom',
      'QuickTime:CreateDate': '0000:00:00 00:00:00',
      'Track1:HandlerDescription': 'VideoHandler',
      'Track1:VendorID': 'FFMP',
      'Track2:SampleGroupDescription': '(Binary data 18 bytes)',
      'Track1:Unknown_edts': '(Binary data 28 bytes)',
    };
    expect(findingsIn(clean, ['1SFOJ8J0AB0GAM'])).toEqual([]);
    const dirty = {
      ...clean,
      'QuickTime:CreateDate': '2024:05:31 11:42:00',
      'UserData:GPSCoordinates': '60 25',
      'Track3:HandlerDescription': 'DJI meta',
      'XMP-drone-dji:GpsLatitude': 52,
      'Track1:Unknown_djmd': 'x',
      'QuickTime:Other': 'SN=1SFOJ8J0AB0GAM',
    };
    expect(findingsIn(dirty, ['1SFOJ8J0AB0GAM'])).toHaveLength(6);
  });
});

describe('sniffVideo', () => {
  it('tells MP4 from MOV by brand and rejects other files', async () => {
    const head = async (f: string) => (await fsp.readFile(realVideo(f))).subarray(0, 4096);
    expect(sniffVideo(await head('dji-mini2_udta.mp4'))).toBe('mp4');
    expect(sniffVideo(await head('DJI_20260315180109_0003_D.MP4'))).toBe('mov');
    expect(sniffVideo(await head('DJI_20250723102139_0001_D.MP4'))).toBe('mp4');
    expect(sniffVideo(Buffer.concat([box('wide'), box('mdat')]))).toBe('mov');
    expect(sniffVideo(Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0, 0, 0, 0, 0, 0, 0, 0]))).toBeNull();
    expect(sniffVideo(box('ftyp', Buffer.from('heic\0\0\0\0mif1heic')))).toBeNull();
    expect(sniffVideo(Buffer.alloc(0))).toBeNull();
  });
});
