/**
 * The demo card (samples/card, see samples/README.md) through `kluis ingest` + `kluis export`, as
 * a new user would run it (issue 4): every footage file comes out with its picture and sound
 * unchanged and without any of the identifiers the card was made with; the sidecars (SRT, LRF,
 * MISC/) are withheld; and with `policy.lrf = "sanitize"` the LRF proxy is stored clean as well.
 * The export passes `kluis mhl verify` as it comes (the report is in its MHL generation).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, runKluis, repoRoot, editConfig, type TestStation } from '../helpers/kluis.js';

const card = path.join(repoRoot, 'samples', 'card');
const FOOTAGE = ['DCIM/100MEDIA/DJI_0001.JPG', 'DCIM/100MEDIA/DJI_0002.MP4', 'DCIM/100MEDIA/DJI_0003.MOV'];
// Everything samples/README.md says the card carries, as ExifTool/ffprobe would print it.
const TELL = /1581F4QWB22A3001TEST|3N1SFXK0023ABC|FC7303|pilot-7|52\.09|5\.121|drone-dji|GPS|ISO6709|DJI|Utrecht|subtitle|tx3g|mov_text|djmd/i;

function essence(file: string): string {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-map', '0:a?', '-f', 'framemd5', '-'], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n').filter((l) => l && !l.startsWith('#')).join('\n');
}

function metadata(file: string): string {
  // The file's own name (DJI_0001.JPG) is the card's name for it, not telemetry: leave it out.
  const tags = (JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee', '-x', 'System:all', file], { encoding: 'utf8' })) as Array<Record<string, unknown>>)[0]!;
  delete tags.SourceFile;
  const exif = JSON.stringify(tags);
  const probe = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format_tags:stream_tags:stream=codec_type,codec_tag_string', '-of', 'json', file], { encoding: 'utf8' });
  return `${exif}\n${probe}`;
}

describe('the demo card, ingested and exported', () => {
  let st: TestStation;
  let out: string;
  let result: any;

  beforeAll(() => {
    expect(existsSync(card)).toBe(true);
    st = makeStation();
    out = path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-sample-')), 'export');
  });

  it('is secured, with the sidecars withheld', () => {
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code, r.stderr).toBe(0);
    result = JSON.parse(r.stdout);
    expect(result.status).toBe('secured');
    for (const f of result.files) {
      if (FOOTAGE.includes(f.path)) expect(f.status).toBe('secured');
      else expect([f.path, f.status]).toEqual([f.path, 'withheld']);
    }
  });

  it('exports footage with equal picture and sound and no telemetry', () => {
    const r = runKluis(['export', result.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    for (const p of FOOTAGE) {
      const exported = path.join(out, 'sanitized', ...p.split('/'));
      expect(essence(exported)).toBe(essence(path.join(card, ...p.split('/'))));
      const meta = metadata(exported);
      expect(meta.match(TELL)?.[0] ?? null).toBeNull();
      // The raw bytes do not hold the serials either (e.g. in an unlisted box).
      const bytes = readFileSync(exported);
      for (const s of ['1581F4QWB22A3001TEST', '3N1SFXK0023ABC', 'FC7303', 'drone-dji']) expect(bytes.includes(Buffer.from(s))).toBe(false);
    }
    expect(existsSync(path.join(out, 'sanitized', 'DCIM', '100MEDIA', 'DJI_0002.SRT'))).toBe(false);
    expect(existsSync(path.join(out, 'sanitized', 'DCIM', '100MEDIA', 'DJI_0002.LRF'))).toBe(false);
  });

  it('the demo\'s export passes `kluis mhl verify` as it is (issue 15, item 9)', () => {
    // The same steps as scripts/demo.sh: export into a fresh folder, then check its ASC MHL history.
    const v = runKluis(['mhl', 'verify', out]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^ok: 6 files checked against 1 generation\(s\), 0 problems$/m); // 3 footage, report.html/.json, custody.json
  });

  it('stores the LRF proxy, sanitized, when policy says lrf: sanitize', async () => {
    const st2 = makeStation();
    await editConfig(st2, (c) => {
      c.policy = { ...(c.policy as object), lrf: 'sanitize' };
    });
    const r = runKluis(['ingest', card, '--config', st2.config, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    const lrf = res.files.find((f: any) => f.path === 'DCIM/100MEDIA/DJI_0002.LRF');
    expect(lrf).toMatchObject({ class: 'sidecar', status: 'secured' });
    const dir = path.join(path.dirname(st2.dir), 'export');
    expect(runKluis(['export', res.batchId, '--config', st2.config, '--identity', st2.evidenceKey, '--out', dir]).code).toBe(0);
    const exported = path.join(dir, 'sanitized', 'DCIM', '100MEDIA', 'DJI_0002.LRF');
    expect(essence(exported)).toBe(essence(path.join(card, 'DCIM', '100MEDIA', 'DJI_0002.LRF')));
    expect(metadata(exported).match(TELL)?.[0] ?? null).toBeNull();
  });
});
