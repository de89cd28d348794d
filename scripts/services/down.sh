#!/usr/bin/env bash
# scripts/services/down.sh - stop what scripts/services/up.sh started (Apache by its pid file,
# only if that process runs our private httpd.conf; Ceph via scripts/services/ceph-rgw.sh down) and
# remove the env file and the Apache temp folder. Never kills anything by name.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ENV_FILE=${KLUIS_SERVICES_ENV:-$ROOT/.services.env}
log() { echo "services: $*" >&2; }
[ -f "$ENV_FILE" ] || { log "no $ENV_FILE; nothing to stop"; exit 0; }
# shellcheck disable=SC1090
. "$ENV_FILE"
rc=0
if [ -n "${KLUIS_APACHE_DIR:-}" ] && [ -f "$KLUIS_APACHE_DIR/httpd.conf" ]; then
  pid=$(cat "$KLUIS_APACHE_DIR/httpd.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$KLUIS_APACHE_DIR/httpd.conf"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null); [ "$st" = Z ] && break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && kill -KILL "$pid" 2>/dev/null
  fi
  rm -rf "$KLUIS_APACHE_DIR"
fi
if [ -n "${CEPH_RGW_DIR:-}" ]; then
  bash "$HERE/ceph-rgw.sh" down "$CEPH_RGW_DIR" || rc=1
fi
rm -f "$ENV_FILE"
log "stopped"
exit $rc
