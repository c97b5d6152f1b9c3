#!/usr/bin/env bash
# Installs what edgenode needs on Debian 12, idempotently.
#   scripts/deps.sh run    what `make run` needs (Go toolchain is assumed at /usr/local/go)
#   scripts/deps.sh test   plus what the tests need: Chromium, ffmpeg, coturn's tools, nginx
set -euo pipefail
what=${1:-run}
pkgs_run=()
pkgs_test=(chromium ffmpeg coturn nginx-light)
need=()
check() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done; }
check "${pkgs_run[@]}"
[ "$what" = test ] && check "${pkgs_test[@]}"
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "deps: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# coturn's package enables a system service on install; tests start their own.
if [ "$what" = test ] && command -v systemctl >/dev/null && systemctl is-active -q coturn 2>/dev/null; then systemctl stop coturn || true; fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
go version >/dev/null
