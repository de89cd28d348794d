/**
 * The import rules of kluis, checked by dependency-cruiser in `npm test` (`npm run depcheck`).
 * docs/ARCHITECTURE.md explains them; in short:
 *
 * 1. no-climb: a folder imports only from its own layer's allowed peers and from layers below it.
 *    Layers, top to bottom:
 *      cli                                       commands: parse, call, print
 *      bench, dashboard                          the benchmark harness, the local status service
 *      pipeline, evidence                        the flow runner; the evidence desk (verify, export, report)
 *      card, sanitize, seal, targets, config,    the stages and their config; the audit log every
 *      audit                                     stage's work is recorded in
 *      wrappers                                  technology: ffmpeg, ExifTool, process priority, XML
 *      util, src/*.ts                            helpers; errors and their catalogue
 * 2. no-peer: folders of one layer do not import each other, except the PEERS listed below.
 * 3. via-index: outside a stage folder (card, config, sanitize, seal, targets, audit), only its index.ts
 *    is imported: the rest of the folder is internal.
 * 4. no-cycle: no import cycles anywhere in src/.
 *
 * KNOWN lists the violations that existed when the check was introduced (issue 18), each to be
 * removed when its file is reworked; the check passes with them and fails on any new one.
 */

const LAYERS = [
  ['cli'],
  ['bench', 'dashboard'],
  ['pipeline', 'evidence'],
  ['card', 'sanitize', 'seal', 'targets', 'config', 'audit'],
  ['wrappers'],
  ['util'],
];
/** Stage folders whose index.ts is their only public surface. */
const INDEXED = ['card', 'config', 'sanitize', 'seal', 'targets', 'audit'];
/** Allowed imports between folders of one layer (from → to). */
const PEERS = [
  ['targets', 'config'], // a target is opened from its config entry
  ['config', 'seal'], // the config is signed with an admin key
  ['config', 'audit'], // an accepted config revision is recorded in the audit log
  ['audit', 'seal'], // audit checkpoints are signed with the station key
  ['card', 'sanitize'], // the inventory classes footage by the sanitizer's own sniff, so the two agree
];

/**
 * Violations that existed when the check was introduced (issue 18), as [rule, from, to]. Do not
 * add to this list: fix the import (move the shared piece down a layer, or export it from the
 * folder's index.ts). Remove a line when its import is gone.
 */
const KNOWN = [
  // The card read seals the original as it reads (one pass over the bytes, issue 14), so
  // card/acquire uses seal/.
  ['no-peer', 'src/card/acquire.ts', 'src/seal/index.ts'],
  // no-peer: the flow runner uses the report's sharp thumbnails
  ['no-peer', 'src/pipeline/finalize.ts', 'src/evidence/report.ts'],
];

// ---------------------------------------------------------------------------------------------

const folders = (names) => `^src/(${names.join('|')})/`;
const esc = (p) => `^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;

/** A forbidden rule, with its KNOWN pairs carved out: the files they start from get a rule each. */
function withKnown(rule) {
  const matches = (file, where) =>
    (where.path === undefined || new RegExp(where.path).test(file)) &&
    (where.pathNot === undefined || ![].concat(where.pathNot).some((re) => new RegExp(re).test(file)));
  const known = KNOWN.filter(([name, from, to]) => name === rule.name && matches(from, rule.from) && matches(to, rule.to));
  const starts = [...new Set(known.map(([, from]) => from))];
  const rules = [{ ...rule, from: { ...rule.from, pathNot: [...[].concat(rule.from.pathNot ?? []), ...starts.map(esc)] } }];
  for (const from of starts) {
    const tos = known.filter(([, f]) => f === from).map(([, , to]) => esc(to));
    rules.push({
      ...rule,
      comment: `${rule.comment} (known exception${tos.length > 1 ? 's' : ''} of issue 18 carved out)`,
      from: { path: esc(from) },
      to: { ...rule.to, pathNot: [...[].concat(rule.to.pathNot ?? []), ...tos] },
    });
  }
  return rules;
}

const forbidden = [];

LAYERS.forEach((layer, i) => {
  const above = LAYERS.slice(0, i).flat();
  if (above.length === 0) return;
  forbidden.push(
    ...withKnown({
      name: 'no-climb',
      severity: 'error',
      comment: `${layer.join('/')} must not import from a layer above it (${above.join(', ')})`,
      from: { path: folders(layer) },
      to: { path: folders(above) },
    }),
  );
});
// The top-level files (errors.ts, error-codes.ts, version.ts) are the bottom layer.
forbidden.push({
  name: 'no-climb',
  severity: 'error',
  comment: 'src/*.ts (errors, version) must not import from any folder',
  from: { path: '^src/[^/]+\\.ts$' },
  to: { path: '^src/[^/]+/' },
});

for (const layer of LAYERS) {
  for (const from of layer) {
    const others = layer.filter((f) => f !== from && !PEERS.some(([a, b]) => a === from && b === f));
    if (others.length === 0) continue;
    forbidden.push(
      ...withKnown({
        name: 'no-peer',
        severity: 'error',
        comment: `${from} must not import ${others.join(', ')} (same layer)`,
        from: { path: `^src/${from}/` },
        to: { path: folders(others) },
      }),
    );
  }
}

for (const stage of INDEXED) {
  forbidden.push(
    ...withKnown({
      name: 'via-index',
      severity: 'error',
      comment: `outside src/${stage}/, import only src/${stage}/index.ts`,
      from: { pathNot: `^src/${stage}/` },
      to: { path: `^src/${stage}/`, pathNot: `^src/${stage}/index\\.ts$` },
    }),
  );
}

forbidden.push(
  ...withKnown({
    name: 'no-cycle',
    severity: 'error',
    comment: 'no import cycles (type-only imports count too)',
    from: {},
    to: { circular: true },
  }),
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    includeOnly: '^src/',
    // Type-only imports count: a type from another folder's internals couples just the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
// For test/unit/depcheck.test.ts (not enumerable: the config schema allows no extra keys).
Object.defineProperty(module.exports, 'KNOWN', { value: KNOWN, enumerable: false });
