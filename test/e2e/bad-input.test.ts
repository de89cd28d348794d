/**
 * Bad input never stops the other files (issue 3): a file that cannot be read, and a file that
 * vanishes between the listing and its read, each get `failed` with a code and message in the
 * JSON and on stderr, while the rest is secured and the exit code says "partial" (3).
 *
 * The station runs as root here and in CI, and root reads any file; so the unreadable case runs
 * kluis without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (setpriv), where file modes apply to root too.
 */
import { describe, it, expect } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, spawn } from 'node:child_process';
import { makeStation, kluisBin, auditEntries, until } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

const DROP = ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search'];

function byPath(out: any, p: string): any {
  return out.files.find((f: any) => f.path === p);
}

describe('bad input', () => {
  it('an unreadable file is failed with E_CARD_READ; the others are secured', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-bad-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'jpeg', name: 'DJI_0002.JPG' },
    ]);
    const locked = path.join(card, 'DCIM', '100MEDIA', 'DJI_0002.JPG');
    chmodSync(locked, 0o000);
    const r = spawnSync('setpriv', [...DROP, process.execPath, kluisBin, 'ingest', card, '--config', st.config, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(3);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('partial');
    expect(byPath(out, 'DCIM/100MEDIA/DJI_0001.JPG').status).toBe('secured');
    const bad = byPath(out, 'DCIM/100MEDIA/DJI_0002.JPG');
    expect(bad.status).toMatch(/^(failed|rejected)$/);
    expect(bad.error.code).toBe('E_CARD_READ');
    expect(bad.error.message).toMatch(/DJI_0002\.JPG/);
    expect(r.stderr).toMatch(/kluis: error: .*DJI_0002\.JPG.*\[E_CARD_READ\]/);
    expect(r.stderr).toMatch(/kluis: hint: /);
  });

  it('a file that vanishes before it is read is failed; the others are secured', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-vanish-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [
      { kind: 'jpeg', name: 'DJI_0001.JPG' },
      { kind: 'jpeg', name: 'DJI_0002.JPG' },
      { kind: 'jpeg', name: 'DJI_0003.JPG' },
    ]);
    const child = spawn(process.execPath, [kluisBin, 'ingest', card, '--config', st.config, '--json'], {
      env: { ...process.env, KLUIS_TEST_ACQUIRE_DELAY_MS: '700' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // As soon as the first file is acquired, the last one disappears from the card.
    await until(() => existsSync(st.audit) && auditEntries(st, 'file-acquired').length >= 1);
    rmSync(path.join(card, 'DCIM', '100MEDIA', 'DJI_0003.JPG'));
    const code = await exited;
    expect(code, stderr).toBe(3);
    const out = JSON.parse(stdout);
    expect(byPath(out, 'DCIM/100MEDIA/DJI_0001.JPG').status).toBe('secured');
    expect(byPath(out, 'DCIM/100MEDIA/DJI_0002.JPG').status).toBe('secured');
    const gone = byPath(out, 'DCIM/100MEDIA/DJI_0003.JPG');
    expect(gone.status).toBe('failed');
    expect(gone.error.code).toBe('E_CARD_READ');
    expect(gone.error.message).toMatch(/disappeared/);
    expect(stderr).toMatch(/kluis: error: .*DJI_0003\.JPG.*\[E_CARD_READ\]/);
    expect(readFileSync(st.audit, 'utf8')).toMatch(/"file":"DCIM\/100MEDIA\/DJI_0003.JPG"/);
  });
});
