#!/usr/bin/env bash
# Origin resident memory per live stream: STREAMS (default 20) synthetic
# 640x360 30 fps H.264+Opus streams played in real time through the hub
# into the real origin for DURATION (default 10m); prints MiB per stream
# against the idle origin measured in the same run (the baseline) and the
# growth over the second half of the run (flat once the 30 s window is
# full). Needs ffmpeg (mediatest encodes the stream).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-10m}
BENCH_STREAMS="${STREAMS:-20}" BENCH_DURATION="$dur" \
  go test -count=1 -timeout 30m -run '^TestResidentMemoryPerStream$' ./origin/cmaf/ -v |
  grep -E '^origin resident memory|^\s+rss_test.go|^(ok|FAIL|---)'
