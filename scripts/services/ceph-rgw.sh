#!/usr/bin/env bash
# scripts/services/ceph-rgw.sh up|down DIR - a throwaway one-node Ceph cluster for the tests:
# one monitor, one OSD (memstore: objects live in RAM) and a RADOS Gateway serving S3 over plain
# HTTP, every socket on 127.0.0.1. No manager daemon (nothing here needs one).
#
#   up DIR    makes the cluster in the empty (or missing) folder DIR, creates one S3 user, waits
#             until the gateway answers HTTP, and prints KEY=VALUE lines on stdout:
#             S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION. Logs go to stderr
#             and DIR/log/. On failure it prints the log tails, stops what it started, exits 1.
#   down DIR  stops the gateway, the OSD and the monitor of DIR by their pid files (TERM, then KILL
#             after 10 s; only a process whose command line names DIR/ceph.conf is signalled),
#             then removes DIR. A folder without ceph.conf is never touched.
#
# Settings: RGW_PORT (7480), CEPH_MON_PORT (3300), CEPH_OSD_SIZE_GB (6), CEPH_RGW_TIMEOUT (60 s).
# The Debian packages (ceph-mon ceph-osd radosgw ceph-common) must be installed
# (scripts/setup-system.sh --test does that).
set -euo pipefail

CMD=${1:-}
DIR=${2:-}
log() { echo "ceph-rgw: $*" >&2; }
die() { log "$*"; exit 1; }
[ -n "$CMD" ] && [ -n "$DIR" ] || die "usage: ceph-rgw.sh up|down DIR"

RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${CEPH_MON_PORT:-3300}
SIZE_GB=${CEPH_OSD_SIZE_GB:-6}
TIMEOUT=${CEPH_RGW_TIMEOUT:-60}
ACCESS_KEY=KLUISTESTACCESSKEY01
SECRET_KEY=kluis-test-secret-key-0000000000000000000

# Is the daemon of pid file $1 alive (not a zombie) and one of this cluster's?
is_ours() {
  local pid state
  pid=$(cat "$DIR/run/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && [ "$state" != X ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/ceph.conf"
}

stop_daemon() {
  local name=$1 pid i
  is_ours "$name" || return 0
  pid=$(cat "$DIR/run/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do is_ours "$name" || return 0; sleep 0.2; done
  log "$name ($pid) did not stop on TERM; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 25; i++)); do is_ours "$name" || return 0; sleep 0.2; done
  log "$name ($pid) is still running"
  return 1
}

down() {
  [ -d "$DIR" ] || return 0
  DIR=$(cd "$DIR" && pwd)
  [ -f "$DIR/ceph.conf" ] || die "$DIR holds no ceph.conf; not removing it"
  local rc=0 name
  for name in client.rgw.gw osd.0 mon.m; do stop_daemon "$name" || rc=1; done
  [ "$rc" = 0 ] && rm -rf "$DIR"
  return "$rc"
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rgw_answers() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RGW_PORT; printf 'GET / HTTP/1.0\r\n\r\n' >&3; head -c 5 <&3" 2>/dev/null | grep -q '^HTTP'
}

up() {
  command -v ceph-mon >/dev/null && command -v radosgw >/dev/null ||
    die "Ceph is not installed; run: apt-get install ceph-mon ceph-osd radosgw ceph-common (or bash scripts/setup-system.sh --test)"
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then die "$DIR is not empty"; fi
  local p
  for p in "$RGW_PORT" "$MON_PORT"; do ! port_taken "$p" || die "127.0.0.1:$p is in use (set RGW_PORT / CEPH_MON_PORT)"; done
  mkdir -p "$DIR"/{log,run,mon,osd,rgw}
  DIR=$(cd "$DIR" && pwd)
  local conf=$DIR/ceph.conf fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  export CEPH_CONF=$conf
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
crash dir = $DIR/log
mon data = $DIR/mon/\$id
osd data = $DIR/osd/\$id
mon allow pool size one = true
mon warn on pool no redundancy = false
mon mgr mkfs grace = 315360000
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.01
paxos min wait = 0.01
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = $((SIZE_GB << 30))
osd memory target = 1073741824

[client]
keyring = $DIR/keyring

[client.rgw.gw]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw gc obj min wait = 30
rgw gc processor period = 30
CONF

  local setup=$DIR/log/setup.log started=0
  fail() {
    log "FAILED: $*"
    local f
    for f in "$DIR"/log/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
    [ "$started" = 1 ] && { down || true; }
    exit 1
  }
  local deadline=$((SECONDS + TIMEOUT))
  remaining() { local n=$((deadline - SECONDS)); echo $((n > 1 ? n : 1)); }

  log "monitor on 127.0.0.1:$MON_PORT"
  started=1
  {
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *'
    ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/keyring"
    monmaptool --create --fsid "$fsid" --addv m "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap"
    ceph-mon -c "$conf" -i m --mkfs --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
    ceph-mon -c "$conf" -i m
  } >>"$setup" 2>&1 || fail "monitor did not start"

  log "OSD (memstore, ${SIZE_GB} GB)"
  local osd_uuid osd_key
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_key=$(ceph-authtool --gen-print-key)
  mkdir -p "$DIR/osd/0"
  printf '[osd.0]\n\tkey = %s\n' "$osd_key" >"$DIR/osd/0/keyring"
  printf '{"cephx_secret": "%s"}\n' "$osd_key" >"$DIR/osd/0/secret.json"
  {
    timeout "$(remaining)" ceph osd new "$osd_uuid" 0 -i "$DIR/osd/0/secret.json"
    ceph-osd -c "$conf" -i 0 --mkfs --key "$osd_key" --osd-uuid "$osd_uuid"
    ceph-osd -c "$conf" -i 0
  } >>"$setup" 2>&1 || fail "OSD did not start"

  log "gateway on 127.0.0.1:$RGW_PORT"
  {
    timeout "$(remaining)" ceph auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' mgr 'allow rw' >>"$DIR/keyring"
    timeout "$(remaining)" radosgw-admin user create --uid=kluis-test --display-name="kluis test user" \
      --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY"
    radosgw -c "$conf" -n client.rgw.gw
  } >>"$setup" 2>&1 || fail "gateway did not start"
  until rgw_answers; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the gateway did not answer HTTP within ${TIMEOUT}s"
    sleep 0.2
  done
  log "up in ${SECONDS}s ($DIR)"
  printf 'S3_ENDPOINT=http://127.0.0.1:%s\nS3_ACCESS_KEY_ID=%s\nS3_SECRET_ACCESS_KEY=%s\nS3_REGION=us-east-1\n' \
    "$RGW_PORT" "$ACCESS_KEY" "$SECRET_KEY"
}

case $CMD in
  up) up ;;
  down) down ;;
  *) die "usage: ceph-rgw.sh up|down DIR" ;;
esac
