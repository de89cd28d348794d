#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm ci` through `prepare`).
import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`kluis: error: could not start: ${err && err.message ? err.message : err}\n`);
  process.stderr.write('kluis: hint: run `npm ci` (or `npm run build`) in the kluis folder first\n');
  process.exitCode = 70;
});
