/**
 * `kluis serve` on a port another program holds (issue 15, item 14): one error with its code and
 * hint, then the process ends with a non-zero exit code. Before the fix it printed
 * E_DASHBOARD_PORT and then "database connection is not open" three times a second, forever (the
 * journal poller ran on after the station was closed); the run below would then be ended by the
 * spawn's kill guard, with a signal and no exit code.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as net from 'node:net';
import { makeStation, runKluis, type TestStation } from '../helpers/kluis.js';

let st: TestStation;
let busy: net.Server;
let port = 0;

beforeAll(async () => {
  st = makeStation();
  busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
  port = (busy.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => busy.close(() => resolve()));
});

describe('kluis serve on a busy port', () => {
  it('exits non-zero after one clear error and prints nothing after it', () => {
    // The kill guard only ends a hang; a correct run ends on its own long before it.
    const r = runKluis(['serve', '--config', st.config, '--port', String(port)], {}, { timeoutMs: 30_000 });
    expect(r.signal, `serve did not end by itself; stderr:\n${r.stderr}`).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^kluis: error: port ${port} on 127\\.0\\.0\\.1 is in use \\[E_DASHBOARD_PORT\\]$`));
    expect(lines[1]).toMatch(/^kluis: hint: choose another --port/);
  });
});
