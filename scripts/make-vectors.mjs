#!/usr/bin/env node
// Writes test/vectors/seal-v1.json from src/seal/vectors.ts (compiled to dist/ by `npm run build`).
// Deterministic: running it again gives identical bytes (test/unit/seal-vectors.test.ts checks).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { vectorsJson } = await import(path.join(root, 'dist/seal/vectors.js'));
const out = path.join(root, 'test/vectors/seal-v1.json');
const text = vectorsJson();
writeFileSync(out, text);
process.stderr.write(`wrote ${out} (${text.length} bytes)\n`);
