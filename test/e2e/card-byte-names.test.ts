/**
 * A card whose file names are not UTF-8 (issue 15, item 12). Two pictures whose names differ only
 * in one invalid byte used to become one record (both names read as U+FFFD), and status still
 * said every footage file was secured. Now each is its own record under an escaped, reversible
 * name (`DJI_\xff.JPG`, `DJI_\xfe.JPG`), both are secured and come back out of export with their
 * own bytes, and `verify --card` finds each on the card by its exact bytes. A picture in
 * `.Trashes` at the card root (a deleted clip is still evidence) is taken, not skipped.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, runKluis, parseJson, type TestStation } from '../helpers/kluis.js';
import { makeMediaFile } from '../helpers/card.js';

const sha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');
const FF = 'DCIM/100MEDIA/DJI_\\xff.JPG';
const FE = 'DCIM/100MEDIA/DJI_\\xfe.JPG';
const TRASHED = '.Trashes/501/DJI_0009.JPG';

let work: string;
let card: string;
let st: TestStation;
let ingest: any;

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kluis-bytenames-'));
  st = makeStation(path.join(work, 'station'));
  card = path.join(work, 'card');
  const media = path.join(card, 'DCIM', '100MEDIA');
  mkdirSync(media, { recursive: true });
  const a = path.join(work, 'a.jpg');
  const b = path.join(work, 'b.jpg');
  makeMediaFile(a, { kind: 'jpeg', name: 'a.jpg' });
  makeMediaFile(b, { kind: 'big', name: 'b.jpg' });
  const named = (byte: number): Buffer => Buffer.concat([Buffer.from(`${media}${path.sep}DJI_`), Buffer.from([byte]), Buffer.from('.JPG')]);
  copyFileSync(a, named(0xff));
  copyFileSync(b, named(0xfe));
  mkdirSync(path.join(card, '.Trashes', '501'), { recursive: true });
  copyFileSync(a, path.join(card, ...TRASHED.split('/')));
  const r = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
  expect(r.code, r.stderr).toBe(0);
  ingest = parseJson(r);
});

describe('card names that are not UTF-8', () => {
  it('are two records, both secured, with the card hash of each file', () => {
    expect(ingest.status).toBe('secured');
    const byPath = new Map<string, any>(ingest.files.map((f: any) => [f.path, f]));
    expect([...byPath.keys()].sort()).toEqual([TRASHED, FE, FF].sort());
    const onCard = (byte: number): string =>
      createHash('sha256').update(readFileSync(Buffer.concat([Buffer.from(path.join(card, 'DCIM', '100MEDIA') + path.sep + 'DJI_'), Buffer.from([byte]), Buffer.from('.JPG')]))).digest('hex');
    expect(byPath.get(FF)).toMatchObject({ class: 'footage', status: 'secured', sha256: onCard(0xff) });
    expect(byPath.get(FE)).toMatchObject({ class: 'footage', status: 'secured', sha256: onCard(0xfe) });
    expect(byPath.get(TRASHED)).toMatchObject({ class: 'footage', status: 'secured' });
    const status = parseJson(runKluis(['status', '--config', st.config, '--batch', ingest.batchId, '--json'])).batches[0];
    expect(status.counts).toMatchObject({ files: 3, footage: 3, secured: 3 });
  });

  it('come back out of export each with its own bytes', () => {
    const out = path.join(work, 'export');
    const e = runKluis(['export', ingest.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out, '--json']);
    expect(e.code, e.stderr).toBe(0);
    const res = parseJson(e);
    for (const p of [FF, FE, TRASHED]) {
      const f = res.files.find((x: any) => x.path === p);
      expect(sha256(path.join(out, ...f.file.split('/'))), p).toBe(f.sha256);
    }
    expect(res.files.find((x: any) => x.path === FF).sha256).not.toBe(res.files.find((x: any) => x.path === FE).sha256);
  });

  it('are found on the card by verify --card', () => {
    const v = runKluis(['verify', ingest.batchId, '--config', st.config, '--identity', st.evidenceKey, '--card', card, '--json']);
    expect(v.code, v.stderr).toBe(0);
    const rep = parseJson(v);
    for (const p of [FF, FE, TRASHED]) expect(rep.files.find((f: any) => f.path === p)?.card?.result, p).toBe('verified');
  });
});
