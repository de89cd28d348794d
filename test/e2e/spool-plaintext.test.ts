/**
 * plaintext of a file that failed for good must not stay in the spool. When sealing a
 * sanitized file failed (an I/O error on the spool disk, not a full disk), the file was marked
 * failed but its card copy and its sanitized copy (both plaintext footage, GPS and all in the
 * card copy) stayed in the spool until some later kluis run happened to clean it; after a one-off
 * `kluis ingest` or `kluis resume` that may be never. Sealing is made to fail with a real EPERM:
 * the batch's sealed/ folder is made immutable (chattr +i) after a kill right after sanitize.
 *
 * Since issue 15 such a file is not lost either: it is `held`, its sealed original (made while
 * the card was read) copied out of the spool into the station's held/ folder.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, runKluis, parseJson, spoolPlaintext, journalQuery, auditEntries } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';

describe('spool plaintext after a failed seal', () => {
  it('is removed when the file cannot be sealed, and its sealed original is held', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-sealfail-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);

    const crashed = runKluis(['ingest', card, '--config', st.config, '--json', '--quiet'], { KLUIS_CRASH_AT: 'after-sanitize:1' });
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(spoolPlaintext(st).length).toBeGreaterThan(0); // the working copy of the card file
    const [batch] = readdirSync(st.spool);
    const sealed = path.join(st.spool, batch!, 'sealed');
    execFileSync('chattr', ['+i', sealed]);
    let r;
    try {
      r = runKluis(['resume', '--config', st.config, '--json']);
    } finally {
      execFileSync('chattr', ['-i', sealed]);
    }
    // The whole sealed/ folder is unwritable, so the batch's report cannot be sealed either: this
    // run stops there. What matters here is the file that failed.
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/DJI_0001\.JPG.*\[E_SEAL_IO\]/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(journalQuery(st, 'SELECT state, error_code FROM files')).toEqual([{ state: 'held', error_code: 'E_SEAL_IO' }]);
    expect(auditEntries(st, 'file-held').map((e) => [e.file, e.code])).toEqual([['DCIM/100MEDIA/DJI_0001.JPG', 'E_SEAL_IO']]);
    const held_path = journalQuery<{ held_path: string }>(st, 'SELECT held_path FROM files')[0]!.held_path;
    expect(existsSync(held_path)).toBe(true);
    // No card copy or sanitized copy left behind, and the journal no longer points at any. (The
    // thumbnail, made from the sanitized file, waits for the batch report and goes with it.)
    expect(spoolPlaintext(st).filter((p) => !p.includes('/thumbs/'))).toEqual([]);
    expect(journalQuery(st, 'SELECT spool_path, sanitized_path FROM files')).toEqual([{ spool_path: null, sanitized_path: null }]);

    // With the disk writable again the batch is closed: partial, the file failed with its code.
    const again = runKluis(['resume', '--config', st.config, '--json']);
    expect(again.code, again.stderr).toBe(3);
    const file = parseJson(again).batches[0].files.find((f: any) => f.path === 'DCIM/100MEDIA/DJI_0001.JPG');
    expect([file.status, file.error.code, file.heldAt]).toEqual(['held', 'E_SEAL_IO', held_path]);
    expect(spoolPlaintext(st)).toEqual([]);
  });
});
