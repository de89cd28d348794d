/**
 * The spawner process (spawner.ts starts it): a small node process that starts short-lived tools
 * for a kluis thread, so that kluis itself, hundreds of MB large, is not forked once per tool.
 * Promises: each `run` request starts `bin argv` without a shell, at background priority, stdin
 * closed; it answers once with the collected stdout (at most `collectStdout` bytes, else killed
 * and answered `output`), the last `stderrTail` bytes of stderr and the exit code or signal; or
 * `timeout` (killed after `timeoutMs`), or `spawn` (could not start: errno code and message). A
 * `kill` request kills the tool and its answer says `killed`. When kluis goes away (the IPC
 * channel closes) every tool still running is killed and this process ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { asBackgroundWork } from './priority.js';
import type { SpawnReply, SpawnRequest } from './spawner.js';

if (!process.send) throw new Error('wrappers/spawner-child.js runs only as the spawner process');

const running = new Map<number, { child: ChildProcess; killedBy: SpawnReply['outcome'] | null }>();
const reply = (m: SpawnReply): void => {
  process.send?.(m);
};

function run(m: Extract<SpawnRequest, { t: 'run' }>): void {
  let child: ChildProcess;
  try {
    child = spawn(m.bin, m.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply({ t: 'done', id: m.id, outcome: 'spawn', code: null, signal: null, stdout: Buffer.alloc(0), stderr: '', errno: e.code ?? null, message: e.message });
    return;
  }
  asBackgroundWork(child);
  const entry = { child, killedBy: null as SpawnReply['outcome'] | null };
  running.set(m.id, entry);
  const out: Buffer[] = [];
  let outBytes = 0;
  let tail = Buffer.alloc(0);
  let spawnError: NodeJS.ErrnoException | null = null;
  const kill = (why: SpawnReply['outcome']): void => {
    entry.killedBy ??= why;
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => kill('timeout'), m.timeoutMs);
  child.stdout!.on('data', (c: Buffer) => {
    if (entry.killedBy) return;
    outBytes += c.length;
    if (outBytes > m.collectStdout) kill('output');
    else out.push(c);
  });
  child.stderr!.on('data', (c: Buffer) => {
    tail = Buffer.concat([tail, c]);
    if (tail.length > m.stderrTail) tail = tail.subarray(tail.length - m.stderrTail);
  });
  let answered = false;
  const answer = (code: number | null, signal: NodeJS.Signals | null): void => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    running.delete(m.id);
    const base = { t: 'done' as const, id: m.id, code, signal, stdout: Buffer.concat(out), stderr: tail.toString('utf8') };
    if (spawnError) reply({ ...base, outcome: 'spawn', errno: spawnError.code ?? null, message: spawnError.message });
    else reply({ ...base, outcome: entry.killedBy ?? 'exit' });
  };
  child.on('error', (err: NodeJS.ErrnoException) => {
    spawnError = err;
    if (child.pid === undefined) answer(null, null); // never started: no 'close' to wait for
  });
  child.on('close', answer);
}

process.on('message', (m: SpawnRequest) => {
  if (m.t === 'run') run(m);
  else if (m.t === 'kill') {
    const r = running.get(m.id);
    if (r) {
      r.killedBy ??= 'killed';
      r.child.kill('SIGKILL');
    }
  }
});

process.on('disconnect', () => {
  for (const { child } of running.values()) child.kill('SIGKILL');
  process.exit(0);
});
