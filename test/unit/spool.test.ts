/**
 * cleanSpool (src/pipeline/spool.ts), run at start-up after a crash: it removes exactly what the
 * journal no longer needs (partial copies, plaintext of sealed files, sealed files no delivery
 * needs, batches the journal does not know) and keeps everything a resume still needs.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Journal } from '../../src/pipeline/journal.js';
import { cleanSpool, ensureSpool, newId, spoolPaths } from '../../src/pipeline/spool.js';

let dir: string;
let spool: string;
let j: Journal;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-spool-'));
  spool = path.join(dir, 'spool');
  j = Journal.open(path.join(dir, 'journal.db'));
});
afterEach(() => j.close());

function batch(id: string, status: 'acquiring' | 'delivering' | 'secured' = 'acquiring'): void {
  j.createBatch({ id, card_fingerprint: id, card_root: '/c', card_label: null, card_uuid: null, operator: null, case_ref: null, status, recipients: '[]' });
}

function put(p: string): string {
  writeFileSync(p, 'x');
  return p;
}

describe('spool layout', () => {
  it('makes a private (0700) folder per batch with acquired/, sanitized/, sealed/, thumbs/', async () => {
    const p = await ensureSpool(spool, 'b1');
    expect(p).toEqual(spoolPaths(spool, 'b1'));
    for (const d of [p.dir, p.acquired, p.sanitized, p.sealed, p.thumbs]) expect(statSync(d).mode & 0o777).toBe(0o700);
  });

  it('names spool files by random ids', () => {
    const a = newId();
    expect(a).toMatch(/^[0-9a-f]{24}$/);
    expect(newId()).not.toBe(a);
  });
});

describe('cleanSpool', () => {
  it('removes a batch folder the journal does not know', async () => {
    await ensureSpool(spool, 'ghost');
    put(path.join(spoolPaths(spool, 'ghost').acquired, 'x'));
    const removed = await cleanSpool(spool, j);
    expect(removed).toContain(spoolPaths(spool, 'ghost').dir);
    expect(existsSync(spoolPaths(spool, 'ghost').dir)).toBe(false);
  });

  it('keeps what resume needs and removes partial copies and plaintext of sealed files', async () => {
    batch('b1');
    const p = await ensureSpool(spool, 'b1');
    // a: acquired, waiting for sanitize: keep its copy
    const aCopy = put(path.join(p.acquired, 'a'));
    j.addFile({ batch_id: 'b1', path: 'A.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'acquired', spool_path: aCopy });
    // b: sanitized, waiting for seal: keep both
    const bCopy = put(path.join(p.acquired, 'b'));
    const bSan = put(path.join(p.sanitized, 'b'));
    const bThumb = put(path.join(p.thumbs, 'b.jpg'));
    j.addFile({ batch_id: 'b1', path: 'B.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'sanitized', spool_path: bCopy, sanitized_path: bSan, thumb_path: bThumb });
    // c: sealed, crashed before its plaintext was removed: plaintext goes, the sealed object stays (pending)
    const cCopy = put(path.join(p.acquired, 'c'));
    const cSan = put(path.join(p.sanitized, 'c'));
    const cSealed = put(path.join(p.sealed, 'c'));
    j.addFile({ batch_id: 'b1', path: 'C.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'sealed', spool_path: cCopy, sanitized_path: cSan, sealed_path: cSealed, object_id: 'c' });
    j.enqueue('b1', 'b1/c', ['local'], { size: 1, sha256: 'x', localPath: cSealed });
    // d: still 'seen' (crash mid-acquire): its partial copy is not in the journal
    j.addFile({ batch_id: 'b1', path: 'D.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'seen' });
    const partial = put(path.join(p.acquired, 'partial'));
    const halfSanitized = put(path.join(p.sanitized, 'orphan'));
    // e: sealed and verified everywhere: its sealed file is no longer needed
    const eSealed = put(path.join(p.sealed, 'e'));
    j.addFile({ batch_id: 'b1', path: 'E.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'sealed', sealed_path: eSealed, object_id: 'e' });
    j.enqueue('b1', 'b1/e', ['local'], { size: 1, sha256: 'x', localPath: eSealed });
    j.setDelivery('b1', 'b1/e', 'local', { state: 'verified' });

    await cleanSpool(spool, j);
    for (const kept of [aCopy, bCopy, bSan, bThumb, cSealed]) expect(existsSync(kept), kept).toBe(true);
    for (const gone of [cCopy, cSan, partial, halfSanitized, eSealed]) expect(existsSync(gone), gone).toBe(false);
  });

  it('keeps a file\'s sealed original (what made the card safe to remove) until its sanitized object is verified, and never touches held originals', async () => {
    batch('b1', 'delivering');
    const p = await ensureSpool(spool, 'b1');
    // a: acquired, not yet sanitized: its sealed original and its working copy stay
    const aOrig = put(path.join(p.sealed, 'a-orig'));
    const aCopy = put(path.join(p.acquired, 'a'));
    j.addFile({ batch_id: 'b1', path: 'A.MP4', class: 'footage', format: 'mp4', size: 1, mtime_ms: 0, state: 'acquired', spool_path: aCopy, orig_object_id: 'a-orig', orig_sealed_path: aOrig, orig_sealed_sha256: 'x', orig_sealed_size: 1 });
    // b: sealed, its object still pending: the original stays
    const bOrig = put(path.join(p.sealed, 'b-orig'));
    const bSealed = put(path.join(p.sealed, 'b'));
    j.addFile({ batch_id: 'b1', path: 'B.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'sealed', object_id: 'b', sealed_path: bSealed, orig_object_id: 'b-orig', orig_sealed_path: bOrig, orig_sealed_sha256: 'x', orig_sealed_size: 1 });
    j.enqueue('b1', 'b1/b', ['local'], { size: 1, sha256: 'x', localPath: bSealed });
    // c: sealed and verified: its original is no longer needed
    const cOrig = put(path.join(p.sealed, 'c-orig'));
    const cSealed = put(path.join(p.sealed, 'c'));
    j.addFile({ batch_id: 'b1', path: 'C.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'sealed', object_id: 'c', sealed_path: cSealed, orig_object_id: 'c-orig', orig_sealed_path: cOrig, orig_sealed_sha256: 'x', orig_sealed_size: 1 });
    j.enqueue('b1', 'b1/c', ['local'], { size: 1, sha256: 'x', localPath: cSealed });
    j.setDelivery('b1', 'b1/c', 'local', { state: 'verified' });
    // d: held on the station: outside the spool, never touched
    const held = path.join(dir, 'state', 'held', 'b1', 'd-orig');
    mkdirSync(path.dirname(held), { recursive: true });
    put(held);
    j.addFile({ batch_id: 'b1', path: 'D.MP4', class: 'footage', format: 'mp4', size: 1, mtime_ms: 0, state: 'held', orig_object_id: 'd-orig', orig_sealed_path: held, held_path: held, orig_sealed_sha256: 'x', orig_sealed_size: 1 });

    await cleanSpool(spool, j);
    for (const kept of [aOrig, aCopy, bOrig, bSealed, held]) expect(existsSync(kept), kept).toBe(true);
    for (const gone of [cOrig, cSealed]) expect(existsSync(gone), gone).toBe(false);
  });

  it('keeps a delivered-but-unverified sealed file (verify still needs to compare against it)', async () => {
    batch('b1', 'delivering');
    const p = await ensureSpool(spool, 'b1');
    const s = put(path.join(p.sealed, 'o'));
    j.enqueue('b1', 'b1/o', ['local'], { size: 1, sha256: 'x', localPath: s });
    j.setDelivery('b1', 'b1/o', 'local', { state: 'delivered' });
    await cleanSpool(spool, j);
    expect(existsSync(s)).toBe(true);
  });

  it('removes the whole folder of a secured batch', async () => {
    batch('b1', 'secured');
    const p = await ensureSpool(spool, 'b1');
    put(path.join(p.sealed, 'old'));
    await cleanSpool(spool, j);
    expect(existsSync(p.dir)).toBe(false);
  });

  it('is harmless on a missing spool and a second run removes nothing more', async () => {
    expect(await cleanSpool(path.join(dir, 'nope'), j)).toEqual([]);
    batch('b1');
    await ensureSpool(spool, 'b1');
    await cleanSpool(spool, j);
    expect(await cleanSpool(spool, j)).toEqual([]);
  });
});

describe('cleanSpool after a crash between manifest and thumbnail removal', () => {
  it('removes thumbnails (plaintext) once the batch manifest is written, even if the journal still names them', async () => {
    batch('b1', 'delivering');
    j.setBatch('b1', { manifest_written: 1 });
    const p = await ensureSpool(spool, 'b1');
    const thumb = put(path.join(p.thumbs, 't.jpg'));
    j.addFile({ batch_id: 'b1', path: 'A.JPG', class: 'footage', format: 'jpeg', size: 1, mtime_ms: 0, state: 'sealed', thumb_path: thumb, object_id: 'a' });
    await cleanSpool(spool, j);
    expect(existsSync(thumb)).toBe(false);
  });
});
