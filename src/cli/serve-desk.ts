/**
 * `kluis serve --desk --config FILE [--identity KEY…] [--port N]`: the evidence desk page
 * (src/dashboard/desk/server.ts). Prints the address with this start's token on stdout (one line) and runs
 * until Ctrl-C / SIGTERM. Without --identity it uses keys/evidence.key beside the config.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { info } from './output.js';
import { KluisError } from '../errors.js';
import { readSecretKeyFile } from '../seal/index.js';
import { loadSource } from '../evidence/source.js';
import { startDeskServer } from '../dashboard/desk/server.js';

export interface DeskServeOptions {
  config: string;
  port: number;
  bind: string;
  allowRemoteBind: boolean;
  identity?: string[];
  operator?: string;
}

export async function runDeskServe(opts: DeskServeOptions, untilSignal: () => Promise<void>): Promise<number> {
  const source = await loadSource(opts.config);
  let files = opts.identity ?? [];
  if (files.length === 0) {
    const beside = path.join(path.dirname(path.resolve(opts.config)), 'keys', 'evidence.key');
    if (!(await fsp.stat(beside).then(() => true, () => false))) {
      throw new KluisError('E_USAGE', 'the desk page needs the evidence key to read batches', { hint: `give --identity KEY, or put the key at ${beside}` });
    }
    files = [beside];
  }
  const identities = await Promise.all(files.map((f) => readSecretKeyFile(f, 'recipient')));
  const server = await startDeskServer(source, identities, {
    port: opts.port,
    bind: opts.bind,
    allowRemoteBind: opts.allowRemoteBind,
    operator: opts.operator ?? os.userInfo().username,
  });
  try {
    process.stdout.write(`${server.loginUrl}\n`);
    info(`evidence desk page (${source.stations.length} trusted station(s), ${source.targets.length} target(s), read-only): open the address above in a browser on this computer (the token in it is new each start; keep it to yourself). Ctrl-C stops it.`);
    await untilSignal();
    return 0;
  } finally {
    await server.close();
  }
}
