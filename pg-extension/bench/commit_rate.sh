#!/usr/bin/env bash
# `make bench-pg-commit` (also part of `make bench-pg`): the durable commit rate a
# tracked table leaves the database, side by side in one run.
#
# One private cluster, fsync = on, synchronous_commit = on (durability is part of
# the figure), vset preloaded (release build). pgbench, CLIENTS clients, single-row
# UPDATEs of random rows of a ROWS-row table, DURATION seconds per run, ROUNDS
# rounds in rotating order; medians of commits/s:
#   plain              no trigger
#   plpgsql            hand-written PL/pgSQL outbox trigger (CACHE 1 sequence, INSERT, row_to_json), no NOTIFY
#   plpgsql_notify     the same plus pg_notify() (PostgreSQL sends one per transaction)
#   vset               vset.track()ed, library preloaded: shared-memory wake-up (default)
#   vset_notify        the same table with vset.notify = on (NOTIFY as well)
# Not a test: it prints numbers. Pass CLIENTS="16 64" for several client counts.
set -euo pipefail

ROWS="${ROWS:-10000}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-16 64}"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster.sh
source "$here/cluster.sh"
# The preloaded library and the functions' must be one file ($libdir/vset.so, the
# release build just installed): a private copy would be loaded twice. Do not
# reinstall the extension while this runs.
bench_cluster bench-pg-commit -c shared_buffers=256MB -c max_wal_size=4GB -c max_connections=200 \
  -c fsync=on -c synchronous_commit=on -c autovacuum=off -c jit=off -c shared_preload_libraries=vset

psql_q -c "CREATE EXTENSION vset"
bench_plpgsql_outbox
psql_q <<SQL
CREATE TABLE t_plain (id int PRIMARY KEY, v bigint NOT NULL, name text NOT NULL);
CREATE TABLE t_plpgsql (LIKE t_plain INCLUDING ALL);
CREATE TABLE t_plpgsql_notify (LIKE t_plain INCLUDING ALL);
CREATE TABLE t_vset (LIKE t_plain INCLUDING ALL);
INSERT INTO t_plain SELECT g, 0, 'user ' || g FROM generate_series(1, $ROWS) g;
INSERT INTO t_plpgsql SELECT * FROM t_plain;
INSERT INTO t_plpgsql_notify SELECT * FROM t_plain;
INSERT INTO t_vset SELECT * FROM t_plain;
CREATE TRIGGER bench_capture AFTER UPDATE ON t_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_capture('');
CREATE TRIGGER bench_capture AFTER UPDATE ON t_plpgsql_notify FOR EACH ROW EXECUTE FUNCTION bench_capture('notify');
SELECT vset.track('t_vset') \g /dev/null
VACUUM ANALYZE;
SQL
if [ "$(psql_q -At -c "SELECT vset.wakeup()")" != shared_memory ]; then
  echo "vset is not preloaded in the bench cluster" >&2; exit 1
fi

for t in plain plpgsql plpgsql_notify vset; do
  printf '\\set id random(1, %d)\nUPDATE t_%s SET v = v + 1 WHERE id = :id;\n' "$ROWS" "$t" > "$work/$t.sql"
done
cp "$work/vset.sql" "$work/vset_notify.sql"
chmod 644 "$work"/*.sql

# commits/s of one pgbench run of variant $1 with $2 clients.
run() {
  local opts=""
  if [ "$1" = vset_notify ]; then opts="-c vset.notify=on"; fi
  PGOPTIONS="$opts" "$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c "$2" -j 2 -T "$DURATION" \
    -f "$work/$1.sql" postgres 2>/dev/null | awk '/^tps = / {printf "%.0f", $3}'
}

variants=(plain plpgsql plpgsql_notify vset vset_notify)
for clients in $CLIENTS; do
  declare -A tps=()
  for r in $(seq 1 "$ROUNDS"); do
    # Rotate the order so no variant always runs first (or after the same one).
    order=("${variants[@]:$(( (r - 1) % ${#variants[@]} ))}" "${variants[@]:0:$(( (r - 1) % ${#variants[@]} ))}")
    line="   $clients clients, round $r:"
    for v in "${order[@]}"; do
      got="$(run "$v" "$clients")"
      tps[$v]+="$got "
      line+=" $v $got,"
      psql_q -c "TRUNCATE vset.outbox, bench_outbox" -c "CHECKPOINT"
    done
    echo "${line%,}"
  done
  base="$(echo ${tps[plain]} | median)"
  echo
  echo "== bench-pg-commit: $clients clients, single-row UPDATEs of $ROWS rows, fsync=on, synchronous_commit=on, median of $ROUNDS x ${DURATION}s (PostgreSQL 15, release build)"
  echo
  echo "| capture | commits/s | vs no trigger |"
  echo "| --- | ---: | ---: |"
  for v in "${variants[@]}"; do
    m="$(echo ${tps[$v]} | median)"
    case $v in
      plain) name="no trigger";;
      plpgsql) name="PL/pgSQL outbox trigger, no NOTIFY";;
      plpgsql_notify) name="PL/pgSQL outbox trigger + pg_notify";;
      vset) name="vset, preloaded (shared-memory wake-up)";;
      vset_notify) name="vset with vset.notify = on";;
    esac
    awk -v n="$name" -v m="$m" -v b="$base" 'BEGIN { printf "| %s | %.0f | %.2fx |\n", n, m, m / b }'
  done
  echo
  unset tps
done
