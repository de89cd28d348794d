/**
 * The card reader as a write blocker: kluis reads the card's mount options from
 * /proc/self/mountinfo. A card on a read-write mount is read with a loud warning and a
 * `card-writable` audit line (policy warn, the default); with `policy.writableCard: 'refuse'`
 * it is not read at all (E_CARD_WRITABLE, exit 10); a read-only mount passes silently.
 * Real tmpfs mounts (root, as in CI), remounted read-only the way the udev rule in deploy/ does.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditEntries, editConfig, journalQuery, makeStation, parseJson, runKluis, storeObjects } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

const mounts: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m]);
});

function cardOnTmpfs(readOnly: boolean): string {
  const mp = path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-mnt-')), 'SDCARD');
  mkdirSync(mp);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'kluis-test-card', mp]);
  mounts.push(mp);
  makeCard(mp, [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);
  if (readOnly) execFileSync('mount', ['-o', 'remount,ro,noatime', mp]);
  return mp;
}

describe('card mount check', () => {
  it('warns loudly and audits a card mounted read-write (policy warn), and still secures it', () => {
    const st = makeStation();
    const card = cardOnTmpfs(false);
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the card at .* is mounted READ-WRITE \(rw/);
    const a = auditEntries(st, 'card-writable');
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ policy: 'warn', mountPoint: card });
    expect(String(a[0]!.mountOptions)).toMatch(/(^|,)rw(,|$)/);
  });

  it('refuses a read-write card when policy says so, reading nothing', async () => {
    const st = makeStation();
    await editConfig(st, (c) => {
      c.policy = { writableCard: 'refuse' };
    });
    const card = cardOnTmpfs(false);
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code).toBe(10);
    expect(r.stderr).toContain('[E_CARD_WRITABLE]');
    expect(r.stderr).toContain('kluis: hint: remount it read-only');
    expect(auditEntries(st, 'card-writable')[0]).toMatchObject({ policy: 'refuse' });
    expect(auditEntries(st, 'file-acquired')).toEqual([]);
    expect(journalQuery(st, "SELECT path FROM files WHERE state != 'seen'")).toEqual([]);
    expect(storeObjects(st)).toEqual([]);
  });

  it('reads a read-only card without a warning, also under the refuse policy', async () => {
    const st = makeStation();
    await editConfig(st, (c) => {
      c.policy = { writableCard: 'refuse' };
    });
    const card = cardOnTmpfs(true);
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson(r).status).toBe('secured');
    expect(r.stderr).not.toContain('READ-WRITE');
    expect(auditEntries(st, 'card-writable')).toEqual([]);
    expect(String(auditEntries(st, 'card-seen')[0]!.mountOptions)).toMatch(/(^|,)ro(,|$)/);
  });
});
