/**
 * Originals (issue 6: "an optional per-target originals allowed flag, off by default"): with a
 * second store whose config allows originals, the card's unsanitized bytes are sealed and sent
 * there and nowhere else; `kluis verify` checks them on that store only; `kluis export
 * --originals` gives back files whose SHA-256 equals the card's.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { makeStation, runKluis, listFiles } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

function sha256(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]!;
}

describe('originals on the targets that allow them', () => {
  it('seals originals for the vault only, verifies and exports them byte-identical to the card', () => {
    const st = makeStation();
    const vault = path.join(path.dirname(st.dir), 'vault');
    const add = runKluis(['targets', 'add', 'vault', '--config', st.config, '--type', 'fs', '--url', vault, '--required', '--originals-allowed', '--admin-key', st.adminKey]);
    expect(add.code, add.stderr).toBe(0);
    const card = makeCard(path.join(path.dirname(st.dir), 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 1 },
    ]);
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('secured');
    const footage = out.files.filter((f: any) => f.class === 'footage');
    expect(footage.every((f: any) => typeof f.original === 'string')).toBe(true);
    // local: 2 sanitized + report + custody record + manifest; vault: the same plus 2 originals.
    expect(listFiles(st.store)).toHaveLength(5);
    const vaultObjects = listFiles(vault);
    expect(vaultObjects).toHaveLength(7);
    for (const f of footage) {
      expect(vaultObjects).toContain(f.original);
      expect(listFiles(st.store)).not.toContain(f.original);
    }

    const v = runKluis(['verify', out.batchId, '--config', st.config, '--identity', st.evidenceKey, '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).result).toBe('verified');

    const dir = path.join(path.dirname(st.dir), 'export');
    const e = runKluis(['export', out.batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', dir, '--originals', '--json']);
    expect(e.code, e.stderr).toBe(0);
    for (const f of footage) {
      const exported = path.join(dir, 'originals', ...f.path.split('/'));
      expect(sha256(exported)).toBe(f.sha256);
      expect(sha256(exported)).toBe(sha256(path.join(card, ...f.path.split('/'))));
    }
    // Without a target that allows originals there are none to export.
    const st2 = makeStation();
    const r2 = runKluis(['ingest', card, '--config', st2.config, '--json']);
    const b2 = JSON.parse(r2.stdout).batchId;
    const e2 = runKluis(['export', b2, '--config', st2.config, '--identity', st2.evidenceKey, '--out', path.join(path.dirname(st2.dir), 'x'), '--originals']);
    expect(e2.code).toBe(5);
    expect(e2.stderr).toMatch(/no sealed originals/);
  });
});
