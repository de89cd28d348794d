/**
 * `kluis export` decrypts evidence into plaintext; who did that, when, and to where must be
 * in the audit log. The command opened the audit log only after the export, and with
 * `.catch(() => null)`: when the log could not be opened, the plaintext was written and nothing
 * was recorded, silently. Now the log is opened first and an export that cannot be recorded does
 * not happen (fail closed, E_AUDIT_OPEN with a hint). The log is made unwritable for real
 * (chattr +i on the audit file).
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, runKluis, parseJson, auditEntries, listFiles } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

describe('export and the audit log', () => {
  it('is refused, writing nothing, when the audit log cannot record it; recorded otherwise', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-export-audit-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);
    const r = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const { batchId } = parseJson(r);

    const out = path.join(work, 'out');
    execFileSync('chattr', ['+i', st.audit]);
    let refused;
    try {
      refused = runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out]);
    } finally {
      execFileSync('chattr', ['-i', st.audit]);
    }
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/kluis: error: .*\[E_AUDIT_OPEN\]/);
    expect(refused.stderr).toMatch(/kluis: hint: /);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out) ? listFiles(out) : []).toEqual([]);
    expect(auditEntries(st, 'export')).toEqual([]);

    const ok = runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', out, '--operator', 'reviewer']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(path.join(out, 'sanitized', 'DCIM', '100MEDIA', 'DJI_0001.JPG'))).toBe(true);
    expect(auditEntries(st, 'export').map((e) => [e.batchId, e.operator, e.files])).toEqual([[batchId, 'reviewer', 1]]);
  });
});
