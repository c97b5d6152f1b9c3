#!/usr/bin/env bash
# WHIP ingest under load: POST→201 median/p99 next to a refused POST (the
# baseline), and CPU per publisher for 50 concurrent 1 Mbit/s pion
# publishers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./ingest/internal/whipbench -publishers "${PUBLISHERS:-50}" -bitrate 1000000 -duration "${DURATION:-15s}"
