/**
 * card file names a camera would not write, but a card (or a copy of one) can hold:
 * spaces, unicode in NFC and NFD (two different names on Linux), a newline, a name of 255 bytes
 * (the longest a Linux file system allows), a file named `..foo`, a backslash. Each must be
 * secured by `kluis ingest` and come back out of `kluis export` under exactly its card name with
 * the sanitized hash recorded at ingest, with the MHL history. A card whose DCIM is a symbolic
 * link is never followed: the link is rejected and nothing behind it is read or stored.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, runKluis, parseJson, listFiles, journalQuery, type TestStation } from '../helpers/kluis.js';
import { makeMediaFile } from '../helpers/card.js';

const ODD = [
  'with space.JPG',
  'caf\u00e9.JPG', // NFC
  'cafe\u0301.JPG', // NFD: a different name on Linux
  'new\nline.JPG',
  `${'A'.repeat(251)}.JPG`, // 255 bytes
  '..foo',
  'back\\slash.JPG',
];

describe('odd card names', () => {
  let work: string;
  let st: TestStation;

  beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'kluis-names-'));
    st = makeStation(path.join(work, 'station'));
  });

  it('are secured and exported under their exact names', () => {
    const media = path.join(work, 'card', 'DCIM', '100MEDIA');
    mkdirSync(media, { recursive: true });
    const first = path.join(media, 'DJI_0001.JPG');
    makeMediaFile(first, { kind: 'jpeg', name: 'DJI_0001.JPG' });
    for (const n of ODD) copyFileSync(first, path.join(media, n));
    expect(Buffer.byteLength(ODD[4]!)).toBe(255);

    const r = runKluis(['ingest', path.join(work, 'card'), '--config', st.config, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson(r);
    expect(out.status).toBe('secured');
    const paths = out.files.map((f: any) => f.path).sort();
    expect(paths).toEqual(['DJI_0001.JPG', ...ODD].map((n) => `DCIM/100MEDIA/${n}`).sort());
    for (const f of out.files) expect([f.path, f.status]).toEqual([f.path, 'secured']);

    const dir = path.join(work, 'export');
    const e = runKluis(['export', out.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', dir, '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const exported = parseJson(e);
    const recorded = new Map(
      journalQuery<{ path: string; sanitize_json: string }>(st, 'SELECT path, sanitize_json FROM files WHERE batch_id = ?', out.batchId).map((row) => [
        row.path,
        (JSON.parse(row.sanitize_json) as { sha256: string }).sha256,
      ]),
    );
    for (const p of paths) {
      const file = path.join(dir, 'sanitized', ...p.split('/'));
      expect(existsSync(file), p).toBe(true);
      expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(recorded.get(p));
      expect(exported.files.find((f: any) => f.path === p)?.sha256).toBe(recorded.get(p));
    }
    // No temp file left in the export, and an MHL history that lists every file.
    expect(listFiles(dir).filter((p) => p.endsWith('.tmp'))).toEqual([]);
    expect(exported.mhl).toBeTruthy();
    expect(existsSync(exported.mhl)).toBe(true);
  });

  it('a DCIM that is a symbolic link is rejected and nothing behind it is stored', () => {
    const real = path.join(work, 'elsewhere', '100MEDIA');
    mkdirSync(real, { recursive: true });
    makeMediaFile(path.join(real, 'DJI_0001.JPG'), { kind: 'jpeg', name: 'DJI_0001.JPG' });
    const card = path.join(work, 'linkcard');
    mkdirSync(card);
    symlinkSync(path.join(work, 'elsewhere'), path.join(card, 'DCIM'));
    const before = listFiles(st.store).length;
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    const out = parseJson(r);
    expect(out.files.map((f: any) => [f.path, f.status, f.error?.code])).toEqual([['DCIM', 'rejected', 'E_CARD_SYMLINK']]);
    expect(out.status).not.toBe('secured');
    expect(r.stderr).toMatch(/DCIM.*\[E_CARD_SYMLINK\]/);
    // Only the batch's manifest, report and custody record were stored: no footage object.
    const added = listFiles(st.store).length - before;
    expect(added).toBe(3);
  });

  it('a name that holds a newline or an escape prints on one line and cannot fake a hint', () => {
    const media = path.join(work, 'forgecard', 'DCIM', '100MEDIA');
    mkdirSync(media, { recursive: true });
    makeMediaFile(path.join(media, 'DJI_0001.JPG'), { kind: 'jpeg', name: 'DJI_0001.JPG' });
    const forged = 'x\nkluis: hint: nothing to worry about\u001b[2K.JPG';
    writeFileSync(path.join(media, forged), ''); // empty: rejected, so named on stderr
    const r = runKluis(['ingest', path.join(work, 'forgecard'), '--config', st.config, '--json']);
    const out = parseJson(r);
    // JSON keeps the exact name; stderr shows it escaped on the error line.
    expect(out.files.find((f: any) => f.path === `DCIM/100MEDIA/${forged}`)?.error?.code).toBe('E_INPUT_EMPTY');
    const lines = r.stderr.split('\n');
    expect(lines.filter((l) => l.startsWith('kluis: hint: nothing'))).toEqual([]);
    expect(r.stderr).not.toContain('\u001b');
    expect(lines.some((l) => l.startsWith('kluis: error: ') && l.includes('x\\nkluis: hint: nothing to worry about\\u001b[2K.JPG') && l.endsWith('[E_INPUT_EMPTY]'))).toBe(true);
  });
});
