/**
 * Policy at ingest (issue 6): a config with one allowed target and one that policy refuses (a
 * "cloud" WebDAV target whose address is not in the Netherlands). The allowed target receives
 * everything, the refused one not a single connection, the batch is not secured because the
 * refused target was required, and the refusal is in the audit log and the JSON output.
 * And a tampered or foreign-signed config is refused before the card is read at all.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { makeStation, runKluis, editConfig, auditEntries, storeObjects, listFiles, type TestStation } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { writeSignedConfig } from '../../src/config/load.js';
import { readSecretKeyFile } from '../../src/seal/keys.js';

let work: string;
let card: string;
let server: https.Server;
let port: number;
let connections = 0;
let bytesIn = 0;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kluis-policy-'));
  card = makeCard(path.join(work, 'card'), [
    { kind: 'jpeg', name: 'DJI_0001.JPG' },
    { kind: 'mp4', name: 'DJI_0002.MP4', seconds: 1 },
  ]);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.2', '-days', '2',
    '-keyout', path.join(work, 'key.pem'), '-out', path.join(work, 'cert.pem')], { stdio: 'ignore' });
  server = https.createServer({ key: readFileSync(path.join(work, 'key.pem')), cert: readFileSync(path.join(work, 'cert.pem')) }, (req, res) => {
    req.on('data', (c: Buffer) => (bytesIn += c.length));
    req.on('end', () => res.writeHead(201).end());
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((r) => server.listen(0, '127.0.0.2', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('ingest with one allowed and one refused target', () => {
  let st: TestStation;
  let out: any;
  let code: number | null;

  it('delivers everything to the allowed target and zero bytes to the refused one', async () => {
    st = makeStation(path.join(work, 'station'));
    await editConfig(st, (c) => {
      (c.targets as unknown[]).push({ name: 'abroad', type: 'webdav', url: `https://127.0.0.2:${port}/dav/`, class: 'cloud', required: true, caFile: path.join(work, 'cert.pem') });
    });
    const r = runKluis(['ingest', card, '--config', st.config, '--json'], { KLUIS_RETRY_BASE_MS: '100' });
    code = r.code;
    out = JSON.parse(r.stdout);
    expect(connections).toBe(0);
    expect(bytesIn).toBe(0);
    // The allowed target holds both footage objects, the report, the custody record and the manifest.
    const objects = storeObjects(st);
    expect(objects.filter((o) => o.endsWith('manifest.json'))).toHaveLength(1);
    expect(objects.length).toBe(5);
    const local = out.targets.find((t: any) => t.name === 'local');
    expect(local.status).toBe('verified');
    const abroad = out.targets.find((t: any) => t.name === 'abroad');
    expect(abroad.status).toBe('refused');
    expect(abroad.error.code).toBe('E_EGRESS_COUNTRY');
  });

  it('does not call the batch secured, and says why in JSON and the audit log', () => {
    expect(out.status).not.toBe('secured');
    expect(code).not.toBe(0);
    for (const f of out.files.filter((x: any) => x.class === 'footage')) {
      expect(f.status).toBe('failed');
      expect(f.error.code).toBe('E_EGRESS_COUNTRY');
    }
    expect(out.refusals.some((r: any) => r.target === 'abroad' && r.code === 'E_EGRESS_COUNTRY')).toBe(true);
    const refused = auditEntries(st, 'refused');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.some((e) => e.target === 'abroad' && String(e.code).startsWith('E_EGRESS'))).toBe(true);
  });
});

describe('a config that is not the admin\'s', () => {
  it('refuses a config with one byte changed before reading the card', () => {
    const st = makeStation(path.join(work, 'tampered'));
    const text = readFileSync(st.config, 'utf8');
    writeFileSync(st.config, text.replace('"station": "test-station"', '"station": "test-statioN"'));
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/kluis: error: .*\[E_CONFIG_SIGNATURE\]/);
    expect(existsSync(st.journal)).toBe(false);
    expect(listFiles(st.spool)).toEqual([]);
    expect(listFiles(st.store)).toEqual([]);
  });

  it('refuses a config signed by another admin key', async () => {
    const st = makeStation(path.join(work, 'foreign'));
    const other = makeStation(path.join(work, 'other'));
    // `config sign` itself refuses a key other than the pinned one...
    const r0 = runKluis(['config', 'sign', '--config', st.config, '--admin-key', other.adminKey]);
    expect(r0.code).not.toBe(0);
    // ...so write the config signed by the other admin key directly, as an attacker would.
    const doc = JSON.parse(readFileSync(st.config, 'utf8')) as { config: unknown };
    await writeSignedConfig(st.config, doc.config, await readSecretKeyFile(other.adminKey, 'admin'));
    const r = runKluis(['ingest', card, '--config', st.config]);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/kluis: error: .*\[E_CONFIG_WRONG_SIGNER\]/);
    expect(existsSync(st.journal)).toBe(false);
  });
});
