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
# shellcheck source=cluster.sh
source "$here/cluster.sh"
target_dir="${CARGO_TARGET_DIR:-$(dirname "$bench_ext")/target}"
bench_cluster bench-pg -c shared_buffers=512MB -c max_wal_size=4GB -c synchronous_commit=off \
  -c autovacuum=off -c jit=off
# Others may reinstall a debug build into the system PostgreSQL while this runs; the
# bench cluster's functions point at a private copy of the release library instead.
cp "$target_dir/release/libvset.so" "$work/vset.so"
chmod 644 "$work/vset.so"

# (In its own session: creating C functions loads the system library into it.)
psql_q <<SQL
CREATE EXTENSION vset;
UPDATE pg_catalog.pg_proc SET probin = '$work/vset.so' WHERE probin = '\$libdir/vset';
SQL
bench_plpgsql_outbox
psql_q <<SQL
CREATE TABLE t_plain  (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, score int NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE t_plpgsql (LIKE t_plain INCLUDING ALL);
CREATE TABLE t_vset    (LIKE t_plain INCLUDING ALL);
INSERT INTO t_plain SELECT g, 'user ' || g, 'user' || g || '@example.com', g % 1000, now() FROM generate_series(1, $ROWS) g;
INSERT INTO t_plpgsql SELECT * FROM t_plain;
INSERT INTO t_vset SELECT * FROM t_plain;

CREATE TRIGGER bench_capture AFTER UPDATE ON t_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_capture('notify');

-- Wall and CPU time of one statement in this backend. CPU time (utime + stime of the
-- backend, from /proc/self/stat, 10 ms ticks) is what the trigger costs; it is also
-- far less disturbed than wall time by other work on a shared machine.
CREATE FUNCTION bench_measure(q text, OUT wall_ms float8, OUT cpu_ms float8) LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; c0 bigint; st text;
BEGIN
    st := pg_read_file('/proc/self/stat');
    c0 := split_part(st, ' ', 14)::bigint + split_part(st, ' ', 15)::bigint;
    t0 := clock_timestamp();
    EXECUTE q;
    wall_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    st := pg_read_file('/proc/self/stat');
    cpu_ms := (split_part(st, ' ', 14)::bigint + split_part(st, ' ', 15)::bigint - c0) * 1000.0 / $(getconf CLK_TCK);
END \$\$;
SELECT vset.track('t_vset') \g /dev/null
VACUUM ANALYZE;
SQL

# "wall_ms cpu_ms" of one UPDATE (AFTER triggers run inside the statement).
measure() {
  psql_q -At -F ' ' -c "SELECT wall_ms, cpu_ms FROM bench_measure('UPDATE t_$1 SET score = score + 1, updated_at = clock_timestamp()')"
}

declare -A wall cpu
for r in $(seq 1 "$ROUNDS"); do
  order=(plain plpgsql vset)
  if [ $((r % 2)) -eq 0 ]; then order=(vset plpgsql plain); fi
  line="   round $r:"
  for t in "${order[@]}"; do
    read -r w c < <(measure "$t")
    wall[$t]+="$w "
    cpu[$t]+="$c "
    line+=" $t ${w%.*} ms wall / ${c%.*} ms cpu,"
  done
  psql_q -c "DELETE FROM vset.outbox" -c "DELETE FROM bench_outbox" -c "VACUUM t_plain, t_plpgsql, t_vset, vset.outbox, bench_outbox"
  echo "${line%,}"
done

med() { echo $1 | tr ' ' '\n' | median; }
awk -v rows="$ROWS" -v rounds="$ROUNDS" \
    -v pw="$(med "${wall[plain]}")" -v gw="$(med "${wall[plpgsql]}")" -v vw="$(med "${wall[vset]}")" \
    -v pc="$(med "${cpu[plain]}")" -v gc="$(med "${cpu[plpgsql]}")" -v vc="$(med "${cpu[vset]}")" 'BEGIN {
  printf "\n== bench-pg: UPDATE of %d rows, median of %d rounds (PostgreSQL 15, release build)\n\n", rows, rounds;
  printf "| table | wall (ms) | backend CPU (ms) | added per row, CPU (µs) | added per row, wall (µs) |\n";
  printf "| --- | ---: | ---: | ---: | ---: |\n";
  printf "| no trigger | %.0f | %.0f | — | — |\n", pw, pc;
  printf "| PL/pgSQL outbox trigger | %.0f | %.0f | %.2f | %.2f |\n", gw, gc, (gc - pc) * 1000 / rows, (gw - pw) * 1000 / rows;
  printf "| vset (Rust trigger) | %.0f | %.0f | %.2f | %.2f |\n", vw, vc, (vc - pc) * 1000 / rows, (vw - pw) * 1000 / rows;
  printf "\nvset added cost / PL/pgSQL added cost: %.2f (CPU), %.2f (wall); goal <= 0.70\n", (vc - pc) / (gc - pc), (vw - pw) / (gw - pw);
}'
