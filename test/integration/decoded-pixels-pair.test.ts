/**
 * The JPEG sanitizer hashes the decoded pixels of input and output with one ffmpeg start-up
 * (decodedPixelSha256Pair). That is allowed only because it gives the very values
 * decodedPixelSha256 gives (the values `kluis verify` recomputes from a stored file): checked here
 * on every real and generated fixture image, as card file and as sanitized output, with the
 * one-ffmpeg run on its own (no fallback hiding a difference).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sanitizeJpegBytes } from '../../src/sanitize/jpeg/sanitize.js';
import { decodedPixelSha256, decodedPixelSha256Pair, pairRun, type PixelHash } from '../../src/sanitize/verify/tools.js';

const root = path.resolve(__dirname, '..', '..');
const fixtures = [
  ...readdirSync(path.join(root, 'test/fixtures/real/image')).map((f) => path.join(root, 'test/fixtures/real/image', f)),
  ...readdirSync(path.join(root, 'test/fixtures/generated')).filter((f) => /\.(jpg|tiff)$/.test(f)).map((f) => path.join(root, 'test/fixtures/generated', f)),
];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kluis-pixpair-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function single(f: string): Promise<PixelHash | string> {
  try {
    return await decodedPixelSha256(f);
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  }
}

describe('decoded pixels of two files in one ffmpeg', () => {
  it('equals decodedPixelSha256 on every real fixture image, paired with every other', async () => {
    const real = fixtures.filter((f) => f.includes('/real/'));
    expect(real.length).toBeGreaterThanOrEqual(9);
    const want = new Map<string, PixelHash | string>();
    for (const f of fixtures) want.set(f, await single(f));
    const decodable = real.filter((f) => typeof want.get(f) !== 'string');
    expect(decodable.length).toBeGreaterThanOrEqual(8);
    for (let i = 0; i < decodable.length; i++) {
      const a = decodable[i]!;
      const b = decodable[(i + 1) % decodable.length]!;
      expect(await pairRun(a, b)).toEqual([want.get(a), want.get(b)]);
      expect(await pairRun(a, a)).toEqual([want.get(a), want.get(a)]);
    }
  });

  it('equals decodedPixelSha256 on each JPEG fixture and its sanitized output', async () => {
    let n = 0;
    for (const f of fixtures.filter((x) => /\.jpe?g$/i.test(x))) {
      let out;
      try {
        out = sanitizeJpegBytes(readFileSync(f), { thermal: 'keep' });
      } catch {
        try {
          out = sanitizeJpegBytes(readFileSync(f), { thermal: 'remove' });
        } catch {
          continue; // refused by the sanitizer: never reaches the pixel proof
        }
      }
      const o = path.join(tmp, `${path.basename(f)}.out.jpg`);
      writeFileSync(o, out.bytes);
      const [wa, wo] = [await single(f), await single(o)];
      if (typeof wa === 'string' || typeof wo === 'string') {
        await expect(decodedPixelSha256Pair(f, o)).rejects.toMatchObject({ code: 'E_SANITIZE_TOOL' });
        continue;
      }
      expect(await pairRun(f, o)).toEqual([wa, wo]);
      expect(await decodedPixelSha256Pair(f, o)).toEqual([wa, wo]);
      expect(wa.sha256).toBe(wo.sha256);
      n++;
    }
    expect(n).toBeGreaterThanOrEqual(8);
  });

  it('fails as decodedPixelSha256 fails when a file does not decode', async () => {
    const good = fixtures.find((f) => f.endsWith('DJI_XT2.jpg'))!;
    const bad = path.join(tmp, 'not-a-picture.jpg');
    writeFileSync(bad, Buffer.from('this is not a JPEG at all'));
    expect(await pairRun(good, bad)).toBeNull();
    await expect(decodedPixelSha256Pair(good, bad)).rejects.toMatchObject({ code: 'E_SANITIZE_TOOL' });
    await expect(decodedPixelSha256Pair(bad, good)).rejects.toMatchObject({ code: 'E_SANITIZE_TOOL' });
  });
});
