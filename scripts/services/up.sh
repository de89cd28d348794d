#!/usr/bin/env bash
# scripts/services/up.sh - start the test servers the conformance suite runs against, all on
# loopback, and write their connection settings to an env file (KEY=VALUE lines):
#   - Ceph RADOS Gateway (S3) via scripts/services/ceph-rgw.sh (plain http on 127.0.0.1:$RGW_PORT);
#   - Apache httpd with mod_dav over TLS (self-signed certificate made here) and basic auth, on
#     127.0.0.1:$KLUIS_WEBDAV_PORT (default 8443), from a private ServerRoot in a temp folder;
#     never the system apache config.
# Env file: $KLUIS_SERVICES_ENV, default <repo>/.services.env. Stop with scripts/services/down.sh.
# Running it again while the services are up just rewrites nothing and exits 0.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ENV_FILE=${KLUIS_SERVICES_ENV:-$ROOT/.services.env}
WEBDAV_PORT=${KLUIS_WEBDAV_PORT:-8443}
log() { echo "services: $*" >&2; }
die() { log "$*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -f "$ENV_FILE" ]; then
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  if [ -n "${KLUIS_APACHE_DIR:-}" ] && [ -f "$KLUIS_APACHE_DIR/httpd.pid" ] && kill -0 "$(cat "$KLUIS_APACHE_DIR/httpd.pid")" 2>/dev/null &&
     [ -n "${CEPH_RGW_DIR:-}" ] && port_open "${KLUIS_S3_ENDPOINT##*:}"; then
    log "already running (settings in $ENV_FILE)"; exit 0
  fi
  log "stale $ENV_FILE; run scripts/services/down.sh first"; exit 1
fi

command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] || die "apache2 is not installed; run: bash scripts/setup-system.sh --test"
command -v htpasswd >/dev/null || die "htpasswd is not installed; run: bash scripts/setup-system.sh --test"
port_open "$WEBDAV_PORT" && die "127.0.0.1:$WEBDAV_PORT is already in use (set KLUIS_WEBDAV_PORT)"

# --- Ceph -------------------------------------------------------------------------------------
# The OSD keeps objects in RAM (memstore); the default 2 GB fills up under `kluis bench`'s 2 GB
# card, after which Ceph blocks writes instead of failing them. 6 GB leaves room on a 24 GB machine.
export CEPH_OSD_SIZE_GB=${CEPH_OSD_SIZE_GB:-6}
CEPH_RGW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kluis-ceph.XXXXXX")
CEPH_OUT=$(bash "$HERE/ceph-rgw.sh" up "$CEPH_RGW_DIR") || { rmdir "$CEPH_RGW_DIR" 2>/dev/null; die "Ceph did not start (see the lines above)"; }
S3_ENDPOINT=$(sed -n 's/^S3_ENDPOINT=//p' <<<"$CEPH_OUT")
S3_ACCESS_KEY_ID=$(sed -n 's/^S3_ACCESS_KEY_ID=//p' <<<"$CEPH_OUT")
S3_SECRET_ACCESS_KEY=$(sed -n 's/^S3_SECRET_ACCESS_KEY=//p' <<<"$CEPH_OUT")
S3_REGION=$(sed -n 's/^S3_REGION=//p' <<<"$CEPH_OUT")
log "ceph rgw up at $S3_ENDPOINT ($CEPH_RGW_DIR)"

# --- Apache WebDAV ------------------------------------------------------------------------------
AD=$(mktemp -d "${TMPDIR:-/tmp}/kluis-webdav.XXXXXX")
cleanup_fail() { log "FAILED; apache log tail:"; tail -n 20 "$AD/error.log" >&2 2>/dev/null || true; bash "$HERE/ceph-rgw.sh" down "$CEPH_RGW_DIR" || true; }
trap 'cleanup_fail' ERR
chmod 711 "$AD"   # the server's worker user must traverse it; key.pem stays 0600
mkdir -p "$AD/dav" "$AD/lock"
MODS=/usr/lib/apache2/modules
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$AD/key.pem" -out "$AD/cert.pem" 2>/dev/null
PIN=$(openssl x509 -in "$AD/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
USER_NAME=kluis
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
htpasswd -bcB "$AD/htpasswd" "$USER_NAME" "$PASSWORD" 2>/dev/null
RUN_USER=$(id -un); RUN_GROUP=$(id -gn)
if [ "$(id -u)" = 0 ]; then RUN_USER=www-data; RUN_GROUP=www-data; chown -R www-data:www-data "$AD/dav" "$AD/lock"; fi
cat >"$AD/httpd.conf" <<CONF
ServerRoot "$AD"
ServerName 127.0.0.1
PidFile "$AD/httpd.pid"
Listen 127.0.0.1:$WEBDAV_PORT
User $RUN_USER
Group $RUN_GROUP
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authn_core_module $MODS/mod_authn_core.so
LoadModule authn_file_module $MODS/mod_authn_file.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule authz_user_module $MODS/mod_authz_user.so
LoadModule auth_basic_module $MODS/mod_auth_basic.so
LoadModule alias_module $MODS/mod_alias.so
LoadModule dav_module $MODS/mod_dav.so
LoadModule dav_fs_module $MODS/mod_dav_fs.so
LoadModule socache_shmcb_module $MODS/mod_socache_shmcb.so
LoadModule ssl_module $MODS/mod_ssl.so
ErrorLog "$AD/error.log"
LogLevel warn
LogFormat "%h %r %>s %b" short
CustomLog "$AD/access.log" short
DAVLockDB "$AD/lock/davlock"
SSLEngine on
SSLCertificateFile "$AD/cert.pem"
SSLCertificateKeyFile "$AD/key.pem"
SSLSessionCache "shmcb:$AD/ssl_scache(512000)"
Timeout 30
DocumentRoot "$AD/dav"
Alias /dav "$AD/dav"
<Directory />
  AllowOverride None
  Require all denied
</Directory>
<Directory "$AD/dav">
  AllowOverride None
  Dav On
  AuthType Basic
  AuthName "kluis test"
  AuthBasicProvider file
  AuthUserFile "$AD/htpasswd"
  Require valid-user
</Directory>
CONF
apache2 -f "$AD/httpd.conf" -k start
for _ in $(seq 1 100); do port_open "$WEBDAV_PORT" && break; sleep 0.1; done
port_open "$WEBDAV_PORT" || die "apache did not listen on 127.0.0.1:$WEBDAV_PORT"
trap - ERR
log "apache webdav up at https://127.0.0.1:$WEBDAV_PORT/dav/ ($AD)"

cat >"$ENV_FILE" <<ENV
KLUIS_S3_ENDPOINT=$S3_ENDPOINT
KLUIS_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID
KLUIS_S3_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY
KLUIS_S3_REGION=$S3_REGION
CEPH_RGW_DIR=$CEPH_RGW_DIR
KLUIS_WEBDAV_URL=https://127.0.0.1:$WEBDAV_PORT/dav/
KLUIS_WEBDAV_USER=$USER_NAME
KLUIS_WEBDAV_PASSWORD=$PASSWORD
KLUIS_WEBDAV_CA=$AD/cert.pem
KLUIS_WEBDAV_PIN=$PIN
KLUIS_APACHE_DIR=$AD
ENV
log "settings written to $ENV_FILE"
