/**
 * Nothing the card held is lost, and "safe to remove" is true when said (issue 15, item 1).
 *
 * - A crash-truncated clip (the head of a real DJI clip, no moov: test/helpers/card.ts
 *   'truncated') among good files, no target for originals: the good files are secured; the clip
 *   cannot be sanitized, so its sealed original is held on the station (state/held/), named by
 *   the ingest output and by `kluis status`, kept by spool clean-up, and opens with the evidence
 *   key to exactly the card's bytes; the card was called safe only after that original was sealed.
 * - The same card with a target that allows originals: the clip's original goes there, and
 *   `kluis export --originals` gives back exactly the card's bytes.
 * - A file that grows while it is read never settles: E_CARD_CHANGED, and the card is NOT called
 *   safe to remove (no event, no audit line, no journal time), while the other files are secured.
 */
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, watch } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, journalQuery, makeStation, parseJson, runKluis, runKluisAsync, spoolPlaintext, storeObjects, listFiles } from '../helpers/kluis.js';
import { makeCard, makeMediaFile } from '../helpers/card.js';

const CLIP = 'DCIM/100MEDIA/DJI_0004.MP4';
const GOOD = ['DCIM/100MEDIA/DJI_0001.JPG', 'DCIM/100MEDIA/DJI_0002.JPG', 'DCIM/100MEDIA/DJI_0003.MP4'];

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

interface Outcome {
  batchId: string;
  status: string;
  safeToRemove: boolean;
  files: Array<{ path: string; class: string; status: string; sha256?: string; heldAt?: string; original?: string; targets?: Record<string, string>; error?: { code: string; message: string; hint?: string } }>;
}

function cardWithClip(dir: string): string {
  return makeCard(dir, [
    { kind: 'jpeg', name: 'DJI_0001.JPG' },
    { kind: 'big', name: 'DJI_0002.JPG' },
    { kind: 'mp4', name: 'DJI_0003.MP4', seconds: 1 },
    { kind: 'truncated', name: 'DJI_0004.MP4' },
  ]);
}

