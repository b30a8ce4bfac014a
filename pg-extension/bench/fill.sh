#!/usr/bin/env bash
# `make bench-pg-fill` (also part of `make bench-pg`): read-miss fills per second,
# vset.fill against the same work written by hand, side by side in one run.
#
# One private cluster (fsync off: fills write nothing durable but the sequence), a
# ROWS-row tracked table, pgbench with random ids for DURATION seconds per variant,
# at 1 and 8 sessions:
#   fill   SELECT * FROM vset.fill('users', :id)
#   hand   SELECT row_to_json(u)::text, nextval('bench_seq') FROM users u WHERE id = :id FOR SHARE
# After a cold start every read is a fill, so this rate is how fast a cache recovers.
set -euo pipefail

ROWS="${ROWS:-100000}"
DURATION="${DURATION:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster.sh
source "$here/cluster.sh"
bench_cluster bench-pg-fill -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off -c jit=off

psql_q -c "CREATE EXTENSION vset"
psql_q <<SQL
CREATE TABLE users(id int PRIMARY KEY, email text NOT NULL, name text);
INSERT INTO users SELECT g, 'u' || g || '@example.com', 'user ' || g FROM generate_series(1, $ROWS) g;
SELECT vset.track('users') \g /dev/null
DELETE FROM vset.outbox;
CREATE SEQUENCE bench_seq CACHE 1;
VACUUM ANALYZE;
SQL
printf '\\set id random(1, %d)\nSELECT * FROM vset.fill('"'"'users'"'"', :id::text);\n' "$ROWS" > "$work/fill.sql"
printf '\\set id random(1, %d)\nSELECT row_to_json(u)::text, nextval('"'"'bench_seq'"'"') FROM users u WHERE id = :id FOR SHARE;\n' "$ROWS" > "$work/hand.sql"
chmod 644 "$work"/*.sql

tps() {
  "$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c "$2" -j "$(( $2 < 2 ? 1 : 2 ))" -T "$DURATION" \
    -f "$work/$1.sql" postgres 2>/dev/null | awk '/^tps = / {printf "%.0f", $3}'
}

echo
echo "== bench-pg-fill: fills per second, $ROWS rows, random ids, ${DURATION}s each (PostgreSQL 15, release build)"
echo
echo "| sessions | vset.fill | hand-written query | fill / hand |"
echo "| ---: | ---: | ---: | ---: |"
for sessions in 1 8; do
  f="$(tps fill "$sessions")"
  h="$(tps hand "$sessions")"
  awk -v s="$sessions" -v f="$f" -v h="$h" 'BEGIN { printf "| %d | %d | %d | %.2fx |\n", s, f, h, f / h }'
done
