/**
 * decodeFully (`kluis verify --deep`): a picture decodes in full to the pixels decodedPixelSha256
 * gives; a JPEG whose scan stops half-way is E_DECODE_FAILED (a full decode notices what ffmpeg
 * would otherwise conceal); a TIFF ffmpeg cannot read is E_DECODE_UNSUPPORTED, not "broken"; a
 * video decodes in full, and one cut short is E_DECODE_FAILED.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { decodeFully } from '../../src/sanitize/index.js';
import { M, walkJpeg } from '../../src/sanitize/jpeg/walker.js';
import { decodedPixelSha256 } from '../../src/sanitize/verify/tools.js';

const REAL = path.resolve('test/fixtures/real');
const GEN = path.resolve('test/fixtures/generated');
const dir = mkdtempSync(path.join(tmpdir(), 'kluis-decode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('decodeFully', () => {
  test('a real JPEG and a TIFF: decoded in full, to the decoded-pixels-sha256 value', async () => {
    for (const f of [path.join(REAL, 'image', 'DJI_H20T.jpg'), path.join(REAL, 'image', 'xt2_radiometric.tiff')]) {
      const r = await decodeFully(f);
      expect(r.pixelsSha256, f).toBe((await decodedPixelSha256(f)).sha256);
    }
  });

  test('a JPEG whose scan stops half-way is E_DECODE_FAILED', async () => {
    const good = readFileSync(path.join(GEN, 'base.jpg'));
    const sos = walkJpeg(good).segments.find((s) => s.marker === M.SOS)!;
    const cut = Buffer.concat([good.subarray(0, sos.payloadEnd + Math.floor((sos.end - sos.payloadEnd) / 2)), Buffer.from([0xff, 0xd9])]);
    const f = path.join(dir, 'cut.jpg');
    writeFileSync(f, cut);
    await expect(decodeFully(f)).rejects.toMatchObject({ code: 'E_DECODE_FAILED' });
  });

  test('a TIFF ffmpeg cannot read is E_DECODE_UNSUPPORTED', async () => {
    const f = path.join(dir, 'odd.tiff');
    writeFileSync(f, Buffer.concat([Buffer.from('II*\0\x08\0\0\0', 'latin1'), Buffer.alloc(64)]));
    await expect(decodeFully(f)).rejects.toMatchObject({ code: 'E_DECODE_UNSUPPORTED' });
  });

  test('a video decodes in full; cut short it is E_DECODE_FAILED', async () => {
    const f = path.join(dir, 'clip.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-movflags', '+faststart', f]);
    expect((await decodeFully(f)).how).toMatch(/every video and audio stream/);
    const bytes = readFileSync(f);
    const cut = path.join(dir, 'cut.mp4');
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await expect(decodeFully(cut)).rejects.toMatchObject({ code: 'E_DECODE_FAILED' });
  });
});
