/**
 * Fault injection: for every named crash point (src/pipeline/crash.ts) and several hit counts,
 * `kluis ingest` is killed with SIGKILL right there (a power cut: no cleanup, no flush), then run
 * again on the same card without the crash. Each scenario must end with:
 *   - 0 files lost: every footage file secured, its card hash equal to the card's bytes;
 *   - 0 uploaded twice: one batch, exactly one visible store object per secured file plus the
 *     manifest and the report, each a verified delivery; the audit log records a card hash for
 *     every file and a `delivered` and `verified` line for every object (a kill between the
 *     audit line and the journal may repeat a line, never lose one);
 *   - a put killed half-way leaves a hidden `.kluis-tmp-<host>-<pid>-*` file in the fs store for
 *     a moment; the next put into that folder removes it once its writer is dead, so after the
 *     re-run none may be left;
 *   - every sealed object decrypts with the evidence key (`kluis export`) to the sanitized
 *     bytes the journal recorded;
 *   - no plaintext left in the spool, and an audit log whose hash chain still verifies.
 *
 * The card (from test/helpers/card.ts): a small JPEG, a ~0.9 MB JPEG (many 64 KiB seal
 * chunks), a ~2 MB MP4 (two 1 MiB read chunks, so mid-acquire:3 is inside it) and an SRT
 * sidecar. Hit counts are chosen so each point is reached: n=1 is the first file/object; the
 * larger n is the MP4 (acquire, and the third file sanitized/sealed, whichever worker had it) or
 * the batch's report/manifest (delivery points).
 *
 * The held card adds a crash-truncated clip (no moov) that cannot be sanitized and has no target
 * for originals: its sealed original is held on the station (issue 15). Killed on the way to
 * holding it (or before the batch closes), the re-run must end partial with the three good files
 * secured and exactly one held copy, which decrypts with the evidence key to the card's bytes.
 * Two scenarios run at a time to stay within a CI runner's 2 cores.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CRASH_POINTS, type CrashPoint } from '../../src/pipeline/crash.js';
import { auditEntries, journalQuery, makeStation, parseJson, runKluisAsync, spoolPlaintext, storeObjects } from '../helpers/kluis.js';
import { DEFAULT_CARD, makeCard } from '../helpers/card.js';

const HITS: Record<CrashPoint, number[]> = {
  'after-inventory': [1],
  'mid-acquire': [1, 3],
  'after-acquire': [1, 3],
  'mid-seal': [1, 3],
  'after-sanitize': [1, 3],
  'after-seal': [1, 3],
  'after-hold': [], // only the held card reaches it (HELD_HITS)
  'before-put': [1, 5],
  'after-put': [1, 5],
  'after-delivered': [1, 4],
  'after-verify': [1, 5],
  'before-manifest': [1],
  'after-manifest': [1],
};

/** On the held card (files in path order: 3 footage, the SRT, then the truncated clip, 5th). */
const HELD_HITS: Partial<Record<CrashPoint, number[]>> = {
  'after-acquire': [5],
  'after-hold': [1],
  'before-manifest': [1],
};

const FOOTAGE = ['DCIM/100MEDIA/DJI_0001.JPG', 'DCIM/100MEDIA/DJI_0002.JPG', 'DCIM/100MEDIA/DJI_0003.MP4'];
const TRUNCATED = 'DCIM/100MEDIA/DJI_0004.MP4';

let template: string;
let heldTemplate: string;
const matrix = new Map<string, string>();

