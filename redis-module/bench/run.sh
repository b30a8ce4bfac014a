#!/usr/bin/env bash
# `make bench-redis`: SET vs VSET vs a Lua EVALSHA doing the same version check,
# same value size, without and with pipelining (-P 16), in one run; prints a table
# with ratios. A measurement, not a test: nothing here passes or fails on speed.
#
# What is measured: every request writes a fresh random key (keyspace 10^8), so
# every VSET and every Lua call takes the "version is newer → store" path, the one
# that does the most work, and SET inserts just as many keys. (redis-benchmark has
# no per-request counter, so "a version larger than anything stored" is obtained by
# writing keys that hold nothing yet; each run uses a version above the previous
# run's, because the FLUSHALL between runs raises every floor.) The script prints
# how many VSETs were stored, so the figure cannot silently be the cheap reject path.
#
# Ratios are paired: each round measures SET, VSET and Lua back to back, the ratio is
# taken within the round, and the median of the rounds' ratios is shown. On a shared
# (virtual) machine the speed drifts between rounds by ±20%; within one round the
# three commands see nearly the same machine, so paired ratios are far steadier than
# a ratio of separate medians.
#
# Knobs (environment): BENCH_ROUNDS (5; medians are shown), BENCH_N (100000
# requests without pipelining), BENCH_N_PIPELINED (1000000), BENCH_CLIENTS (50),
# BENCH_VALUE_SIZE (64 bytes), VSET_REDIS_MODULE (default target/release/libvset_redis.so).
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
MODULE="${VSET_REDIS_MODULE:-$TARGET/release/libvset_redis.so}"
ROUNDS="${BENCH_ROUNDS:-5}"
N_PLAIN="${BENCH_N:-100000}"
N_PIPE="${BENCH_N_PIPELINED:-1000000}"
CLIENTS="${BENCH_CLIENTS:-50}"
VALUE_SIZE="${BENCH_VALUE_SIZE:-64}"
KEYSPACE=100000000

[ -f "$MODULE" ] || { echo "bench-redis: $MODULE not found (make build-redis-release)" >&2; exit 1; }
for bin in redis-server redis-cli redis-benchmark; do
  command -v "$bin" >/dev/null || { echo "bench-redis: $bin not installed (make deps)" >&2; exit 1; }
done

DIR="$(mktemp -d /tmp/vset-bench.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --logfile "$DIR/redis.log" \
  --save "" --appendonly no --daemonize no \
  --loadmodule "$MODULE" cold-start no &
SERVER_PID=$!
cleanup() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

cli() { redis-cli -p "$PORT" "$@"; }
for _ in $(seq 100); do cli PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
cli PING | grep -q PONG || { echo "bench-redis: redis-server did not start:" >&2; cat "$DIR/redis.log" >&2; exit 1; }

# The Lua equivalent of VSET's check: value and version in one hash, store only if
# newer. (It compares doubles, which is exactly the 2^53 bug vset avoids.)
LUA='local cur = redis.call("HGET", KEYS[1], "v")
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call("HSET", KEYS[1], "v", ARGV[1], "d", ARGV[2])
return 1'
SHA="$(cli SCRIPT LOAD "$LUA")"
VALUE="$(head -c "$VALUE_SIZE" </dev/zero | tr '\0' x)"

# Server CPU seconds so far (user + sys), from INFO cpu.
server_cpu() { cli INFO cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}'; }

