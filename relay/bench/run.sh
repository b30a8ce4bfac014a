#!/usr/bin/env bash
# make bench-e2e — relay drain rate (1 and 2 relays, 200k-change backlog) and
# commit-to-visible latency at 1,000 writes/s, on private servers; writes the
# latency plot to relay/bench/latency.png. A measurement, not a test: it prints
# numbers and never fails on them. Takes about 2-3 minutes on 2 cores.
#
# Uses the release builds (make bench-e2e builds them): the relay
# (target/release/vset-relay) and the module (target/release/libvset_redis.so).
# Knobs: BENCH_BACKLOG, BENCH_RATE, BENCH_SECONDS, BENCH_PNG, BENCH_RELAY_ARGS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export VSET_RELAY_BIN="${VSET_RELAY_BIN:-$TARGET/release/vset-relay}"
export VSET_REDIS_MODULE="${VSET_REDIS_MODULE:-$TARGET/release/libvset_redis.so}"
for f in "$VSET_RELAY_BIN" "$VSET_REDIS_MODULE"; do
  [ -f "$f" ] || { echo "bench-e2e: missing $f (run: make bench-e2e)" >&2; exit 1; }
done
cargo build --release -q -p vset-relay-bench
"$TARGET/release/vset-relay-bench"
