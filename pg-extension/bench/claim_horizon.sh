#!/usr/bin/env bash
# `make bench-pg-claim`: how fast relays can claim while something holds the xmin
# horizon back (a long query, pg_dump, a replication slot). Not a test: it prints numbers.
#
# One private cluster (fsync off: this measures the claim's scan, not the disk). Each
# round inserts BATCH tracked rows (BATCH outbox records) and drains them with
# vset.claim(1000), one transaction per claim (pgbench -t), timing the drain. ROUNDS
# rounds without, then ROUNDS rounds with a REPEATABLE READ transaction left open in
# another session: every claimed-and-deleted outbox row then stays as a dead tuple
# that the claim's index scan walks past from the left edge.
set -euo pipefail

BATCH="${BATCH:-20000}"
ROUNDS="${ROUNDS:-8}"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster.sh
source "$here/cluster.sh"
bench_cluster bench-pg-claim -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off -c jit=off

psql_q -c "CREATE EXTENSION vset"
psql_q <<SQL
CREATE TABLE t(id int PRIMARY KEY, v int NOT NULL);
SELECT vset.track('t') \g /dev/null
SQL
printf 'SELECT count(*) FROM vset.claim(1000);\n' > "$work/claim.sql"
chmod 644 "$work/claim.sql"
claims=$(( (BATCH + 999) / 1000 ))

# changes/s of one round: insert BATCH rows, drain them.
round() {
  local base="$1"
  psql_q -c "INSERT INTO t SELECT g, 0 FROM generate_series($base + 1, $base + $BATCH) g"
  local t0 t1
  t0=$(date +%s.%N)
  "$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c 1 -t "$claims" -f "$work/claim.sql" postgres >/dev/null 2>&1
  t1=$(date +%s.%N)
  local left
  left=$(psql_q -At -c "SELECT count(*) FROM vset.outbox")
  [ "$left" = 0 ] || { echo "round left $left rows in the outbox" >&2; exit 1; }
  awk -v n="$BATCH" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

declare -a free held
base=0
for r in $(seq 1 "$ROUNDS"); do free+=("$(round $base)"); base=$((base + BATCH)); done
psql_q -c "VACUUM vset.outbox"
# Hold the horizon: a snapshot taken now, kept open until the end.
"$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q \
  -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM t" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
holder=$!
sleep 1
for r in $(seq 1 "$ROUNDS"); do held+=("$(round $base)"); base=$((base + BATCH)); done
kill "$holder" 2>/dev/null || true

echo
echo "== bench-pg-claim: draining $BATCH-record batches with vset.claim(1000), round by round (changes/s)"
echo
echo "| round | dead outbox rows before it (held) | no snapshot held | snapshot held | held / free |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for i in $(seq 0 $((ROUNDS - 1))); do
  awk -v r=$((i + 1)) -v d=$((i * BATCH)) -v f="${free[$i]}" -v h="${held[$i]}" \
    'BEGIN { printf "| %d | %d | %d | %d | %.2fx |\n", r, d, f, h, h / f }'
done
