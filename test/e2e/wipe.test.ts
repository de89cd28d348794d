/**
 * The optional wipe (issue 7): the one deliberate write to a card. It deletes exactly the files
 * that every required target verified, and nothing else; it never runs on a batch that is not
 * secured; a card mounted read-only under a removable-media root is remounted read-write only
 * for the wipe and set back to read-only afterwards.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import * as path from 'node:path';
import { makeStation, runKluis, auditEntries, listFiles } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

function mountOptions(dir: string): string {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === dir);
  return line?.split(' ')[5] ?? '';
}

describe('kluis ingest --wipe-after-secured', () => {
  it('deletes the secured footage and keeps sidecars', () => {
    const st = makeStation();
    const card = makeCard(path.join(path.dirname(st.dir), 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 1 },
      { kind: 'srt', name: 'DJI_0002.SRT' },
    ]);
    const r = runKluis(['ingest', card, '--config', st.config, '--json', '--wipe-after-secured']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('secured');
    expect(out.wiped.deleted.sort()).toEqual(['DCIM/100MEDIA/DJI_0001.JPG', 'DCIM/100MEDIA/DJI_0002.MP4']);
    expect(listFiles(card)).toEqual(['DCIM/100MEDIA/DJI_0002.SRT']);
    const wiped = auditEntries(st, 'wiped');
    expect(wiped).toHaveLength(1);
    expect(wiped[0]!.deleted).toEqual(out.wiped.deleted);
  });

  it('never wipes a batch that is not secured', () => {
    const st = makeStation();
    const card = makeCard(path.join(path.dirname(st.dir), 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);
    // A truncated video keeps the batch partial.
    writeFileSync(path.join(card, 'DCIM', '100MEDIA', 'DJI_0009.MP4'), Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypisom'), Buffer.alloc(12), Buffer.from([0, 0, 0, 16]), Buffer.from('mdat'), Buffer.alloc(8)]));
    const before = listFiles(card);
    const r = runKluis(['ingest', card, '--config', st.config, '--json', '--wipe-after-secured']);
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('partial');
    expect(out.wiped).toBeUndefined();
    expect(listFiles(card)).toEqual(before);
    expect(auditEntries(st, 'wiped')).toHaveLength(0);
  });

  it('remounts a read-only card read-write only for the wipe', () => {
    const st = makeStation();
    const src = makeCard(path.join(path.dirname(st.dir), 'src'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'srt', name: 'DJI_0001.SRT' },
    ]);
    mkdirSync('/mnt', { recursive: true });
    const mnt = mkdtempSync('/mnt/kluis-wipe-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    try {
      cpSync(src, mnt, { recursive: true });
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      expect(mountOptions(mnt).split(',')).toContain('ro');
      const r = runKluis(['ingest', mnt, '--config', st.config, '--json', '--wipe-after-secured']);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.wiped.deleted).toEqual(['DCIM/100MEDIA/DJI_0001.JPG']);
      expect(existsSync(path.join(mnt, 'DCIM', '100MEDIA', 'DJI_0001.JPG'))).toBe(false);
      expect(existsSync(path.join(mnt, 'DCIM', '100MEDIA', 'DJI_0001.SRT'))).toBe(true);
      // Back to read-only after the wipe.
      expect(mountOptions(mnt).split(',')).toContain('ro');
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
