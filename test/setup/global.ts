/**
 * Vitest global set-up of the integration tier (vitest.config.ts): makes a fresh Debian machine
 * ready for the tests, then gives them their servers.
 *
 * 1. Tools: `scripts/setup-system.sh --test` installs the missing Debian packages (as root, or
 *    through sudo). When it cannot, the run stops here with what is missing and how to get it.
 * 2. Services (Ceph RGW for S3, Apache WebDAV, both on loopback): when KLUIS_SERVICES_ENV names
 *    an env file of services that are up, those are used and left running (a developer's own;
 *    when they do not answer, the run stops with that, and nothing of theirs is touched);
 *    otherwise `scripts/services/up.sh` starts them for this run, writing <repo>/.services.env,
 *    and the teardown stops them again with down.sh, so the next `npm test` can start at once.
 *    A stale .services.env left by a killed run is cleared with down.sh first.
 * KLUIS_NO_SERVICES=1 skips step 2 (fs-only local runs; tests that need the servers then fail).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function say(line: string): void {
  process.stderr.write(`test set-up: ${line}\n`);
}

function runScript(script: string, args: string[], env: NodeJS.ProcessEnv): { ok: boolean; output: string } {
  const r = spawnSync('bash', [path.join(repoRoot, script), ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

function servicesLive(envFile: string): boolean {
  if (!existsSync(envFile)) return false;
  const env = Object.fromEntries(
    readFileSync(envFile, 'utf8')
      .split('\n')
      .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  const ports = [env.KLUIS_S3_ENDPOINT, env.KLUIS_WEBDAV_URL].map((u) => (u ? new URL(u).port : ''));
  if (ports.some((p) => !p)) return false;
  // bash's /dev/tcp: no client tool needed, and it answers at once on loopback.
  return ports.every((p) => spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${p}`], { stdio: 'ignore' }).status === 0);
}

export default function setup(): () => void {
  const tools = runScript('scripts/setup-system.sh', ['--test'], process.env);
  if (!tools.ok) {
    throw new Error(`the test tools could not be installed:\n${tools.output}\nInstall them as the lines above say, then run npm test again.`);
  }
  if (process.env.KLUIS_NO_SERVICES === '1') {
    say('KLUIS_NO_SERVICES=1: not starting Ceph and WebDAV');
    return () => undefined;
  }
  const given = process.env.KLUIS_SERVICES_ENV;
  if (given && servicesLive(given)) {
    say(`using the running services of ${given}`);
    return () => undefined;
  }
  if (given && existsSync(given)) {
    // Someone else's services (a developer's, shared by several checkouts): never stopped from here.
    throw new Error(`KLUIS_SERVICES_ENV names ${given}, but its services do not answer; start them again (scripts/services/down.sh, then up.sh) or unset KLUIS_SERVICES_ENV to let the tests start their own`);
  }
  const envFile = given ?? path.join(repoRoot, '.services.env');
  const env = { ...process.env, KLUIS_SERVICES_ENV: envFile };
  if (existsSync(envFile)) {
    say(`clearing stale ${envFile}`);
    runScript('scripts/services/down.sh', [], env);
  }
  say('starting Ceph RGW and Apache WebDAV on 127.0.0.1');
  const up = runScript('scripts/services/up.sh', [], env);
  if (!up.ok) {
    runScript('scripts/services/down.sh', [], env);
    throw new Error(`the test services did not start:\n${up.output}`);
  }
  process.env.KLUIS_SERVICES_ENV = envFile;
  return () => {
    const down = runScript('scripts/services/down.sh', [], env);
    if (!down.ok) say(`stopping the services failed:\n${down.output}`);
  };
}

// Fail early, with the reason, when the suite runs on a Node older than the project supports.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  throw new Error(`kluis is built and tested on Node.js 24 LTS (this is ${process.version}); see the README's "Node.js 24" section`);
}
