/**
 * Process helpers for lock tests: load a few src/ modules as plain JS in a separate node (no
 * build needed), start a process under a parent that never reaps it (so it stays a zombie when
 * it dies), and read a process's state from /proc. Linux only, like the station.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');

/**
 * Transpiles `modules` (paths under src/, e.g. 'pipeline/lock.ts') and the src/ modules they
 * import (relative imports, followed) into a temp folder that resolves packages from the
 * repository's node_modules. Returns the folder; import './pipeline/lock.js' from a module script
 * run there.
 */
export function plainJs(modules: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-plainjs-'));
  const todo = [...modules];
  const done = new Set<string>();
  for (let m = todo.shift(); m !== undefined; m = todo.shift()) {
    if (done.has(m)) continue;
    done.add(m);
    const out = path.join(dir, m.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(out), { recursive: true });
    const js = ts.transpileModule(readFileSync(path.join(root, 'src', m), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    writeFileSync(out, js);
    // Type-only imports are gone from the output; what is left is loaded at run time.
    for (const [, spec] of js.matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)\.js'/g)) {
      todo.push(path.posix.join(path.posix.dirname(m), `${spec!}.ts`));
    }
  }
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** The one-letter state of a process (R, S, T stopped, Z zombie…), or undefined when it is gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is a zombie whose threads have all ended: its leader thread shows Z as soon as
 * it exits, while node's other threads may still be on their way out (holding its files).
 */
export function isSettledZombie(pid: number): boolean {
  if (procState(pid) !== 'Z') return false;
  try {
    return readdirSync(`/proc/${pid}/task`).length === 1;
  } catch {
    return false;
  }
}

/** Whether kill(pid, 0) says the pid exists (true for a zombie too: the old lock's test). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface Orphanage {
  /** The process that runs the command: leader of its own process group, child of `parent`. */
  pid: number;
  /** Its parent, a `sleep` that never reaps it: once the command dies it stays a zombie. */
  parent: ChildProcess;
  /** Everything the command printed on stdout so far. */
  stdout(): string;
  /** Kills the non-reaping parent (init then reaps the zombie). */
  end(): void;
}

/**
 * Starts `cmd args` in a new session and process group, as the child of a `sleep` that never
 * calls wait(): what a container whose init does not reap orphans gives. `sh` starts the command
 * in the background, prints its pid, then becomes `sleep` in place.
 */
export async function startUnreaped(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Orphanage> {
  const parent = spawn('sh', ['-c', 'setsid "$@" & echo "pid $!"; exec sleep 100000', 'sh', cmd, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  let out = '';
  parent.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const pid = await new Promise<number>((resolve, reject) => {
    const check = (): void => {
      const m = /^pid (\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    };
    parent.stdout!.on('data', check);
    parent.on('exit', () => reject(new Error('the non-reaping parent exited early')));
  });
  return {
    pid,
    parent,
    stdout: () => out,
    end: () => {
      try {
        process.kill(-parent.pid!, 'SIGKILL');
      } catch {
        /* gone already */
      }
    },
  };
}
