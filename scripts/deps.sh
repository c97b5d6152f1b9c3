#!/usr/bin/env bash
# Installs what edgenode needs on Debian 12, idempotently.
#   scripts/deps.sh run    what `make run` needs (Go toolchain is assumed at /usr/local/go)
#   scripts/deps.sh test   plus what the tests need: Chromium, ffmpeg, coturn's tools, nginx,
#                          and the stock players (npm, internal/stockplayers/npm)
set -euo pipefail
what=${1:-run}
pkgs_run=(ffmpeg) # the x264 encoder plugin drives Debian's ffmpeg
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
# Go: the module's toolchain (go.mod) at /usr/local/go. On a machine without
# it, Debian's go fetches the exact toolchain module from the Go module proxy.
GO_VERSION=1.26.8
export PATH=$PATH:/usr/local/go/bin
if ! go version 2>/dev/null | grep -q "go1\.2[6-9]"; then
  echo "deps: installing Go $GO_VERSION into /usr/local/go"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  command -v /usr/bin/go >/dev/null || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq golang-go >/dev/null; }
  tmp=$(mktemp -d)
  dir=$(cd "$tmp" && GOPATH=$tmp GOFLAGS= /usr/bin/go mod download -json "golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-amd64" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$dir" ] || { echo "deps: could not download the Go toolchain" >&2; exit 1; }
  $SUDO rm -rf /usr/local/go && $SUDO cp -r "$dir" /usr/local/go && $SUDO chmod -R u+w,a+rX /usr/local/go
  chmod -R u+w "$tmp"; rm -rf "$tmp"
  go version
fi
# The stock players the tests load (dash.js, Shaka Player, hls.js), exactly as
# package-lock.json pins them, from the npm registry. Re-installed only when
# the lock file changes.
if [ "$what" = test ]; then
  if ! command -v npm >/dev/null; then
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "deps: installing npm"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  npmdir=$(cd "$(dirname "$0")/.." && pwd)/internal/stockplayers/npm
  want=$(sha256sum <"$npmdir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$npmdir/node_modules/.edgenode-lock" 2>/dev/null)" != "$want" ]; then
    echo "deps: installing the stock players (npm ci in internal/stockplayers/npm)"
    (cd "$npmdir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$npmdir/node_modules/.edgenode-lock"
  fi
fi
