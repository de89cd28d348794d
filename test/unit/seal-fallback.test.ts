// When sodium-native cannot be loaded, sealing falls back to tweetnacl, says so (a notice, which
// the command line prints as a warning), and
// produces the same bytes. The native module's load failure is simulated by making the
// module loader refuse 'sodium-native' (nothing else is replaced).
import { expect, test, vi } from 'vitest';

vi.mock('node:module', async (orig) => {
  const real = await orig<typeof import('node:module')>();
  return {
    ...real,
    createRequire: (url: string | URL) => {
      const req = real.createRequire(url);
      return Object.assign((id: string) => {
        if (id === 'sodium-native') throw new Error('simulated: no prebuilt binary for this platform');
        return req(id);
      }, req);
    },
  };
});

test('without sodium-native: tweetnacl is used, the fallback is logged, explicit sodium is refused', async () => {
  const writes: string[] = [];
  const { onNotice } = await import('../../src/util/notices.js');
  const stop = onNotice((n) => writes.push(`${n.code}: ${n.message}`));
  try {
    const seal = await import('../../src/seal/index.js');
    const { generateKey } = await import('../../src/seal/keys.js');
    const { deterministicRandom } = await import('../../src/seal/det-random.js');
    expect(seal.sealImplementation()).toBe('tweetnacl');
    expect(writes.join('\n')).toMatch(/^W_SEAL_REFERENCE: sodium-native could not be loaded.*tweetnacl/m);
    const k = generateKey('recipient', deterministicRandom('fb'));
    const sealed = seal.sealBytes(new Uint8Array(70000).fill(3), [k.publicKey]);
    expect(seal.openBytes(sealed, [k]).length).toBe(70000);
    expect(() => seal.sealBytes(new Uint8Array(1), [k.publicKey], { impl: 'sodium' })).toThrow(/not available/);
  } finally {
    stop();
  }
});
