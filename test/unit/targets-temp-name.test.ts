/**
 * The temp names fs and WebDAV share (src/targets/common.ts): what `tempName` makes, what
 * `parseTempName` reads back, and that `isDeadTemp` says yes only for this host's names whose
 * pid is certainly gone. The "dead" pid is a real child process that has exited. And that the fs
 * target, which now takes its names from there, still sweeps exactly those in a real folder.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { FsTarget } from '../../src/targets/fs.js';
import { TEMP_HOST, TEMP_PREFIX, isDeadTemp, parseTempName, tempName, validateKey } from '../../src/targets/common.js';
import { pidAlive } from '../../src/util/pid.js';
import { KluisError } from '../../src/errors.js';

let deadPid = 0;

beforeAll(async () => {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn a child process');
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  deadPid = pid;
  // 'exit' fires after waitpid reaped it; unless the pid was recycled at once it is gone.
  expect(pidAlive(deadPid)).toBe(false);
});

const hex = '0123456789abcdef';

describe('tempName / parseTempName', () => {
  it('names a temp after this host and process, hidden, with 16 hex of randomness', () => {
    const a = tempName();
    const b = tempName();
    expect(a).not.toBe(b);
    expect(a.startsWith(`${TEMP_PREFIX}${TEMP_HOST}-${process.pid}-`)).toBe(true);
    expect(a).toMatch(/-[0-9a-f]{16}$/);
    expect(parseTempName(a)).toEqual({ host: TEMP_HOST, pid: process.pid });
    // Hidden: a temp name can never be a key, so it never collides with an object.
    expect(() => validateKey(a)).toThrow(KluisError);
  });

  it('sanitizes the host as fs.ts always did: only letters, digits and "." survive', () => {
    expect(TEMP_HOST).toBe(os.hostname().replace(/[^A-Za-z0-9.]/g, '_'));
    expect(TEMP_HOST).not.toContain('-');
  });

  it('reads only names exactly of that form', () => {
    expect(parseTempName(`.kluis-tmp-st.example_1-4242-${hex}`)).toEqual({ host: 'st.example_1', pid: 4242 });
    for (const n of [
      `.kluis-tmp-${hex}`, // the old WebDAV form: no owner
      `.kluis-tmp-h-4242`, // no random part
      `.kluis-tmp-h-4242-${hex}x`,
      `.kluis-tmp-h-4242-${hex.toUpperCase()}`,
      `.kluis-tmp-h-0-${hex}`,
      `.kluis-tmp-h-0042-${hex}`,
      `.kluis-tmp-h-12345678901-${hex}`, // longer than any pid
      `.kluis-tmp-h-0x1f-${hex}`,
      `.kluis-tmp-h-1e3-${hex}`,
      `.kluis-tmp--4242-${hex}`, // empty host
      `.kluis-tmp-h-x-4242-${hex}`, // a host part with '-' is not one we made
      `x.kluis-tmp-h-4242-${hex}`,
      `kluis-tmp-h-4242-${hex}`,
      `.kluis-tmp-h-4242-${hex}/x`,
      '',
    ]) {
      expect(parseTempName(n), n).toBeNull();
    }
  });
});

describe('isDeadTemp', () => {
  it('is true for this host with a pid that has exited', () => {
    expect(isDeadTemp(`${TEMP_PREFIX}${TEMP_HOST}-${deadPid}-${hex}`)).toBe(true);
  });

  it('is false for a live pid, this process, another host, and non-temp names', () => {
    expect(isDeadTemp(`${TEMP_PREFIX}${TEMP_HOST}-${process.ppid}-${hex}`)).toBe(false);
    expect(isDeadTemp(tempName())).toBe(false);
    expect(isDeadTemp(`${TEMP_PREFIX}other${TEMP_HOST}-${deadPid}-${hex}`)).toBe(false);
    expect(isDeadTemp(`evidence${TEMP_PREFIX}${TEMP_HOST}-${deadPid}-${hex}`)).toBe(false);
    expect(isDeadTemp(`${TEMP_PREFIX}${TEMP_HOST}-${deadPid}`)).toBe(false);
  });

  it('asks the liveness check only about well-formed names of this host, never about itself', () => {
    const asked: number[] = [];
    const alive = (pid: number): boolean => {
      asked.push(pid);
      return false;
    };
    expect(isDeadTemp(`${TEMP_PREFIX}other${TEMP_HOST}-77-${hex}`, alive)).toBe(false);
    expect(isDeadTemp(tempName(), alive)).toBe(false);
    expect(asked).toEqual([]);
    expect(isDeadTemp(`${TEMP_PREFIX}${TEMP_HOST}-77-${hex}`, alive)).toBe(true);
    expect(isDeadTemp(`${TEMP_PREFIX}${TEMP_HOST}-78-${hex}`, () => true)).toBe(false);
    expect(asked).toEqual([77]);
  });
});

describe('fs target sweep (names from common.ts)', () => {
  it('a put removes this host\'s dead temps in its folder and nothing else', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'kluis-fs-sweep-'));
    try {
      const folder = path.join(root, 'b1');
      await fsp.mkdir(folder, { recursive: true });
      const dead = `${TEMP_PREFIX}${TEMP_HOST}-${deadPid}-${hex}`;
      const keep = [
        `${TEMP_PREFIX}${TEMP_HOST}-${process.ppid}-${hex}`,
        `${TEMP_PREFIX}other${TEMP_HOST}-${deadPid}-${hex}`,
        `${TEMP_PREFIX}${TEMP_HOST}-${deadPid}`,
        `x${TEMP_PREFIX}${TEMP_HOST}-${deadPid}-${hex}`,
      ];
      for (const n of [dead, ...keep]) await fsp.writeFile(path.join(folder, n), n);
      await fsp.writeFile(path.join(root, dead), 'in another folder');
      const t = new FsTarget('nas', root);
      const buf = Buffer.from('evidence');
      await t.put('b1/obj-1', () => Readable.from([buf]), { size: buf.length, sha256: createHash('sha256').update(buf).digest('hex') });
      expect((await fsp.readdir(folder)).sort()).toEqual([...keep, 'obj-1'].sort());
      expect(await fsp.readFile(path.join(root, dead), 'utf8')).toBe('in another folder');
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
