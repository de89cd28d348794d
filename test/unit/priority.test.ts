/**
 * Proof tools run at a lower CPU priority than the card read (src/wrappers/priority.ts): a child
 * gets nice 10, one already lower keeps its priority, and a child that is gone is no error; a
 * sanitize/seal worker thread lowers itself alone, not the card reader's thread.
 */
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { asBackgroundThread, asBackgroundWork, BACKGROUND_NICE } from '../../src/wrappers/priority.js';

const children: Array<ReturnType<typeof spawn>> = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function sleeper(): ReturnType<typeof spawn> {
  const c = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(c);
  return c;
}

describe('asBackgroundWork', () => {
  it('lowers a child to nice 10', () => {
    const c = sleeper();
    expect(os.getPriority(c.pid!)).toBeLessThan(BACKGROUND_NICE);
    asBackgroundWork(c);
    expect(os.getPriority(c.pid!)).toBe(BACKGROUND_NICE);
  });

  it('never raises a priority that is lower already', () => {
    const c = sleeper();
    os.setPriority(c.pid!, 15);
    asBackgroundWork(c);
    expect(os.getPriority(c.pid!)).toBe(15);
  });

  it('is no error for a child that is gone or never started', async () => {
    const c = spawn('true', [], { stdio: 'ignore' });
    await new Promise((r) => c.on('exit', r));
    await new Promise((r) => setTimeout(r, 50)); // reaped
    expect(() => asBackgroundWork(c)).not.toThrow();
    expect(() => asBackgroundWork({ pid: undefined })).not.toThrow();
  });
});

describe('asBackgroundThread', () => {
  it('lowers only the calling thread to nice 10 (a worker thread doing proofs), not the others of the process', async () => {
    const tidOf = (): number => Number(readlinkSync('/proc/thread-self').split('/').pop());
    const mainTid = tidOf();
    const before = os.getPriority(mainTid);
    const other = new Worker(
      `require('node:worker_threads').parentPort.postMessage(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop())); setTimeout(() => {}, 5000);`,
      { eval: true },
    );
    const otherTid = await new Promise<number>((r) => other.once('message', r));
    try {
      expect(otherTid).not.toBe(mainTid);
      asBackgroundThread(); // this test's own thread plays the proof worker
      expect(os.getPriority(mainTid)).toBe(Math.max(before, BACKGROUND_NICE));
      expect(os.getPriority(otherTid)).toBe(before);
    } finally {
      await other.terminate();
    }
  });
});
