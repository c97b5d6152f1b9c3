#!/usr/bin/env bash
# Encoder bench (issue 6), called by `make bench`.
# 720p30 input (mediatest: test pattern + tone), the default ladder
# (720p 2.5M, 480p 1.2M, 360p 600k + AAC). Prints, measured in this run:
#   - encode fps through the node's plugin path vs a plain ffmpeg running the
#     identical ladder (same arguments) on the same input, and their ratio;
#   - added latency from an access unit entering the hub to its rendition
#     frame leaving the hub (p50/p99), played in real time;
#   - CPU seconds per stream-second (plugin + ffmpeg, and node + plugin).
# HWENC_BENCH_SECONDS sets the input length (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
if ! command -v ffmpeg >/dev/null; then
  echo "bench-hwenc: ffmpeg is not installed (run scripts/deps.sh test)" >&2
  exit 1
fi
secs=${HWENC_BENCH_SECONDS:-20}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! HWENC_BENCH_SECONDS=$secs go test -run '^$' -bench '^BenchmarkLadder720p$' -benchtime 1x -count 1 ./hwenc >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
line=$(grep '^BenchmarkLadder720p' "$log")
get() { awk -v u="$1" '{for (i = 3; i < NF; i++) if ($(i+1) == u) print $i}' <<<"$line"; }
printf 'hwenc bench: 720p30 %ss, ladder 720p/480p/360p + AAC (x264 veryfast zerolatency)\n' "$secs"
printf '  encode fps   node %s  plain ffmpeg %s  ratio %s (wall clock, best of 2 interleaved)\n' "$(get node_fps)" "$(get ffmpeg_fps)" "$(get ratio)"
printf '  per cpu-s    node %s  plain ffmpeg %s fps  ratio %s (frames per CPU second, load-independent)\n' "$(get node_fps/cpu_s)" "$(get ffmpeg_fps/cpu_s)" "$(get cpu_ratio)"
printf '  latency      p50 %s ms  p99 %s ms (AU into hub -> rendition out of hub, real time)\n' "$(get p50_ms)" "$(get p99_ms)"
printf '               steady state (after 2 s): p50 %s ms  p99 %s ms\n' "$(get steady_p50_ms)" "$(get steady_p99_ms)"
printf '  cpu          %s s/stream-s plugin+ffmpeg, %s s/stream-s incl. node\n' "$(get plugin_cpu_s/stream_s)" "$(get cpu_s/stream_s)"
