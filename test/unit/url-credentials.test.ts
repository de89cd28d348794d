/**
 * a target URL that carries a user name and password (`http://user:pass@host/dav/`).
 * Credentials belong in credentials.env / credentials.file, never in the config; but the schema
 * takes any string, and Node's http client turns URL userinfo into a Basic Authorization header
 * by itself. So the WebDAV target sent that password in clear over plain http to any onprem
 * address (the "password only over TLS or to loopback" rule knows only configured credentials),
 * and messages that print the URL printed the password. A URL with userinfo is now refused before
 * any connection, without echoing the secret. A loopback server stands in for the target and
 * records whether any request reached it.
 */
import { describe, it, expect, afterEach } from 'vitest';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openTarget } from '../../src/targets/index.js';
import type { Target } from '../../src/targets/index.js';
import { TargetConfigSchema, EgressSchema } from '../../src/config/schema.js';

const servers: http.Server[] = [];
const targets: Target[] = [];
afterEach(async () => {
  for (const t of targets.splice(0)) await t.close();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function server(): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const s = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.headers.authorization ?? '(no auth)'}`);
    res.statusCode = 404;
    res.end();
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, seen };
}

describe('credentials in a target URL', () => {
  for (const type of ['webdav', 's3'] as const) {
    it(`${type}: refused before any request, without printing the password`, async () => {
      const { port, seen } = await server();
      const cfg = TargetConfigSchema.parse({
        name: 'own',
        type,
        url: `http://kluis:Sup3rSecret@127.0.0.1:${port}/dav/`,
        ...(type === 's3' ? { bucket: 'b' } : {}),
      });
      const t = openTarget(cfg, {
        configDir: '/nonexistent',
        egress: EgressSchema.parse({}),
        env: { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' },
      });
      targets.push(t);
      const err = await t.head('batch/object').then(
        () => null,
        (e: unknown) => e as { code?: string; message?: string; hint?: string },
      );
      expect(err?.code).toBe('E_CONFIG_CREDENTIALS');
      expect(err?.hint).toBeTruthy();
      expect(`${err?.message} ${err?.hint}`).not.toContain('Sup3rSecret');
      expect(seen).toEqual([]);
    });
  }
});