# bench <pipeline> <requests> <command...>: "<requests/s> <server CPU µs per request>".
# Throughput depends on everything else running on the machine; the server's own
# CPU time per request much less so, hence both.
bench() {
  local pipe=$1 n=$2 rps before after; shift 2
  cli FLUSHALL >/dev/null
  before=$(server_cpu)
  rps=$(redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$n" -r "$KEYSPACE" -P "$pipe" --csv "$@" \
    | tail -1 | cut -d, -f2 | tr -d '"')
  after=$(server_cpu)
  awk -v r="$rps" -v b="$before" -v a="$after" -v n="$n" 'BEGIN { printf "%s %.3f\n", r, (a - b) * 1e6 / n }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RESULTS CPU PAIRED
version=0
stored_total=0
vset_total=0
echo "bench-redis: $ROUNDS rounds, $CLIENTS clients, ${VALUE_SIZE}-byte values, module $MODULE" >&2
for round in $(seq "$ROUNDS"); do
  for pipe in 1 16; do
    n=$N_PLAIN; [ "$pipe" -gt 1 ] && n=$N_PIPE
    read -r rps cpu < <(bench "$pipe" "$n" SET 'key:__rand_int__' "$VALUE")
    RESULTS[set,$pipe]+=" $rps"; CPU[set,$pipe]+=" $cpu"
    version=$((version + 1))
    before=$(cli INFO vset | awk -F: '/^vset_stored:/ {print $2+0}')
    read -r rps cpu < <(bench "$pipe" "$n" VSET 'key:__rand_int__' "$version" "$VALUE")
    RESULTS[vset,$pipe]+=" $rps"; CPU[vset,$pipe]+=" $cpu"
    after=$(cli INFO vset | awk -F: '/^vset_stored:/ {print $2+0}')
    stored_total=$((stored_total + after - before)); vset_total=$((vset_total + n))
    read -r rps cpu < <(bench "$pipe" "$n" EVALSHA "$SHA" 1 'key:__rand_int__' "$version" "$VALUE")
    RESULTS[lua,$pipe]+=" $rps"; CPU[lua,$pipe]+=" $cpu"
    # This round's ratios (last entries of each list).
    set_r=${RESULTS[set,$pipe]##* }; vset_r=${RESULTS[vset,$pipe]##* }; lua_r=${RESULTS[lua,$pipe]##* }
    set_c=${CPU[set,$pipe]##* }; vset_c=${CPU[vset,$pipe]##* }; lua_c=${CPU[lua,$pipe]##* }
    PAIRED[vs,$pipe]+=" $(awk -v a="$vset_r" -v b="$set_r" 'BEGIN { print a / b }')"
    PAIRED[vl,$pipe]+=" $(awk -v a="$vset_r" -v b="$lua_r" 'BEGIN { print a / b }')"
    PAIRED[cvs,$pipe]+=" $(awk -v a="$set_c" -v b="$vset_c" 'BEGIN { print a / b }')"
    PAIRED[cvl,$pipe]+=" $(awk -v a="$lua_c" -v b="$vset_c" 'BEGIN { print a / b }')"
  done
  echo "bench-redis: round $round done" >&2
done

declare -A MED MCPU
for cmd in set vset lua; do
  for pipe in 1 16; do
    # shellcheck disable=SC2086
    MED[$cmd,$pipe]=$(median ${RESULTS[$cmd,$pipe]})
    # shellcheck disable=SC2086
    MCPU[$cmd,$pipe]=$(median ${CPU[$cmd,$pipe]})
  done
done
# paired <name> <pipe>: median of the per-round ratios, as "0.87x".
paired() {
  # shellcheck disable=SC2086
  awk -v m="$(median ${PAIRED[$1,$2]})" 'BEGIN { printf "%.2fx", m }'
}
# spread <name> <pipe>: lowest and highest per-round ratio.
spread() {
  # shellcheck disable=SC2086
  printf '%s\n' ${PAIRED[$1,$2]} | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END { printf "%.2f–%.2f", lo, hi }'
}
fmt() { awk -v a="$1" 'BEGIN { printf "%\047d", a }' 2>/dev/null || echo "$1"; }

echo
echo "| requests/s (median of $ROUNDS rounds; ratios: median of per-round ratios) | no pipelining | -P 16 |"
echo "| --- | ---: | ---: |"
echo "| SET | $(fmt "${MED[set,1]}") | $(fmt "${MED[set,16]}") |"
echo "| VSET | $(fmt "${MED[vset,1]}") | $(fmt "${MED[vset,16]}") |"
echo "| Lua EVALSHA (same check) | $(fmt "${MED[lua,1]}") | $(fmt "${MED[lua,16]}") |"
echo "| **VSET / SET** (goal ≥ 0.85x pipelined) | $(paired vs 1) | $(paired vs 16) |"
echo "| VSET / SET, lowest–highest round | $(spread vs 1) | $(spread vs 16) |"
echo "| **VSET / Lua** (goal ≥ 1.5x pipelined) | $(paired vl 1) | $(paired vl 16) |"
echo "| VSET / Lua, lowest–highest round | $(spread vl 1) | $(spread vl 16) |"
echo
echo "| server CPU µs per request (median of $ROUNDS) | no pipelining | -P 16 |"
echo "| --- | ---: | ---: |"
echo "| SET | ${MCPU[set,1]} | ${MCPU[set,16]} |"
echo "| VSET | ${MCPU[vset,1]} | ${MCPU[vset,16]} |"
echo "| Lua EVALSHA (same check) | ${MCPU[lua,1]} | ${MCPU[lua,16]} |"
echo "| **VSET / SET** speed (SET µs ÷ VSET µs) | $(paired cvs 1) | $(paired cvs 16) |"
echo "| **VSET / Lua** speed (Lua µs ÷ VSET µs) | $(paired cvl 1) | $(paired cvl 16) |"
echo
echo "VSET stored $stored_total of $vset_total requests (the rest drew a key already written in the same run: stale, 0)."
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) (others share these CPUs: compare ratios, not absolute figures)."
echo "redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(nproc) CPUs, $CLIENTS clients, ${VALUE_SIZE}-byte values, keyspace $KEYSPACE."
