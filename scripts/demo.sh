#!/usr/bin/env bash
# The demo: sets up a station in ./demo (keys, signed config, local store), ingests the
# sample card in samples/card, shows the status, and exports the batch back out with the
# evidence key into ./demo/export. Safe to run again: it starts from a fresh ./demo each time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
[ -f dist/cli/main.js ] || npm run build
rm -rf demo
node bin/kluis.js init --dir demo --station demo-station
node bin/kluis.js ingest samples/card --config demo/kluis.json --operator demo --case DEMO-1 --json > demo/ingest.json
batch=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync("demo/ingest.json","utf8")).batchId)')
status=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync("demo/ingest.json","utf8")).status)')
node bin/kluis.js status --config demo/kluis.json
node bin/kluis.js export "$batch" --config demo/kluis.json --identity demo/keys/evidence.key --out demo/export
node bin/kluis.js mhl verify demo/export
echo
echo "demo batch $batch: $status"
echo "  ingest result:  demo/ingest.json"
echo "  sealed store:   demo/store/$batch/ (opaque names, ciphertext only)"
echo "  exported files: demo/export/ (sanitized/, report.html, ascmhl/)"
[ "$status" = secured ]
