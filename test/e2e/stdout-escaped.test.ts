/**
 * stdout is escaped like stderr (issue 15, item 11). A card file whose name holds a newline, an
 * escape sequence and a right-to-left override, and which is itself good footage (so it is
 * secured and listed on stdout, not on the error path), must print as one visible line in the
 * human output of ingest, status, export and verify: it can neither forge a result line
 * ("secured … FAKE.JPG", "batch …: SECURED") nor reach the terminal as a control sequence.
 * `--json` keeps the exact name.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, runKluis, parseJson, type TestStation } from '../helpers/kluis.js';
import { makeMediaFile } from '../helpers/card.js';

const FORGED = 'x\n  secured  footage FAKE.JPG\u001b[2K\u202eGPJ.JPG';
const ESCAPED = 'x\\n  secured  footage FAKE.JPG\\u001b[2K\\u202eGPJ.JPG';
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;

let work: string;
let st: TestStation;
let batchId: string;

/** stdout must hold the name only escaped: no raw control, no line of its own. */
function expectEscaped(stdout: string, what: string): void {
  expect(stdout, what).not.toMatch(CONTROLS);
  const lines = stdout.split('\n');
  expect(lines.filter((l) => l.trimStart().startsWith('secured  footage FAKE.JPG')), what).toEqual([]);
  expect(lines.some((l) => l.includes(ESCAPED)), `${what} shows the escaped name:\n${stdout}`).toBe(true);
}

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kluis-stdout-'));
  st = makeStation(path.join(work, 'station'));
  const media = path.join(work, 'card', 'DCIM', '100MEDIA');
  mkdirSync(media, { recursive: true });
  makeMediaFile(path.join(media, 'DJI_0001.JPG'), { kind: 'jpeg', name: 'DJI_0001.JPG' });
  makeMediaFile(path.join(media, 'tmp.JPG'), { kind: 'jpeg', name: 'tmp.JPG' });
  renameSync(path.join(media, 'tmp.JPG'), path.join(media, FORGED));
});

describe('human output on stdout', () => {
  it('ingest prints the name escaped; --json keeps it exact', () => {
    const r = runKluis(['ingest', path.join(work, 'card'), '--config', st.config, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    batchId = /^batch (\S+): SECURED/m.exec(r.stdout)![1]!;
    expectEscaped(r.stdout, 'ingest');
    const j = runKluis(['status', '--config', st.config, '--batch', batchId, '--json']);
    expect(parseJson(j).batches[0].files.map((f: { path: string }) => f.path)).toContain(`DCIM/100MEDIA/${FORGED}`);
  });

  it('status --batch prints the name escaped', () => {
    const r = runKluis(['status', '--config', st.config, '--batch', batchId]);
    expect(r.code, r.stderr).toBe(0);
    expectEscaped(r.stdout, 'status');
  });

  it('export prints the name escaped; --json keeps it exact', () => {
    const r = runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', path.join(work, 'out1')]);
    expect(r.code, r.stderr).toBe(0);
    expectEscaped(r.stdout, 'export');
    const j = runKluis(['export', batchId, '--config', st.config, '--identity', st.evidenceKey, '--out', path.join(work, 'out2'), '--json']);
    expect(j.code, j.stderr).toBe(0);
    expect(parseJson(j).files.map((f: { path: string }) => f.path)).toContain(`DCIM/100MEDIA/${FORGED}`);
  });

  it('verify prints the name escaped', () => {
    const r = runKluis(['verify', batchId, '--config', st.config, '--identity', st.evidenceKey]);
    expect(r.code, r.stderr).toBe(0);
    expectEscaped(r.stdout, 'verify');
  });
});
