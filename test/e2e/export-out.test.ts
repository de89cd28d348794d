/**
 * `kluis export` and its output folder (issue 15, items 7, 8 and 9).
 *
 * Item 7: export never writes outside OUT and never follows a link inside it. A non-empty OUT is
 * refused (E_EXPORT_OUT_NOT_EMPTY) unless --into-existing; with it, a link where export writes
 * (a folder of card paths, report.json, ascmhl/) is refused (E_EXPORT_LINK) and nothing reaches
 * the folder or file it points at.
 *
 * Item 8: a hostile card holds files named like export's own (report.html, report.json,
 * ascmhl/ascmhl_chain.xml and a generation file, originals/…, sanitized/…, a .DS_Store), all of
 * them real JPEG bytes, so they are secured footage. Every one comes back under sanitized/ with
 * its recorded hash, the originals under originals/ with the card's bytes, and the report and the
 * MHL history are export's own.
 *
 * Item 9: `kluis mhl verify` passes on every fresh export (the demo card's is in
 * sample-card.test.ts), and again after an export --into-existing over an earlier one.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, runKluis, parseJson, listFiles, type TestStation } from '../helpers/kluis.js';
import { makeMediaFile } from '../helpers/card.js';

const sha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

/** Card paths of the hostile card, each a real JPEG (two different pictures, so a collision would show). */
const HOSTILE = [
  'DCIM/100MEDIA/DJI_0001.JPG',
  'DCIM/.DS_Store',
  'report.html',
  'report.json',
  'ascmhl/ascmhl_chain.xml',
  'ascmhl/0001_export_2024-01-01_000000Z.mhl',
  'originals/DCIM/100MEDIA/DJI_0001.JPG',
  'sanitized/DCIM/100MEDIA/DJI_0001.JPG',
];

let work: string;
let st: TestStation;
let batchId: string;
let ingested: Array<{ path: string; sha256: string; status: string }>;

function exportTo(out: string, ...extra: string[]) {
  return runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out, '--json', ...extra]);
}

function mhlVerify(dir: string) {
  return runKluis(['mhl', 'verify', dir, '--json']);
}

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kluis-export-out-'));
  st = makeStation(path.join(work, 'station'));
  const add = runKluis(['targets', 'add', 'vault', '--config', st.config, '--type', 'fs', '--url', path.join(work, 'vault'), '--required', '--originals-allowed', '--admin-key', st.adminKey]);
  expect(add.code, add.stderr).toBe(0);
  const card = path.join(work, 'card');
  const a = path.join(work, 'a.jpg');
  const b = path.join(work, 'b.jpg');
  makeMediaFile(a, { kind: 'jpeg', name: 'a.jpg' });
  makeMediaFile(b, { kind: 'big', name: 'b.jpg' });
  HOSTILE.forEach((p, i) => {
    const dst = path.join(card, ...p.split('/'));
    mkdirSync(path.dirname(dst), { recursive: true });
    copyFileSync(i % 2 === 0 ? a : b, dst);
  });
  const r = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
  expect(r.code, r.stderr).toBe(0);
  const out = parseJson(r);
  batchId = out.batchId;
  ingested = out.files;
  expect(ingested.map((f) => [f.path, f.status]).sort()).toEqual(HOSTILE.map((p) => [p, 'secured']).sort());
});

