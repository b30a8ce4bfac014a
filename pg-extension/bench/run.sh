#!/usr/bin/env bash
# `make bench-pg`: per-row cost of capturing a 100k-row UPDATE.
#
# One private cluster (release build of the extension, started here as the postgres
# user), three identical tables, one statement each, in alternating order, ROUNDS
# times; the median of each is reported:
#   plain    no trigger
#   plpgsql  the hand-written equivalent: AFTER UPDATE row trigger in PL/pgSQL that
#            draws a version (CACHE 1 sequence), renders the key, INSERTs into an
#            outbox table shaped like vset.outbox with row_to_json(NEW), and
#            pg_notify()s (PostgreSQL folds the duplicates)
#   vset     vset.track()ed
# "added per row" = (trigger time - plain time) / rows. Not a test: it prints numbers.
set -euo pipefail

ROWS="${ROWS:-100000}"
ROUNDS="${ROUNDS:-5}"
here="$(cd "$(dirname "$0")" && pwd)"
ext="$(dirname "$here")"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
bindir="$("$PG_CONFIG" --bindir)"
export PATH="$HOME/.cargo/bin:$PATH"

echo "== bench-pg: building and installing the release build of the extension"
(cd "$ext" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)

work="$(mktemp -d /tmp/vset-bench-pg.XXXXXX)"
chmod 755 "$work"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$work"; as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
started=""
cleanup() {
  if [ -n "$started" ]; then as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$bindir/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/data" -w -l "$work/pg.log" -o "-p $port -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories=$work -c shared_buffers=512MB -c max_wal_size=4GB -c synchronous_commit=off \
  -c autovacuum=off -c jit=off" start >/dev/null
started=yes
psql_q() { "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_q <<SQL
CREATE EXTENSION vset;
CREATE TABLE t_plain  (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, score int NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE t_plpgsql (LIKE t_plain INCLUDING ALL);
CREATE TABLE t_vset    (LIKE t_plain INCLUDING ALL);
INSERT INTO t_plain SELECT g, 'user ' || g, 'user' || g || '@example.com', g % 1000, now() FROM generate_series(1, $ROWS) g;
INSERT INTO t_plpgsql SELECT * FROM t_plain;
INSERT INTO t_vset SELECT * FROM t_plain;

-- The hand-written equivalent of vset's capture.
CREATE SEQUENCE bench_version_seq CACHE 1;
CREATE TABLE bench_outbox (
    id bigint NOT NULL PRIMARY KEY, tbl regclass NOT NULL, cache_key text NOT NULL, op text NOT NULL,
    version bigint NOT NULL, payload text, created_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION bench_capture() RETURNS trigger LANGUAGE plpgsql AS \$\$
DECLARE v bigint := nextval('bench_version_seq');
BEGIN
    INSERT INTO bench_outbox (id, tbl, cache_key, op, version, payload)
    VALUES (v, TG_RELID, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ':' || NEW.id, 'set', v, row_to_json(NEW)::text);
    PERFORM pg_notify('bench', '');
    RETURN NULL;
END \$\$;
CREATE TRIGGER bench_capture AFTER UPDATE ON t_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_capture();
SELECT vset.track('t_vset') \g /dev/null
VACUUM ANALYZE;
SQL

# Times one statement (autocommit, so commit and the NOTIFY are included), in ms.
time_ms() {
  psql_q -c '\timing on' -c "$1" | awk '/^Time:/ {print $2}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A times
for r in $(seq 1 "$ROUNDS"); do
  order=(plain plpgsql vset)
  if [ $((r % 2)) -eq 0 ]; then order=(vset plpgsql plain); fi
  for t in "${order[@]}"; do
    ms="$(time_ms "UPDATE t_$t SET score = score + 1, updated_at = clock_timestamp()")"
    times[$t]+="$ms "
  done
  psql_q -c "DELETE FROM vset.outbox" -c "DELETE FROM bench_outbox" -c "VACUUM t_plain, t_plpgsql, t_vset, vset.outbox, bench_outbox"
  echo "   round $r: plain ${ms:+$(echo ${times[plain]} | awk '{print $NF}')} ms, plpgsql $(echo ${times[plpgsql]} | awk '{print $NF}') ms, vset $(echo ${times[vset]} | awk '{print $NF}') ms"
done

plain="$(echo ${times[plain]} | tr ' ' '\n' | median)"
plpgsql="$(echo ${times[plpgsql]} | tr ' ' '\n' | median)"
vset="$(echo ${times[vset]} | tr ' ' '\n' | median)"
awk -v rows="$ROWS" -v rounds="$ROUNDS" -v p="$plain" -v g="$plpgsql" -v v="$vset" 'BEGIN {
  ag = (g - p) * 1000 / rows; av = (v - p) * 1000 / rows;
  printf "\n== bench-pg: UPDATE of %d rows, median of %d rounds (PostgreSQL 15, release build)\n\n", rows, rounds;
  printf "| table | UPDATE time (ms) | added per row (µs) |\n| --- | ---: | ---: |\n";
  printf "| no trigger | %.1f | — |\n", p;
  printf "| PL/pgSQL outbox trigger | %.1f | %.2f |\n", g, ag;
  printf "| vset (Rust trigger) | %.1f | %.2f |\n", v, av;
  printf "\nvset added cost / PL/pgSQL added cost = %.2f (goal: <= 0.70)\n", av / ag;
}'
