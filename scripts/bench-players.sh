#!/usr/bin/env bash
# Stock players against the node's own player page (issue 12, acceptance
# 6): per player, time from the presenter's WHIP POST to the player's first
# frame and its live latency p50, for a passthrough and a ladder stream,
# each beside the node's player page measured in the same run. Needs
# Chromium, ffmpeg and the npm players (make bench installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
for mode in passthrough ladder; do
  EDGENODE_BENCH_PLAYERS=1 EDGENODE_BENCH_MODE=$mode \
    go test -count=1 -timeout 30m -run '^TestBenchPlayerStart$' ./node/ -v |
    grep -E '^player start-up|^  [a-z]|^(ok|FAIL|---)|stockbench_test.go' || true
done
