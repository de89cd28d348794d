/**
 * Every real vendor file (test/fixtures/real, see its SOURCES.md) on one card, through the real
 * `kluis ingest` + `kluis export` (issue 4). The pipeline's spool names have no extension, which
 * the per-file sanitize tests (fixture names with .jpg) do not exercise; this caught two thermal
 * JPEGs that failed to decode there. Each file is secured with its picture and sound unchanged
 * and without its serials and GPS, except DJI_XTS.jpg, which has no EOI and fails closed (held as its sealed original).
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { makeStation, runKluis, repoRoot } from '../helpers/kluis.js';

const real = path.join(repoRoot, 'test', 'fixtures', 'real');
// Serials named in SOURCES.md (and the H20T core serial found inside its APP4 segment).
const SERIALS = ['1SFOJ8J0AB0GAM', '1WADH7R0000217', '4X9SJBK02AA04M', '297394'];

function pixels(file: string): string {
  return execFileSync('ffmpeg', ['-v', 'error', '-noautorotate', '-i', file, '-map', '0:v:0', '-map', '0:a?', '-f', 'framemd5', '-'], { encoding: 'utf8', maxBuffer: 256 << 20 })
    .split('\n').filter((l) => l && !l.startsWith('#')).join('\n');
}

describe('a card of real vendor files', () => {
  it('is secured except the truncated XTS photo, and exports clean with equal essence', () => {
    const st = makeStation();
    const card = path.join(path.dirname(st.dir), 'card');
    const media = path.join(card, 'DCIM', '100MEDIA');
    mkdirSync(media, { recursive: true });
    let copied = 0;
    for (const dir of ['image', 'video']) {
      for (const n of readdirSync(path.join(real, dir))) {
        if (n.toUpperCase().endsWith('.SRT')) continue;
        cpSync(path.join(real, dir, n), path.join(media, n));
        copied += 1;
      }
    }
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    const out = JSON.parse(r.stdout);
    const footage = out.files.filter((f: any) => f.class === 'footage');
    expect(footage.length).toBe(copied);
    expect(copied).toBeGreaterThanOrEqual(23);
    for (const f of footage) {
      if (f.path.endsWith('DJI_XTS.jpg')) expect([f.path, f.status, f.error?.code]).toEqual([f.path, 'held', 'E_SANITIZE_TRUNCATED']);
      else expect([f.path, f.status, f.error?.code]).toEqual([f.path, 'secured', undefined]);
    }
    const dir = path.join(path.dirname(st.dir), 'export');
    const e = runKluis(['export', out.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', dir]);
    expect(e.code, e.stderr).toBe(0);
    for (const f of footage.filter((x: any) => x.status === 'secured')) {
      const exported = path.join(dir, 'sanitized', ...f.path.split('/'));
      if (!f.path.endsWith('.tiff')) expect(pixels(exported), f.path).toBe(pixels(path.join(card, ...f.path.split('/'))));
      const bytes = readFileSync(exported);
      for (const s of SERIALS) expect(bytes.includes(Buffer.from(s)), `${f.path} holds ${s}`).toBe(false);
      const tags = JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', '-x', 'System:all', exported], { encoding: 'utf8' }))[0];
      delete tags.SourceFile;
      const names = Object.keys(tags).join(' ');
      expect(names, f.path).not.toMatch(/GPS|Serial|drone-dji|XMP-FLIR|MakerNote|Make\b|Model\b/);
    }
  });
});
