#!/usr/bin/env bash
# make bench: Go benchmarks plus the scripted comparisons. Every figure is
# reported next to a baseline measured in the same run, as a ratio, because
# the machine is shared and noisy.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bin/bench}
mkdir -p "$out"
status=0
echo "== Go benchmarks (testing.B) =="
go test -run '^$' -bench . -benchmem -count 1 -timeout 30m ./... | tee "$out/go-bench.txt" || status=1
for piece in scripts/bench-*.sh; do
  [ -x "$piece" ] || continue
  echo "== $piece =="
  "$piece" | tee "$out/$(basename "$piece" .sh).txt" || status=1
done
echo "results in $out/"
exit $status