/** At most two scenarios run at once, whatever vitest's concurrency. */
let running = 0;
const waiting: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running += 1;
  try {
    return await fn();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

/** JPEG or MP4/MOV bytes (a sealed file starts with its own header, never with these). */
function looksPlain(b: Buffer): boolean {
  return (b[0] === 0xff && b[1] === 0xd8) || b.subarray(4, 8).toString('latin1') === 'ftyp';
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

beforeAll(() => {
  template = makeCard(path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-faults-card-')), 'card'));
  heldTemplate = makeCard(path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-faults-held-')), 'card'), [...DEFAULT_CARD, { kind: 'truncated', name: 'DJI_0004.MP4' }]);
});

afterAll(() => {
  const lines = ['crash point        | n | killed | re-run | files secured | store objects | export ok | spool clean'];
  for (const [k, v] of [...matrix.entries()].sort()) lines.push(`${k.padEnd(20)} | ${v}`);
  process.stdout.write(`\nfault matrix (${matrix.size} scenarios):\n${lines.join('\n')}\n`);
});

async function scenario(point: CrashPoint, n: number, held = false): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), `kluis-fault-${point}-${n}-`));
  const st = makeStation(path.join(work, 'station'));
  const card = path.join(work, 'card');
  cpSync(held ? heldTemplate : template, card, { recursive: true, preserveTimestamps: true });
  const ingest = ['ingest', card, '--config', st.config, '--json', '--quiet'];
  const row: string[] = [String(n)];

  const crashed = await runKluisAsync(ingest, { KLUIS_CRASH_AT: `${point}:${n}` });
  expect(crashed.signal, `${point}:${n} was not reached: exit ${crashed.code}\n${crashed.stderr}`).toBe('SIGKILL');
  row.push('SIGKILL');

  const again = await runKluisAsync(ingest);
  expect(again.code, again.stderr).toBe(held ? 3 : 0);
  const out = parseJson<{
    batchId: string;
    status: string;
    files: Array<{ path: string; class: string; status: string; sha256?: string; sanitizedSha256?: string; object?: string; heldAt?: string; error?: { code: string } }>;
  }>(again);
  expect(out.status).toBe(held ? 'partial' : 'secured');
  row.push(`exit ${again.code}`);

  if (held) {
    // The clip that cannot be sanitized is held once, and opens to exactly the card's bytes.
    const clip = out.files.find((f) => f.path === TRUNCATED)!;
    expect(clip.status).toBe('held');
    expect(clip.error?.code).toMatch(/^E_SANITIZE_/);
    const heldDir = path.join(st.dir, 'state', 'held', out.batchId);
    expect(readdirSync(heldDir)).toEqual([path.basename(clip.heldAt!)]);
    const plain = path.join(work, 'held-clip');
    const dec = await runKluisAsync(['decrypt', clip.heldAt!, '--identity', st.evidenceKey, '-o', plain]);
    expect(dec.code, dec.stderr).toBe(0);
    expect(sha256(plain)).toBe(sha256(path.join(card, TRUNCATED)));
    expect(clip.sha256).toBe(sha256(path.join(card, TRUNCATED)));
  }

  // 0 lost: every footage file secured, with the hash of the card's own bytes.
  const footage = out.files.filter((f) => f.class === 'footage' && f.path !== TRUNCATED);
  expect(footage.map((f) => f.path).sort()).toEqual(FOOTAGE);
  for (const f of footage) {
    expect(f.status, f.path).toBe('secured');
    expect(f.sha256, f.path).toBe(sha256(path.join(card, f.path)));
  }
  row.push(`${footage.length}/${FOOTAGE.length}`);

  // 0 twice: one batch; one object per secured file + manifest + report + custody record; nothing else, no temp files.
  const batches = journalQuery<{ id: string; status: string }>(st, 'SELECT id, status FROM batches');
  expect(batches).toEqual([{ id: out.batchId, status: held ? 'delivering' : 'secured' }]);
  const all = storeObjects(st);
  const temps = all.filter((o) => path.basename(o).startsWith('.'));
  expect(temps, 'hidden files (temp files of a dead writer) left in the store').toEqual([]);
  for (const o of all) if (!o.endsWith('manifest.json')) expect(looksPlain(readFileSync(path.join(st.store, o))), o).toBe(false);
  const objects = all.filter((o) => !temps.includes(o));
  expect(objects.every((o) => o.startsWith(`${out.batchId}/`))).toBe(true);
  expect(objects).toHaveLength(FOOTAGE.length + 3);
  expect(objects).toContain(`${out.batchId}/manifest.json`);
  expect(objects).toContain(`${out.batchId}/custody`);
  const deliveries = journalQuery<{ object_key: string; state: string }>(st, 'SELECT object_key, state FROM deliveries');
  expect(deliveries.every((d) => d.state === 'verified')).toBe(true);
  expect(deliveries.map((d) => d.object_key).sort()).toEqual(objects);
  for (const type of ['delivered', 'verified']) {
    const logged = new Set(auditEntries(st, type).map((e) => String(e.object)));
    expect([...logged].sort(), `${type} audit lines`).toEqual(objects);
  }
  const acquired = auditEntries(st, 'file-acquired');
  for (const f of footage) expect(acquired.some((e) => e.file === f.path && e.sha256 === f.sha256), `file-acquired ${f.path}`).toBe(true);
  const sealed = new Set(auditEntries(st, 'file-sealed').map((e) => String(e.object)));
  for (const f of footage) expect(sealed.has(String(f.object)), `file-sealed ${f.path}`).toBe(true);
  row.push(`${objects.length}`);

  // Every sealed object opens with the evidence key and yields the sanitized bytes recorded.
  const exportDir = path.join(work, 'export');
  const exp = await runKluisAsync(['export', out.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', exportDir, '--json']);
  expect(exp.code, exp.stderr).toBe(0);
  for (const f of footage) expect(sha256(path.join(exportDir, 'sanitized', f.path)), f.path).toBe(f.sanitizedSha256);
  row.push('yes');

  // No plaintext left behind; the audit chain survived the kill.
  expect(spoolPlaintext(st)).toEqual([]);
  const audit = await runKluisAsync(['audit', 'verify', '--config', st.config]);
  expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  row.push('yes');
  matrix.set(`${point}${held ? ' (held)' : ''}`.padEnd(18) + ` ${n}`, row.slice(1).join(' | '));
}

describe('kill -9 at every crash point, then ingest again', () => {
  it('covers every crash point the pipeline declares', () => {
    expect(Object.keys(HITS).sort()).toEqual([...CRASH_POINTS].sort());
    for (const p of CRASH_POINTS) expect(HITS[p].length + (HELD_HITS[p]?.length ?? 0), p).toBeGreaterThan(0);
  });

  for (const point of CRASH_POINTS) {
    for (const n of HITS[point]) {
      it.concurrent(`${point}:${n}`, () => slot(() => scenario(point, n)), 300_000);
    }
    for (const n of HELD_HITS[point] ?? []) {
      it.concurrent(`${point}:${n} (held card)`, () => slot(() => scenario(point, n, true)), 300_000);
    }
  }
});
