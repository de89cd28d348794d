/**
 * Issue 15 item 4: the admin key pin sat beside the config, writable by the service user;
 * replacing keys/admin.pub and re-signing let that user add any target. The rule now
 * (src/config/pin.ts): only root may be able to change the pin, so the pin and every folder
 * above it are root's and not writable by group or others (a sticky folder such as /tmp
 * excepted). Here the rule itself, with files given to another uid by chown (so: run as root,
 * as CI does); test/e2e/admin-pin.test.ts runs kluis as another user.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pinFileFor, pinProblem } from '../../src/config/pin.js';
import { loadConfig, readConfigFile, writeSignedConfig } from '../../src/config/load.js';
import { formatPublicKey, generateKey, writeSecretKeyFile } from '../../src/seal/keys.js';

const OTHER = 12345; // a uid that is not root: the service user, in these tests
const asRoot = process.getuid?.() === 0;

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-pin-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A station folder as `kluis init` makes it: kluis.json signed, keys/admin.pub pinned. */
async function station(): Promise<{ config: string; pin: string; admin: ReturnType<typeof generateKey> }> {
  const admin = generateKey('admin');
  const st = path.join(dir, 'station');
  mkdirSync(path.join(st, 'keys'), { recursive: true, mode: 0o755 });
  const pin = path.join(st, 'keys', 'admin.pub');
  writeFileSync(pin, `${formatPublicKey(admin.publicKey)}\n`, { mode: 0o644 });
  const config = path.join(st, 'kluis.json');
  await writeSignedConfig(
    config,
    {
      version: 1,
      station: 's',
      stationKey: formatPublicKey(generateKey('station').publicKey),
      recipients: [formatPublicKey(generateKey('recipient').publicKey)],
      targets: [{ name: 'local', type: 'fs', url: 'store' }],
    },
    admin,
  );
  return { config, pin, admin };
}

describe.runIf(asRoot)('the admin pin must be out of reach of everyone but root', () => {
  it('accepts a root-owned pin in root-owned folders (the sticky /tmp above them included)', async () => {
    const { config, pin } = await station();
    expect(pinProblem(pin)).toBeUndefined();
    await expect(loadConfig(config)).resolves.toMatchObject({ config: { station: 's' } });
  });

  it('refuses a pin owned by another user: that user could swap it and sign any config (E_CONFIG_PIN_UNPROTECTED)', async () => {
    const { config, pin } = await station();
    chownSync(pin, OTHER, OTHER);
    expect(pinProblem(pin)).toMatchObject({ path: pin, reason: expect.stringContaining(`uid ${OTHER}`) });
    await expect(loadConfig(config)).rejects.toMatchObject({ code: 'E_CONFIG_PIN_UNPROTECTED', message: expect.stringContaining(pin) });
  });

  it('refuses a root-owned pin in a folder another user owns (they could rename it away and put theirs)', async () => {
    const { config, pin } = await station();
    chownSync(path.dirname(pin), OTHER, OTHER);
    expect(pinProblem(pin)).toMatchObject({ path: path.dirname(pin) });
    chownSync(path.dirname(pin), 0, 0);
    chownSync(path.dirname(path.dirname(pin)), OTHER, OTHER); // the station folder, as in deploy/
    expect(pinProblem(pin)).toMatchObject({ path: path.dirname(path.dirname(pin)) });
    await expect(loadConfig(config)).rejects.toMatchObject({ code: 'E_CONFIG_PIN_UNPROTECTED' });
  });

  it('refuses group- or world-writable pins and folders; a world-writable folder only with the sticky bit', async () => {
    const { pin } = await station();
    chmodSync(pin, 0o664);
    expect(pinProblem(pin)?.reason).toMatch(/group/);
    chmodSync(pin, 0o646);
    expect(pinProblem(pin)?.reason).toMatch(/everyone/);
    chmodSync(pin, 0o644);
    chmodSync(path.dirname(pin), 0o777);
    expect(pinProblem(pin)).toMatchObject({ path: path.dirname(pin) });
    chmodSync(path.dirname(pin), 0o1777);
    expect(pinProblem(pin)).toBeUndefined();
  });

  it('follows a symbolic link: a root-owned link to a pin another user can change is refused', async () => {
    const { pin } = await station();
    const theirs = path.join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o755 });
    writeFileSync(path.join(theirs, 'admin.pub'), 'x', { mode: 0o644 });
    chownSync(theirs, OTHER, OTHER);
    const link = path.join(dir, 'link.pub');
    symlinkSync(path.join(theirs, 'admin.pub'), link);
    expect(pinProblem(link)).toMatchObject({ path: theirs });
    const good = path.join(dir, 'good.pub');
    symlinkSync(pin, good);
    expect(pinProblem(good)).toBeUndefined();
  });

  it('the pin can live elsewhere: KLUIS_ADMIN_PIN, or adminPin in the signed config; the one used must pass the rule', async () => {
    const { config, pin, admin } = await station();
    const etc = path.join(dir, 'etc-kluis');
    mkdirSync(etc, { mode: 0o755 });
    const moved = path.join(etc, 'admin.pub');
    writeFileSync(moved, `${formatPublicKey(admin.publicKey)}\n`, { mode: 0o644 });
    chownSync(pin, OTHER, OTHER); // the old place, now the service user's: no longer used
    const { raw } = await readConfigFile(config);
    expect(pinFileFor(path.dirname(config), raw, pin, { KLUIS_ADMIN_PIN: moved })).toBe(moved);
    process.env.KLUIS_ADMIN_PIN = moved;
    try {
      await expect(loadConfig(config)).resolves.toMatchObject({ layout: { adminPinFile: moved } });
    } finally {
      delete process.env.KLUIS_ADMIN_PIN;
    }
    await expect(loadConfig(config)).rejects.toMatchObject({ code: 'E_CONFIG_PIN_UNPROTECTED' });
    // Named in the signed config: the admin's choice, and re-signing is needed to change it.
    await writeSignedConfig(config, { ...(raw as object), adminPin: moved }, admin);
    await expect(loadConfig(config)).resolves.toMatchObject({ layout: { adminPinFile: moved } });
    // A config naming a pin the service user made is refused, whatever key is in it.
    const mine = generateKey('admin');
    const fake = path.join(dir, 'fake.pub');
    writeFileSync(fake, `${formatPublicKey(mine.publicKey)}\n`);
    chownSync(fake, OTHER, OTHER);
    await writeSecretKeyFile(path.join(dir, 'mine.key'), mine);
    await writeSignedConfig(config, { ...(raw as object), adminPin: fake, targets: [{ name: 'evil', type: 'fs', url: '/tmp/evil' }] }, mine);
    await expect(loadConfig(config)).rejects.toMatchObject({ code: 'E_CONFIG_PIN_UNPROTECTED' });
  });
});
