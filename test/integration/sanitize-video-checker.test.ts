/**
 * The output check must not be a parser's silence: here clean sanitized files get telemetry put
 * back in (the way drones and tools write it) and the box-walker check must name each one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sanitizeVideo } from '../../src/sanitize/video/index.js';
import { walkFile, FileSource, walkBoxes } from '../../src/sanitize/video/boxes.js';
import { checkOutputBoxes, type OutputExpectation } from '../../src/sanitize/video/rules-output.js';
import { exiftoolFindings } from '../../src/sanitize/video/exiftool.js';
import { REPO, generatedVideo, scratch } from './sanitize-video-helpers.js';

const tmp = scratch('video-checker');
afterAll(() => tmp.done());
const clean = path.join(tmp.dir, 'clean.mp4');
const EXPECT: OutputExpectation = { tracks: ['video', 'audio'], format: 'mp4', needles: ['3N1SFXK0023ABC'] };

async function findings(file: string, expect_: OutputExpectation = EXPECT): Promise<string[]> {
  const src = await FileSource.open(file);
  try {
    return await checkOutputBoxes(src, await walkBoxes(src), expect_);
  } finally {
    await src.close();
  }
}

async function patched(name: string, edit: (b: Buffer) => void): Promise<string> {
  const buf = await fsp.readFile(clean);
  edit(buf);
  const f = path.join(tmp.dir, name);
  await fsp.writeFile(f, buf);
  return f;
}

function replaceOnce(buf: Buffer, from: string, to: string): void {
  const at = buf.indexOf(Buffer.from(from, 'latin1'));
  expect(at).toBeGreaterThan(0);
  expect(to.length).toBe(from.length);
  buf.write(to, at, 'latin1');
}

beforeAll(async () => {
  await sanitizeVideo(generatedVideo('xmp-text-data.mp4'), clean, { thermal: 'keep' }, 'mp4');
});

describe('checkOutputBoxes names what was put back', () => {
  it('passes the clean output', async () => {
    expect(await findings(clean)).toEqual([]);
  });

  it('DJI udta atoms (serial, location)', async () => {
    const f = path.join(tmp.dir, 'udta.mp4');
    execFileSync('node', [path.join(REPO, 'scripts/make-samples-add-track.mjs'), clean, f, '--udta', '©csn=3N1SFXK0023ABC', '--udta', '©xyz=+52.0907+005.1214/']);
    const found = (await findings(f)).join('\n');
    expect(found).toMatch(/moov\/udta/);
    expect(found).toMatch(/3N1SFXK0023ABC/);
    expect(found).toMatch(/ISO 6709/);
  });

  it('a timed data track', async () => {
    const samples = path.join(tmp.dir, 'samples.txt');
    await fsp.writeFile(samples, 'lat=52.0907 lon=5.1214\n');
    const f = path.join(tmp.dir, 'track.mp4');
    execFileSync('node', [path.join(REPO, 'scripts/make-samples-add-track.mjs'), clean, f, '--track', `djmd:VideoHandler:${samples}`]);
    const found = (await findings(f)).join('\n');
    expect(found).toMatch(/expected 2 track\(s\), found 3/);
    expect(found).toMatch(/trak\[3\]/);
  });

  it('a uuid XMP box written by ExifTool', async () => {
    const f = path.join(tmp.dir, 'xmp.mp4');
    await fsp.copyFile(clean, f);
    execFileSync('exiftool', ['-q', '-overwrite_original', '-XMP-drone-dji:GpsLatitude=52.0907', f]);
    expect((await findings(f)).join('\n')).toMatch(/uuid be7acfcb-97a9-42e8-9c71-999491e3afac not on the allow-list/);
    expect((await exiftoolFindings(f, [])).join('\n')).toMatch(/XMP/);
  });

  it('a vendor handler name, a compressor name, a creation time', async () => {
    const hdlr = await patched('hdlr.mp4', (b) => replaceOnce(b, 'VideoHandler', 'DJI.AVC\0\0\0\0\0'));
    expect((await findings(hdlr)).join('\n')).toMatch(/handler name "DJI.AVC"/);

    const comp = await patched('comp.mp4', (b) => {
      const at = b.indexOf(Buffer.from('avc1', 'latin1'), b.indexOf(Buffer.from('stsd', 'latin1')));
      b.write('\x06FC7303', at + 4 + 42, 'latin1');
    });
    expect((await findings(comp)).join('\n')).toMatch(/compressor name "FC7303"/);

    const time = await patched('time.mp4', (b) => {
      const at = b.indexOf(Buffer.from('mvhd', 'latin1'));
      b.writeUInt32BE(0xe5c70f56, at + 8); // creation time 2026
    });
    expect((await findings(time)).join('\n')).toMatch(/moov\/mvhd: creation\/modification time/);
  });

  it('non-zero bytes in padding and stray bytes after a box', async () => {
    const buf = await fsp.readFile(clean);
    const free = Buffer.from([0, 0, 0, 12, ...Buffer.from('free'), 0x44, 0x4a, 0x49, 0]);
    const f = path.join(tmp.dir, 'free.mp4');
    await fsp.writeFile(f, Buffer.concat([buf, free]));
    const found = (await findings(f)).join('\n');
    expect(found).toMatch(/free padding that is not zero/);
    expect(found).toMatch(/contains "DJI"/);
  });

  it('a track of the wrong kind in place of the expected one', async () => {
    expect((await findings(clean, { ...EXPECT, tracks: ['audio', 'video'] })).length).toBeGreaterThan(0);
  });

  it('the walker itself sees every box of the clean output', async () => {
    const tree = await walkFile(clean);
    expect(tree.boxes.map((b) => b.type)).toEqual(expect.arrayContaining(['ftyp', 'moov', 'mdat']));
  });
});

describe('ExifTool on the first bytes of an output', () => {
  it('the truncation warning for exactly the bytes left out is expected; another count, or a tag put back, is a finding', async () => {
    const whole = await fsp.readFile(clean);
    const mdatPayloadStart = whole.indexOf(Buffer.from('mdat', 'latin1')) + 4;
    const n = mdatPayloadStart + 4096; // ftyp, moov and the first media bytes
    expect(n).toBeLessThan(whole.length - 4096);
    const prefix = path.join(tmp.dir, 'prefix.mp4');
    await fsp.writeFile(prefix, whole.subarray(0, n));
    expect(await exiftoolFindings(prefix, [], { missingBytes: whole.length - n, mdatPayloadStart })).toEqual([]);
    // Without the expectation, or with another count, the warning is reported.
    expect((await exiftoolFindings(prefix, [])).join('\n')).toMatch(/ExifTool:Warning: Unknown trailer with truncated 'mdat'/);
    expect((await exiftoolFindings(prefix, [], { missingBytes: whole.length - n + 1, mdatPayloadStart: mdatPayloadStart + 1 })).join('\n')).toMatch(/ExifTool:Warning/);
    // The first bytes of a file with XMP put back still show it.
    const xmp = path.join(tmp.dir, 'xmp-prefix-src.mp4');
    await fsp.copyFile(clean, xmp);
    execFileSync('exiftool', ['-q', '-overwrite_original', '-XMP-drone-dji:GpsLatitude=52.0907', xmp]);
    const x = await fsp.readFile(xmp);
    const xp = path.join(tmp.dir, 'xmp-prefix.mp4');
    const xStart = x.indexOf(Buffer.from('mdat', 'latin1')) + 4;
    const cut = xStart + 1024;
    await fsp.writeFile(xp, x.subarray(0, cut));
    expect((await exiftoolFindings(xp, [], { missingBytes: x.length - cut, mdatPayloadStart: xStart })).join('\n')).toMatch(/XMP/);
  });
});