describe('a hostile card with files named like export\'s own (item 8)', () => {
  it('exports every card file under sanitized/, the originals under originals/, and export\'s own report and history', () => {
    const out = path.join(work, 'hostile');
    const r = exportTo(out, '--originals');
    expect(r.code, r.stderr).toBe(0);
    const res = parseJson(r);
    const status = parseJson(runKluis(['status', '--config', st.config, '--batch', batchId, '--json'])).batches[0];
    expect(status.files.length).toBe(HOSTILE.length);
    for (const p of HOSTILE) {
      const f = res.files.find((x: { path: string }) => x.path === p);
      expect(f?.file, p).toBe(`sanitized/${p}`);
      expect(sha256(path.join(out, 'sanitized', ...p.split('/'))), p).toBe(f.sha256);
      const o = res.originals.find((x: { path: string }) => x.path === p);
      expect(o?.file, p).toBe(`originals/${p}`);
      expect(sha256(path.join(out, 'originals', ...p.split('/'))), p).toBe(ingested.find((x) => x.path === p)!.sha256);
    }
    // The report is the batch's report, not a card file's bytes.
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toMatch(/^<!doctype html>/i);
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toContain(`Evidence report — batch <code>${batchId}</code>`);
    expect(JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')).batchId).toBe(batchId);
    // The top level holds only what export itself makes (the custody record comes with the batch, #17).
    expect(readdirSync(out).sort()).toEqual(['ascmhl', 'custody.json', 'originals', 'report.html', 'report.json', 'sanitized']);
    const v = mhlVerify(out);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(parseJson(v).checked).toBe(HOSTILE.length * 2 + 3);
  });
});

describe('mhl verify on a fresh export (item 9)', () => {
  it('is clean, lists the report too, and stays clean after an export --into-existing over it', () => {
    const out = path.join(work, 'fresh');
    expect(exportTo(out).code).toBe(0);
    const v = mhlVerify(out);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(parseJson(v)).toMatchObject({ ok: true, problems: [], generations: 1, checked: HOSTILE.length + 3 });
    const again = exportTo(out, '--into-existing');
    expect(again.code, again.stderr).toBe(0);
    const v2 = mhlVerify(out);
    expect(v2.code, v2.stdout + v2.stderr).toBe(0);
    expect(parseJson(v2).generations).toBe(2);
  });

  it('a changed report is found', () => {
    const out = path.join(work, 'fresh-changed');
    expect(exportTo(out).code).toBe(0);
    writeFileSync(path.join(out, 'report.json'), '{}');
    const v = mhlVerify(out);
    expect(v.code).toBe(4);
    expect(parseJson(v).problems.map((p: { path: string; code: string }) => [p.path, p.code])).toEqual([['report.json', 'changed']]);
  });
});

describe('the output folder (item 7)', () => {
  it('a non-empty OUT is refused and left as it was', () => {
    const out = path.join(work, 'notempty');
    mkdirSync(out);
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const r = exportTo(out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^kluis: error: the export folder .* is not empty .*\[E_EXPORT_OUT_NOT_EMPTY\]$/m);
    expect(r.stderr).toMatch(/^kluis: hint: .*--into-existing/m);
    expect(listFiles(out)).toEqual(['notes.txt']);
  });

  /** OUT holding one link `name` to a fresh folder (or file) outside; returns what the link points at. */
  function outWithLink(label: string, name: string, kind: 'dir' | 'file'): { out: string; outside: string } {
    const out = path.join(work, `link-${label}`);
    const outside = path.join(work, `outside-${label}`);
    mkdirSync(path.dirname(path.join(out, name)), { recursive: true });
    if (kind === 'dir') mkdirSync(outside);
    else writeFileSync(outside, 'precious');
    symlinkSync(outside, path.join(out, name));
    return { out, outside };
  }

  for (const [label, name] of [
    ['dcim', 'DCIM'],
    ['sanitized', 'sanitized'],
    ['deeper', 'sanitized/DCIM'],
    ['ascmhl', 'ascmhl'],
    ['originals', 'originals'],
  ] as const) {
    it(`a link ${name} inside OUT is never followed (with or without --into-existing)`, () => {
      const { out, outside } = outWithLink(label, name, 'dir');
      const refused = exportTo(out, '--originals');
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/\[E_EXPORT_OUT_NOT_EMPTY\]/);
      const r = exportTo(out, '--originals', '--into-existing');
      expect(readdirSync(outside)).toEqual([]);
      if (name === 'DCIM') {
        // Not on export's way any more: card paths go below sanitized/ and originals/.
        expect(r.code, r.stderr).toBe(0);
      } else {
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/^kluis: error: .*symbolic link.*\[E_EXPORT_LINK\]$/m);
      }
    });
  }

  for (const name of ['report.json', 'report.html']) {
    it(`a link ${name} inside OUT is neither followed nor replaced`, () => {
      const { out, outside } = outWithLink(name, name, 'file');
      const r = exportTo(out, '--into-existing');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/\[E_EXPORT_LINK\]/);
      expect(readFileSync(outside, 'utf8')).toBe('precious');
    });
  }

  it('an OUT that is a dangling link or a file is a clear error, not a stack trace', () => {
    const dangling = path.join(work, 'dangling');
    symlinkSync(path.join(work, 'nowhere', 'deeper'), dangling);
    const r = exportTo(dangling);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^kluis: error: cannot make the export folder .*\[E_EXPORT_OUT\]$/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const file = path.join(work, 'a-file');
    writeFileSync(file, 'x');
    const f = exportTo(file);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/\[E_EXPORT_OUT_NOT_DIR\]/);
  });

  it('leaves no temp folder behind', () => {
    const out = path.join(work, 'notemp');
    expect(exportTo(out).code).toBe(0);
    expect(readdirSync(out).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(existsSync(path.join(out, 'sanitized'))).toBe(true);
  });
});
