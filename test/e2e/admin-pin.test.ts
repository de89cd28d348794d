/**
 * Issue 15 item 4, end to end with kluis running as another user (setpriv to uid/gid 65534, the
 * way the deployed station runs as its own `kluis` user). The station folder belongs to that
 * user, as in deploy/: then keys/admin.pub is theirs too, and they could replace it and sign any
 * config. kluis refuses to start on such a pin (E_CONFIG_PIN_UNPROTECTED). With the pin root-owned
 * elsewhere (KLUIS_ADMIN_PIN, as the systemd unit sets it), the station starts, the user cannot
 * replace the pin, and a config they sign with a key of their own is refused.
 *
 * Needs root (CI runs as root) and a build (bin/kluis.js runs dist/).
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kluisBin, makeStation, repoRoot, runKluis, type RunResult } from '../helpers/kluis.js';
import { readConfigFile, writeSignedConfig } from '../../src/config/load.js';
import { generateKey } from '../../src/seal/keys.js';

const UID = 65534;

/** `kluis ARGS` as uid/gid 65534 with no supplementary groups. */
function asServiceUser(args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync('setpriv', [`--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', process.execPath, kluisBin, ...args], {
    encoding: 'utf8',
    cwd: repoRoot,
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Gives `dir` and everything below it to the service user. */
function chownTree(dir: string): void {
  spawnSync('chown', ['-R', `${UID}:${UID}`, dir]);
}

describe.runIf(process.getuid?.() === 0)('the admin pin and the service user', () => {
  it('refuses to start on a pin the service user owns; starts on a root-owned one it cannot replace', async () => {
    const st = makeStation();
    chmodSync(path.dirname(st.dir), 0o755); // the mkdtemp folder above the station: readable, root's
    chownTree(st.dir);

    // The pin beside the config, now the service user's (what deploy/ used to give it).
    const refused = asServiceUser(['status', '--config', st.config]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/\[E_CONFIG_PIN_UNPROTECTED\]/);
    expect(refused.stderr).toContain(path.join(st.dir, 'keys', 'admin.pub'));
    expect(refused.stderr).toMatch(/kluis: hint: .*KLUIS_ADMIN_PIN/);

    // The pin root-owned in a root-owned folder, named by KLUIS_ADMIN_PIN (the unit sets it).
    const etc = mkdtempSync(path.join(os.tmpdir(), 'kluis-etc-'));
    chmodSync(etc, 0o755);
    const pin = path.join(etc, 'admin.pub');
    copyFileSync(path.join(st.dir, 'keys', 'admin.pub'), pin);
    chownSync(pin, 0, 0);
    chmodSync(pin, 0o644);
    const env = { KLUIS_ADMIN_PIN: pin };
    const ok = asServiceUser(['status', '--config', st.config], env);
    expect(ok.code, ok.stderr).toBe(0);
    // The admin, as root, adds a target on the station: the new revision is remembered in a
    // state file the service user can still read, and the station starts on it.
    const add = runKluis(['targets', 'add', 'nas', '--config', st.config, '--type', 'fs', '--url', 'nas', '--admin-key', st.adminKey], env);
    expect(add.code, add.stderr).toBe(0);
    expect(statSync(path.join(st.dir, 'state', 'config-revision.json')).uid).toBe(UID);
    chownTree(st.dir); // kluis.json itself, rewritten by root
    const after = asServiceUser(['status', '--config', st.config], env);
    expect(after.code, after.stderr).toBe(0);

    // The service user cannot replace that pin…
    const w = spawnSync('setpriv', [`--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', 'sh', '-c', `echo mine > ${pin}`]);
    expect(w.status).not.toBe(0);
    expect(readFileSync(pin, 'utf8')).toBe(readFileSync(path.join(st.dir, 'keys', 'admin.pub'), 'utf8'));
    // …and a config it signs with a key of its own is refused (it may write kluis.json).
    const { raw } = await readConfigFile(st.config);
    const evil = path.join(st.dir, 'evil-store');
    mkdirSync(evil);
    await writeSignedConfig(st.config, { ...(raw as object), targets: [...(raw as { targets: unknown[] }).targets, { name: 'evil', type: 'fs', url: evil }] }, generateKey('admin'));
    chownTree(st.dir);
    const wrong = asServiceUser(['status', '--config', st.config], env);
    expect(wrong.code).toBe(7);
    expect(wrong.stderr).toMatch(/\[E_CONFIG_WRONG_SIGNER\]/);
    // Without KLUIS_ADMIN_PIN it would fall back to its own keys/admin.pub: refused, whatever it holds.
    writeFileSync(path.join(st.dir, 'keys', 'admin.pub'), readFileSync(pin, 'utf8'));
    chownTree(st.dir);
    expect(asServiceUser(['status', '--config', st.config]).stderr).toMatch(/\[E_CONFIG_PIN_UNPROTECTED\]/);
  });
});
