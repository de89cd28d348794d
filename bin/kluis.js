#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm ci` through `prepare`).
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(`kluis: error: kluis needs Node.js 24 LTS (22.16 at the least); this is ${process.version}\n`);
  process.stderr.write('kluis: hint: run `. scripts/node24.sh` in the kluis folder (installs Node 24 from the npm registry), or install Node.js 24\n');
  process.exit(70);
}
import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`kluis: error: could not start: ${err && err.message ? err.message : err}\n`);
  process.stderr.write('kluis: hint: run `npm ci` (or `npm run build`) in the kluis folder first\n');
  process.exitCode = 70;
});
