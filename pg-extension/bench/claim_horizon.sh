#!/usr/bin/env bash
# `make bench-pg-claim`: how fast relays can claim while something holds the xmin
# horizon back (a long query, pg_dump, a replication slot). Not a test: it prints numbers.
#
# One private cluster (fsync off: this measures the claim's scan, not the disk). Each
# round inserts BATCH tracked rows (BATCH outbox records) and drains them with
# vset.claim(1000), one transaction per claim, timing the drain. ROUNDS rounds
# without, then ROUNDS rounds with a REPEATABLE READ transaction left open in another
# session: every claimed-and-deleted outbox row then stays as a dead tuple. Each
# phase runs on one connection, as a relay does (the claim's low-water mark is kept
# per connection). Two pgbench clients update an untracked table at 2,000
# transactions/s throughout, so that short transactions are always in flight.
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
claims=$(( (BATCH + 999) / 1000 ))

# One phase: ROUNDS rounds of "insert BATCH rows, drain them", on one connection;
# prints the changes/s of each round.
phase() {
  local base="$1" script="$work/phase.sql"
  : > "$script"
  for r in $(seq 1 "$ROUNDS"); do
    echo "INSERT INTO t SELECT g, 0 FROM generate_series($base + 1, $base + $BATCH) g;" >> "$script"
    echo "SELECT 'start', extract(epoch FROM clock_timestamp());" >> "$script"
    for c in $(seq 1 "$claims"); do echo "SELECT 'claimed', count(*) FROM vset.claim(1000);" >> "$script"; done
    echo "SELECT 'end', extract(epoch FROM clock_timestamp()), (SELECT count(*) FROM vset.outbox);" >> "$script"
    base=$((base + BATCH))
  done
  psql_q -At -F ' ' -f "$script" | awk -v n="$BATCH" '
    $1 == "start" { t0 = $2 }
    $1 == "end" { if ($3 != 0) { print "round left " $3 " rows in the outbox" > "/dev/stderr"; exit 1 }
                  printf "%.0f\n", n / ($2 - t0) }'
}

# A steady write load during both phases (short transactions always in flight,
# as in production), on an untracked table so that the rounds stay exact.
psql_q -c "CREATE TABLE w(id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO w SELECT g, 0 FROM generate_series(1, 1000) g"
printf '\\set id random(1, 1000)\nUPDATE w SET n = n + 1 WHERE id = :id;\n' > "$work/write.sql"
chmod 644 "$work/write.sql"
"$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c 2 -R 2000 -T 3600 -f "$work/write.sql" postgres >/dev/null 2>&1 &
load=$!
mapfile -t free < <(phase 0)
psql_q -c "VACUUM vset.outbox"
# Hold the horizon: a snapshot taken now, kept open until the end.
"$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q \
  -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM t" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
holder=$!
sleep 1
mapfile -t held < <(phase $((ROUNDS * BATCH)))
kill -0 "$load" 2>/dev/null || { echo "the background write load stopped early" >&2; exit 1; }
kill "$holder" "$load" 2>/dev/null || true
[ "${#free[@]}" = "$ROUNDS" ] && [ "${#held[@]}" = "$ROUNDS" ] || { echo "a phase failed" >&2; exit 1; }

echo
echo "== bench-pg-claim: draining $BATCH-record batches with vset.claim(1000), round by round (changes/s)"
echo
echo "| round | dead outbox rows before it (held) | no snapshot held | snapshot held | held / free |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for i in $(seq 0 $((ROUNDS - 1))); do
  awk -v r=$((i + 1)) -v d=$((i * BATCH)) -v f="${free[$i]}" -v h="${held[$i]}" \
    'BEGIN { printf "| %d | %d | %d | %d | %.2fx |\n", r, d, f, h, h / f }'
done
