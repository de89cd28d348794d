/**
 * Issue 15 item 3 as it was found: add a target, remove it, put the older signed file back, and
 * ingest delivered to the removed target. Now the put-back file is refused before the card is
 * read (E_CONFIG_REPLAYED, exit 7), nothing reaches the removed target, and the audit log records
 * the refusal next to the revisions the station accepted.
 *
 * Needs a build (bin/kluis.js runs dist/).
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { auditEntries, listFiles, makeStation, parseJson, runKluis } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

describe('a replayed config', () => {
  it('is refused by ingest before the card is read; the removed target receives nothing', () => {
    const st = makeStation();
    const card = makeCard(path.join(path.dirname(st.dir), 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);
    const add = runKluis(['targets', 'add', 'extra', '--config', st.config, '--type', 'fs', '--url', 'extra-store', '--required', '--admin-key', st.adminKey]);
    expect(add.code, add.stderr).toBe(0);
    const withExtra = readFileSync(st.config, 'utf8');
    const rm = runKluis(['targets', 'remove', 'extra', '--config', st.config, '--admin-key', st.adminKey]);
    expect(rm.code, rm.stderr).toBe(0);

    writeFileSync(st.config, withExtra);
    const r = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/revision 2 .*older than revision 3.*\[E_CONFIG_REPLAYED\]/);
    expect(existsSync(path.join(st.dir, 'extra-store'))).toBe(false);
    expect(listFiles(st.store)).toEqual([]);
    expect(auditEntries(st, 'card-seen')).toEqual([]);
    expect(auditEntries(st, 'config-changed').map((e) => e.revision)).toEqual([1, 2, 3]);
    expect(auditEntries(st, 'config-refused')).toEqual([expect.objectContaining({ code: 'E_CONFIG_REPLAYED', revision: 2, remembered: 3 })]);

    // The current file back in place: the card is secured, to the one target it names.
    const sign = runKluis(['config', 'sign', '--config', st.config, '--admin-key', st.adminKey]);
    expect(sign.code, sign.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(st.config, 'utf8')) as { config: { revision: number } };
    expect(cfg.config.revision).toBe(4);
    const rm2 = runKluis(['targets', 'remove', 'extra', '--config', st.config, '--admin-key', st.adminKey]);
    expect(rm2.code, rm2.stderr).toBe(0);
    const ok = runKluis(['ingest', card, '--config', st.config, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(parseJson(ok).status).toBe('secured');
    expect(existsSync(path.join(st.dir, 'extra-store'))).toBe(false);
  });
});
