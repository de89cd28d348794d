/**
 * No plaintext left after Ctrl-C (issue 15, item 10). `kluis decrypt -` stopped with SIGINT or
 * SIGTERM while it writes, `kluis export` stopped while it decrypts, and `kluis verify` stopped
 * while its essence recheck holds a decrypted temp, leave no temp behind: not beside OUT, not in
 * the export folder, not in the temp dir (TMPDIR is a private folder here, so anything in it is
 * the child's). A run killed with SIGKILL cannot clean up; its leftover is swept by the next run
 * of the same command.
 *
 * Each child is stopped once its temp exists (the test polls for it; no timing is asserted).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKey, writeSecretKeyFile } from '../../src/seal/keys.js';
import { sealBytes } from '../../src/seal/index.js';
import { kluisBin, makeStation, repoRoot, runKluis, parseJson, until, type TestStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

let work: string;
let keyFile: string;
let sealed: Buffer;

function start(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [kluisBin, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdin!.on('error', () => undefined); // EPIPE once the child is gone: expected here
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

/** Entries of `dir` other than `except`. */
function others(dir: string, except: string[] = []): string[] {
  return readdirSync(dir).filter((n) => !except.includes(n));
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kluis-interrupt-'));
  const key = generateKey('recipient');
  keyFile = path.join(work, 'evidence.key');
  await writeSecretKeyFile(keyFile, key);
  sealed = Buffer.from(sealBytes(randomBytes(8 * 1024 * 1024), [key.publicKey]));
});

describe('decrypt - interrupted', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`leaves no plaintext temp beside OUT on ${sig}`, async () => {
      const outDir = path.join(work, `out-${sig}`);
      mkdirSync(outDir);
      const run = start(['decrypt', '-', '--identity', keyFile, '-o', path.join(outDir, 'plain.bin')]);
      // Half of the sealed bytes, and stdin stays open: decrypt writes its temp and waits for more.
      run.child.stdin!.write(sealed.subarray(0, sealed.length / 2));
      await until(() => others(outDir).length > 0);
      run.child.kill(sig);
      const r = await run.exited;
      expect(r.signal ?? r.code, r.stderr).toBe(sig);
      expect(readdirSync(outDir)).toEqual([]);
    });
  }

  it('a leftover of a SIGKILLed run is swept by the next decrypt into that folder', async () => {
    const outDir = path.join(work, 'out-kill');
    mkdirSync(outDir);
    const run = start(['decrypt', '-', '--identity', keyFile, '-o', path.join(outDir, 'plain.bin')]);
    run.child.stdin!.write(sealed.subarray(0, sealed.length / 2));
    await until(() => others(outDir).length > 0);
    run.child.kill('SIGKILL');
    await run.exited;
    const left = readdirSync(outDir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.kluis-part-\d+-[0-9a-f]{12}-[0-9a-f]{12}\.tmp$/);

    const file = path.join(work, 'whole.sealed');
    writeFileSync(file, sealed);
    const r = runKluis(['decrypt', file, '--identity', keyFile, '-o', path.join(outDir, 'other.bin')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(outDir)).toEqual(['other.bin']);
  });
});

describe('verify interrupted during its essence recheck', () => {
  let st: TestStation;
  let batchId: string;

  beforeAll(() => {
    st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [{ kind: 'mp4', name: 'DJI_0001.MP4', seconds: 3 }]);
    const r = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    batchId = parseJson(r).batchId;
  });

  it('export leaves no temp folder in OUT on SIGINT, and a SIGKILLed export\'s is swept by the next export into OUT', async () => {
    const out = path.join(work, 'export-int');
    const hidden = (): string[] => (readdirSync(out, { withFileTypes: true }) as Array<{ name: string }>).map((e) => e.name).filter((n) => n.startsWith('.kluis-part-'));
    const run = start(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out]);
    await until(() => existsSync(out) && hidden().length > 0);
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r.signal ?? r.code, r.stderr).toBe('SIGINT');
    expect(hidden()).toEqual([]);

    const out2 = path.join(work, 'export-kill');
    const killed = start(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out2]);
    await until(() => existsSync(out2) && readdirSync(out2).some((n) => n.startsWith('.kluis-part-')));
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(readdirSync(out2).filter((n) => n.startsWith('.kluis-part-'))).toHaveLength(1);
    const again = runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out2, '--into-existing']);
    expect(again.code, again.stderr).toBe(0);
    expect(readdirSync(out2).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('leaves nothing in the temp dir on SIGINT', async () => {
    const tmp = mkdtempSync(path.join(work, 'tmpdir-'));
    const run = start(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey], { TMPDIR: tmp });
    await until(() => others(tmp).length > 0);
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r.signal ?? r.code, r.stderr).toBe('SIGINT');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a leftover of a SIGKILLed run is swept when verify starts again', async () => {
    const tmp = mkdtempSync(path.join(work, 'tmpdir-'));
    const run = start(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey], { TMPDIR: tmp });
    await until(() => others(tmp).length > 0);
    run.child.kill('SIGKILL');
    await run.exited;
    const left = readdirSync(tmp);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^kluis-part-\d+-[0-9a-f]{12}-[0-9a-f]{12}$/);
    const r = runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey], { TMPDIR: tmp });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