describe('never lost', () => {
  it('holds the sealed original of a clip that cannot be sanitized, and calls the card safe only after it is sealed', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-lost-held-'));
    const st = makeStation(path.join(work, 'station'));
    const card = cardWithClip(path.join(work, 'card'));
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code, r.stderr).toBe(3);
    const out = parseJson<Outcome>(r);
    expect(out.status).toBe('partial');
    expect(out.safeToRemove).toBe(true);
    for (const p of GOOD) expect(out.files.find((f) => f.path === p)?.status, p).toBe('secured');

    const clip = out.files.find((f) => f.path === CLIP)!;
    expect(clip.status).toBe('held');
    expect(clip.error?.code).toMatch(/^E_SANITIZE_/);
    expect(clip.error?.hint).toContain(clip.heldAt);
    expect(clip.sha256).toBe(sha256(path.join(card, CLIP)));
    expect(path.dirname(path.dirname(clip.heldAt!))).toBe(path.join(st.dir, 'state', 'held'));
    expect(r.stderr).toContain(`${CLIP}: NOT sanitized`);
    // The store holds the 3 sanitized files, the report, the custody record and the manifest; never the original.
    expect(storeObjects(st)).toHaveLength(GOOD.length + 3);
    expect(spoolPlaintext(st)).toEqual([]);

    // Safe to remove was said once, after the clip's original was sealed (audit order).
    const audit = auditEntries(st);
    const safe = audit.findIndex((e) => e.type === 'card-safe-to-remove');
    const sealedClip = audit.findIndex((e) => e.type === 'file-sealed' && e.file === CLIP && e.kind === 'original');
    expect(sealedClip).toBeGreaterThanOrEqual(0);
    expect(safe).toBeGreaterThan(sealedClip);
    expect(audit.filter((e) => e.type === 'card-safe-to-remove')).toHaveLength(1);
    const held = auditEntries(st, 'file-held');
    expect(held.map((e) => [e.file, e.heldAt])).toEqual([[CLIP, clip.heldAt]]);

    // `kluis status` names the file and where its original is, without --batch.
    const status = runKluis(['status', '--config', st.config]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`held     ${CLIP}`);
    expect(status.stdout).toContain(clip.heldAt);
    const sj = parseJson<{ batches: Array<{ counts: { held: number }; held: Array<{ path: string; heldAt?: string }> }> }>(runKluis(['status', '--config', st.config, '--json']));
    expect(sj.batches[0]!.counts.held).toBe(1);
    expect(sj.batches[0]!.held).toEqual([expect.objectContaining({ path: CLIP, heldAt: clip.heldAt })]);

    // Spool clean-up (every start) keeps it; the evidence key opens it to the card's exact bytes.
    const resume = runKluis(['resume', '--config', st.config, '--json']);
    expect(resume.code, resume.stderr).toBe(3);
    expect(existsSync(clip.heldAt!)).toBe(true);
    const plain = path.join(work, 'clip.MP4');
    const dec = runKluis(['decrypt', clip.heldAt!, '--identity', st.evidenceKey, '-o', plain]);
    expect(dec.code, dec.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(plain), readFileSync(path.join(card, CLIP)))).toBe(0);
  });

  it('sends the original of a clip that cannot be sanitized to the target that allows originals; export --originals gives back the card bytes', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-lost-vault-'));
    const st = makeStation(path.join(work, 'station'));
    const vault = path.join(work, 'vault');
    const add = runKluis(['targets', 'add', 'vault', '--config', st.config, '--type', 'fs', '--url', vault, '--originals-allowed', '--admin-key', st.adminKey]);
    expect(add.code, add.stderr).toBe(0);
    const card = cardWithClip(path.join(work, 'card'));
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code, r.stderr).toBe(3);
    const out = parseJson<Outcome>(r);
    const clip = out.files.find((f) => f.path === CLIP)!;
    expect(clip.status).toBe('held');
    expect(clip.heldAt).toBeUndefined();
    expect(clip.targets).toEqual({ vault: 'verified' });
    expect(listFiles(vault)).toContain(clip.original);
    expect(listFiles(path.join(st.dir, 'state', 'held'))).toEqual([]);

    const dir = path.join(work, 'export');
    const e = runKluis(['export', out.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', dir, '--originals', '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(path.join(dir, 'originals', ...CLIP.split('/'))), readFileSync(path.join(card, CLIP)))).toBe(0);
    for (const p of GOOD) expect(sha256(path.join(dir, 'originals', ...p.split('/')))).toBe(sha256(path.join(card, p)));
  });

  it('does not call the card safe to remove while a file keeps growing as it is read', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-lost-grow-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);
    // An MP4 head, padded to 32 MiB (32 card reads per attempt), that a camera is still writing: a
    // separate process appends 4 KiB every millisecond, and so does this one whenever kluis writes
    // to its spool, until kluis has exited. (kluis stops each read once the file is past the size
    // it had when opened, so the growth cannot keep a read going.)
    const growing = path.join(card, 'DCIM', '100MEDIA', 'DJI_0002.MP4');
    makeMediaFile(growing, { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 1 });
    appendFileSync(growing, Buffer.alloc(32 * 1024 * 1024 - readFileSync(growing).length));
    mkdirSync(st.spool, { recursive: true, mode: 0o700 });
    const camera = spawn(process.execPath, ['-e', `const fs = require('node:fs'); const b = Buffer.alloc(4096, 2); setInterval(() => fs.appendFileSync(${JSON.stringify(growing)}, b), 1);`], { stdio: 'ignore' });
    const watcher = watch(st.spool, { recursive: true }, () => appendFileSync(growing, Buffer.alloc(4096, 1)));
    let r;
    try {
      r = await runKluisAsync(['ingest', card, '--config', st.config, '--json']);
    } finally {
      watcher.close();
      camera.kill('SIGKILL');
    }
    expect(r.code, r.stderr).toBe(3);
    const out = parseJson<Outcome>(r);
    expect(out.safeToRemove).toBe(false);
    expect(out.files.find((f) => f.path === 'DCIM/100MEDIA/DJI_0001.JPG')?.status).toBe('secured');
    const grown = out.files.find((f) => f.path === 'DCIM/100MEDIA/DJI_0002.MP4')!;
    expect([grown.status, grown.error?.code]).toEqual(['failed', 'E_CARD_CHANGED']);
    expect(r.stderr).toContain('NOT SAFE TO REMOVE');
    expect(r.stderr).not.toMatch(/kluis: SAFE TO REMOVE/);
    expect(auditEntries(st, 'card-safe-to-remove')).toEqual([]);
    expect(journalQuery(st, 'SELECT safe_to_remove_at FROM batches')).toEqual([{ safe_to_remove_at: null }]);
    expect(journalQuery(st, "SELECT type FROM events WHERE type IN ('safe-to-remove', 'card-not-safe')")).toEqual([{ type: 'card-not-safe' }]);
  });
});
