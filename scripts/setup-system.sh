#!/usr/bin/env bash
# Installs the system tools kluis needs at run time, from Debian, when they are missing:
# ffmpeg/ffprobe (video sanitizing and proofs) and perl (which runs the ExifTool that `npm ci`
# brings, exiftool-vendored.pl, for the independent re-read).
# With --test it also installs what the test suite needs: xmllint, Apache (WebDAV) and Ceph
# (S3 gateway) for the servers the tests start, Chromium for the dashboard and report tests,
# Debian's exiftool, rclone and age for the benchmark, tmux, setpriv, chattr, mount. Run as root, or as a user who
# may sudo; otherwise it names the packages to install and exits 1.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
perl -MEncode -MDigest::MD5 -MPOSIX -e 1 >/dev/null 2>&1 || need+=(perl)
if [ "${1:-}" = "--test" ]; then
  command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
  command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
  command -v apache2 >/dev/null 2>&1 || [ -x /usr/sbin/apache2 ] || need+=(apache2)
  command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
  command -v ceph-mon >/dev/null 2>&1 || need+=(ceph-mon)
  command -v ceph-osd >/dev/null 2>&1 || need+=(ceph-osd)
  command -v radosgw >/dev/null 2>&1 || need+=(radosgw)
  command -v ceph-authtool >/dev/null 2>&1 || need+=(ceph-common)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
  command -v chattr >/dev/null 2>&1 || need+=(e2fsprogs)
  command -v mount >/dev/null 2>&1 || need+=(mount)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v rclone >/dev/null 2>&1 || need+=(rclone)
  command -v age >/dev/null 2>&1 || need+=(age)
  command -v tmux >/dev/null 2>&1 || need+=(tmux)
  command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "kluis: error: missing Debian packages: ${need[*]}" >&2
    echo "kluis: hint: install them as root: apt-get install --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
fi
echo "kluis: installing from Debian: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends "${need[@]}" >&2 || {
  $SUDO apt-get update >&2
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >&2
}
