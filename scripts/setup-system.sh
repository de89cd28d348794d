#!/usr/bin/env bash
# Installs the system tools kluis needs at run time, from Debian, when they are missing:
# ffmpeg/ffprobe (video sanitizing and proofs) and ExifTool (independent re-read).
# With --test it also installs what the test suite needs (xmllint, apache2 for WebDAV,
# chromium for the dashboard and report tests, rclone and age for the benchmark, tmux).
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
if [ "${1:-}" = "--test" ]; then
  command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
  command -v apache2 >/dev/null 2>&1 || [ -x /usr/sbin/apache2 ] || need+=(apache2)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v rclone >/dev/null 2>&1 || need+=(rclone)
  command -v age >/dev/null 2>&1 || need+=(age)
  command -v tmux >/dev/null 2>&1 || need+=(tmux)
  command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "kluis: installing from Debian: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends "${need[@]}" >&2 || {
  $SUDO apt-get update >&2
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >&2
}
