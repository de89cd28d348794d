/**
 * Shared e2e helpers: run the real `kluis` command (bin/kluis.js → dist/, so build first with
 * `npm run build`), make a throw-away station with `kluis init`, re-sign its config with changes,
 * and look at what a station holds (store objects, spool plaintext, journal rows, audit lines).
 *
 * They never mock kluis: every helper goes through the command or reads files it wrote. Other
 * test files may import them; keep each helper small and its contract in its comment.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Sqlite } from '../../src/util/sqlite.js';
import { readSecretKeyFile } from '../../src/seal/keys.js';
import { writeSignedConfig } from '../../src/config/load.js';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const kluisBin = path.join(repoRoot, 'bin', 'kluis.js');

export interface RunResult {
  code: number | null;
  /** The signal that ended the process (e.g. 'SIGKILL' after a crash point), or null. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `kluis ARGS` to completion with extra environment variables; never throws on exit code. */
export function runKluis(args: string[], env: NodeJS.ProcessEnv = {}, opts: { timeoutMs?: number; cwd?: string } = {}): RunResult {
  const r = spawnSync(process.execPath, [kluisBin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    cwd: opts.cwd ?? repoRoot,
    maxBuffer: 64 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 180_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Like runKluis, but without blocking the test process (so a test can run several at once). */
export function runKluisAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return spawnKluis(args, env).exited;
}

/** Runs `fn` over `items` with at most `limit` at a time; results in input order. */
export async function limited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** Starts `kluis ARGS` in the background (for `watch`); the caller waits on `exited`. */
export function spawnKluis(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; exited: Promise<RunResult>; stderr: () => string } {
  const child = spawn(process.execPath, [kluisBin, ...args], { env: { ...process.env, ...env }, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<RunResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, exited, stderr: () => stderr };
}

export interface TestStation {
  dir: string;
  config: string;
  store: string;
  spool: string;
  journal: string;
  audit: string;
  evidenceKey: string;
  adminKey: string;
}

/** `kluis init` in a fresh temp folder (or in `dir`); the default target is the fs store DIR/store. */
export function makeStation(dir?: string): TestStation {
  const root = dir ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'kluis-st-')), 'station');
  const r = runKluis(['init', '--dir', root, '--station', 'test-station']);
  if (r.code !== 0) throw new Error(`kluis init failed (${r.code}): ${r.stderr}`);
  return {
    dir: root,
    config: path.join(root, 'kluis.json'),
    store: path.join(root, 'store'),
    spool: path.join(root, 'spool'),
    journal: path.join(root, 'state', 'journal.db'),
    audit: path.join(root, 'state', 'audit.jsonl'),
    evidenceKey: path.join(root, 'keys', 'evidence.key'),
    adminKey: path.join(root, 'keys', 'admin.key'),
  };
}

/** Changes the station's config (policy, targets, watchRoots…) and signs it again with its admin key. */
export async function editConfig(st: TestStation, change: (config: Record<string, unknown>) => void): Promise<void> {
  const doc = JSON.parse(readFileSync(st.config, 'utf8')) as { config: Record<string, unknown> };
  change(doc.config);
  await writeSignedConfig(st.config, doc.config, await readSecretKeyFile(st.adminKey, 'admin'));
}

/** Every file below `dir`, recursively, as paths relative to it ('/'-separated). Missing dir: []. */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/** Objects in an fs store: every file, visible or not (temp files included, so tests can see them). */
export function storeObjects(st: TestStation): string[] {
  return listFiles(st.store);
}

/** Spool files that hold plaintext (acquired/, sanitized/, thumbs/); sealed/ is ciphertext. */
export function spoolPlaintext(st: TestStation): string[] {
  return listFiles(st.spool).filter((p) => /\/(acquired|sanitized|thumbs)\//.test(`/${p}`));
}

/** Runs a read-only query on the station's journal (a separate connection; WAL allows it). */
export function journalQuery<T = Record<string, unknown>>(st: TestStation, sql: string, ...params: unknown[]): T[] {
  const db = new Sqlite(st.journal, { readOnly: true, mustExist: true });
  try {
    return db.prepare(sql).all(...(params as [])) as T[];
  } finally {
    db.close();
  }
}

/** The audit log's entries (JSON lines), optionally only those of one type. */
export function auditEntries(st: TestStation, type?: string): Array<Record<string, unknown> & { type: string; time: string }> {
  if (!existsSync(st.audit)) return [];
  const lines = readFileSync(st.audit, 'utf8').split('\n').filter(Boolean);
  const all = lines.map((l) => JSON.parse(l) as Record<string, unknown> & { type: string; time: string });
  return type ? all.filter((e) => e.type === type) : all;
}

/** The JSON document a `--json` command printed, or a thrown Error quoting stderr. */
export function parseJson<T = any>(r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`no JSON on stdout (exit ${r.code}, signal ${r.signal}); stderr:\n${r.stderr}`);
  }
}

/**
 * Waits until the background process printed a JSON line (`--json` event stream) that `pred`
 * accepts, and returns it. Rejects when the process exits first (with its stderr).
 */
export function waitForEvent<T = Record<string, any>>(
  proc: ReturnType<typeof spawnKluis>,
  pred: (e: Record<string, any>) => boolean,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buf = '';
    const onData = (s: string): void => {
      buf += s;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let e: Record<string, any>;
        try {
          e = JSON.parse(line) as Record<string, any>;
        } catch {
          continue;
        }
        if (pred(e)) {
          cleanup();
          resolve(e as T);
          return;
        }
      }
    };
    const onExit = (): void => {
      cleanup();
      reject(new Error(`kluis exited before the awaited event; stderr:\n${proc.stderr()}`));
    };
    const cleanup = (): void => {
      proc.child.stdout!.off('data', onData);
      proc.child.off('exit', onExit);
    };
    proc.child.stdout!.on('data', onData);
    proc.child.on('exit', onExit);
  });
}

/** Polls `fn` every 50 ms until it returns a truthy value (no time limit: the test timeout is the limit). */
export async function until<T>(fn: () => T | Promise<T>): Promise<NonNullable<T>> {
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 50));
  }
}
