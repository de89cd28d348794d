// The import rules (.dependency-cruiser.cjs, run by `npm run depcheck` in `npm test`): a small
// tree laid out like src/ passes, and each kind of import the rules forbid, added to it, makes
// the check fail naming the rule and the import. The real tree passes, and every known exception
// listed in the config is still a real import (a fixed one must leave the list).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, test } from 'vitest';

const root = path.resolve(__dirname, '..', '..');
const CONFIG = path.join(root, '.dependency-cruiser.cjs');
const KNOWN = (createRequire(__filename)(CONFIG) as { KNOWN: Array<[string, string, string]> }).KNOWN;
/** A known exception between the flow's peers (pipeline ↔ evidence), to show the carve-out is per pair. */
const CARVED = KNOWN.find(([rule, from, to]) => rule === 'no-peer' && /^src\/(pipeline|evidence)\//.test(from) && /^src\/(pipeline|evidence)\//.test(to));
const BIN = path.join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruiser.mjs');

interface Violation {
  rule: string;
  from: string;
  to: string;
}

/** `npm run depcheck` as the npm script runs it (err output), in `cwd`: its exit status and violations. */
function cruise(cwd: string): { status: number | null; violations: Violation[]; cruised: number } {
  const r = spawnSync(process.execPath, [BIN, 'src', '--config', CONFIG], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const summary = /(\d+) modules, \d+ dependencies cruised/.exec(r.stdout);
  if (!summary) throw new Error(`depcruise did not finish: ${r.stdout}${r.stderr}`);
  // "  error no-peer: src/a.ts → src/b.ts" (a cycle continues on the next lines)
  const violations = [...r.stdout.matchAll(/^\s*error ([a-z-]+): (\S+) →\s+(\S+)/gm)].map((m) => ({ rule: m[1]!, from: m[2]!, to: m[3]! }));
  return { status: r.status, violations, cruised: Number(summary[1]) };
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A tiny tree laid out like src/: each file imports the files named. */
function tree(files: Record<string, string[]>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kluis-depcheck-'));
  dirs.push(dir);
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src/**/*.ts'] }),
  );
  for (const [file, imports] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    const lines = imports.map((imp, i) => {
      const rel = path.relative(path.dirname(file), imp).replace(/\.ts$/, '.js');
      return `import * as m${i} from '${rel.startsWith('.') ? rel : `./${rel}`}';\nexport const u${i} = m${i};`;
    });
    writeFileSync(path.join(dir, file), `${lines.join('\n')}\nexport const here = '${file}';\n`);
  }
  return dir;
}

/** Imports that follow the rules: down the layers, into stage folders through their index.ts. */
const CLEAN: Record<string, string[]> = {
  'src/errors.ts': [],
  'src/util/fsx.ts': ['src/errors.ts'],
  'src/wrappers/ffmpeg.ts': ['src/util/fsx.ts'],
  'src/seal/keys.ts': ['src/util/fsx.ts', 'src/errors.ts'],
  'src/seal/index.ts': ['src/seal/keys.ts'],
  'src/config/index.ts': ['src/seal/index.ts'],
  'src/targets/index.ts': ['src/config/index.ts'],
  'src/sanitize/index.ts': ['src/wrappers/ffmpeg.ts'],
  'src/pipeline/ingest.ts': ['src/seal/index.ts', 'src/sanitize/index.ts', 'src/targets/index.ts'],
  'src/pipeline/thumbs.ts': ['src/util/fsx.ts'],
  'src/pipeline/audit.ts': [],
  'src/pipeline/other.ts': [],
  ...(CARVED ? { [CARVED[1]]: [], [CARVED[2]]: [] } : {}),
  'src/evidence/report.ts': ['src/seal/index.ts'],
  'src/evidence/other.ts': [],
  'src/dashboard/server.ts': ['src/pipeline/ingest.ts', 'src/evidence/report.ts'],
  'src/cli/ingest.ts': ['src/pipeline/ingest.ts', 'src/dashboard/server.ts'],
};

test('a tree that follows the rules passes', () => {
  const r = cruise(tree(CLEAN));
  expect(r.violations).toEqual([]);
  expect(r.status).toBe(0);
  expect(r.cruised).toBe(Object.keys(CLEAN).length);
});

test('an import against the rules makes the check fail, naming the rule and the import', () => {
  const bad = tree({
    ...CLEAN,
    // climbs a layer: a helper reaches up into the flow
    'src/util/fsx.ts': ['src/errors.ts', 'src/pipeline/ingest.ts'],
    // a peer of the same layer: the flow runner imports the evidence desk
    'src/pipeline/ingest.ts': ['src/seal/index.ts', 'src/sanitize/index.ts', 'src/targets/index.ts', 'src/evidence/other.ts'],
    // past an index: the CLI reaches into seal's internals
    'src/cli/ingest.ts': ['src/pipeline/ingest.ts', 'src/dashboard/server.ts', 'src/seal/keys.ts'],
    // a cycle inside one folder
    'src/wrappers/ffmpeg.ts': ['src/util/fsx.ts', 'src/wrappers/probe.ts'],
    'src/wrappers/probe.ts': ['src/wrappers/ffmpeg.ts'],
    // a known exception of the config is carved out for its own pair only
    ...(CARVED ? { [CARVED[1]]: [CARVED[2], CARVED[1].startsWith('src/pipeline/') ? 'src/evidence/other.ts' : 'src/pipeline/other.ts'] } : {}),
  });
  const r = cruise(bad);
  expect(r.status).not.toBe(0);
  const found = r.violations.map((v) => `${v.rule}: ${v.from} -> ${v.to}`);
  expect(found).toContain('no-climb: src/util/fsx.ts -> src/pipeline/ingest.ts');
  expect(found).toContain('no-peer: src/pipeline/ingest.ts -> src/evidence/other.ts');
  expect(found).toContain('via-index: src/cli/ingest.ts -> src/seal/keys.ts');
  expect(found).toContain('no-cycle: src/wrappers/ffmpeg.ts -> src/wrappers/probe.ts');
  const carved = CARVED ? [`no-peer: ${CARVED[1]} -> ${CARVED[1].startsWith('src/pipeline/') ? 'src/evidence/other.ts' : 'src/pipeline/other.ts'}`] : [];
  if (CARVED) expect(found).not.toContain(`no-peer: ${CARVED[1]} -> ${CARVED[2]}`);
  // Nothing else: the clean imports around them stay clean (the climb also closes a cycle).
  expect(found.filter((f) => !f.startsWith('no-cycle')).sort()).toEqual([
    'no-climb: src/util/fsx.ts -> src/pipeline/ingest.ts',
    'no-peer: src/pipeline/ingest.ts -> src/evidence/other.ts',
    'via-index: src/cli/ingest.ts -> src/seal/keys.ts',
    ...carved,
  ].sort());
});

test('the real tree passes, and each known exception in the config is still a real import', () => {
  const r = spawnSync(process.execPath, [BIN, 'src', '--config', CONFIG, '--output-type', 'json'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  const out = JSON.parse(r.stdout) as {
    summary: { violations: Array<{ from: string; to: string; rule: { name: string } }> };
    modules: Array<{ source: string; dependencies: Array<{ resolved: string }> }>;
  };
  expect(out.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)).toEqual([]);

  const known = KNOWN;
  expect(known.length).toBeGreaterThan(0);
  const edges = new Set(out.modules.flatMap((m) => m.dependencies.map((d) => `${m.source} -> ${d.resolved}`)));
  const stale = known.filter(([, from, to]) => !edges.has(`${from} -> ${to}`)).map(([rule, from, to]) => `${rule}: ${from} -> ${to}`);
  expect(stale, 'these imports are gone: remove their lines from KNOWN in .dependency-cruiser.cjs').toEqual([]);
});
