#!/usr/bin/env bash
# make demo — the whole vset system on private servers, in plain words.
#
# Starts a private PostgreSQL 15 (as the unprivileged `postgres` OS user when run
# as root) and a private redis-server with the vset module, both on free loopback
# ports under .run/demo, creates and tracks a `users` table, starts vset-relay,
# and plays the classic stale-cache incident: a user edits her profile while reads
# are served from Redis, other users write concurrently, and the relay is killed
# and restarted mid-stream. Ends by checking every cached row against the
# database. Everything is removed on exit (also on Ctrl-C or failure).
#
# Needs: target/release/libvset_redis.so, target/debug/vset-relay, the extension
# installed (make demo builds all three). Overrides: VSET_RELAY_BIN,
# VSET_REDIS_MODULE, CARGO_TARGET_DIR, RUN_DIR, PG_CONFIG.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO_SQL="$ROOT/sql/demo"
RUN="${RUN_DIR:-$ROOT/.run}/demo"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RELAY_BIN="${VSET_RELAY_BIN:-$TARGET/debug/vset-relay}"
MODULE="${VSET_REDIS_MODULE:-$TARGET/release/libvset_redis.so}"
PG_BIN="$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)"

if [ -t 1 ]; then B=$'\033[1m'; G=$'\033[32m'; R=$'\033[31m'; N=$'\033[0m'; else B= G= R= N=; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say()  { printf '   %s\n' "$*"; }
ok()   { printf '   %s✓ %s%s\n' "$G" "$*" "$N"; }
die()  { printf '   %s✗ %s%s\n' "$R" "$*" "$N" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

for f in "$RELAY_BIN" "$MODULE" "$PG_BIN/initdb"; do
  [ -x "$f" ] || [ -f "$f" ] || die "missing $f (run: make demo, which builds it)"
done

# ---------------------------------------------------------------- servers
RELAY_PID= PGBENCH_PID= REDIS_PID=
cleanup() {
  set +e
  [ -n "$PGBENCH_PID" ] && kill "$PGBENCH_PID" 2>/dev/null && wait "$PGBENCH_PID" 2>/dev/null
  [ -n "$RELAY_PID" ] && kill -9 "$RELAY_PID" 2>/dev/null
  [ -n "$REDIS_PID" ] && kill -9 "$REDIS_PID" 2>/dev/null
  if [ -f "$RUN/pg/data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$RUN/pg/data" -m immediate stop >/dev/null 2>&1
  fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# initdb and postgres refuse to run as root: use the postgres OS user then.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rm -rf "$RUN"
mkdir -p "$RUN/pg" "$RUN/redis"
[ "$(id -u)" -eq 0 ] && chown postgres: "$RUN/pg"
PGPORT=$(free_port); RPORT=$(free_port); MPORT=$(free_port)
PGURL="postgres://postgres@127.0.0.1:$PGPORT/postgres"

step "Starting a private PostgreSQL (port $PGPORT) and Redis with the vset module (port $RPORT) under .run/demo"
as_pg "$PG_BIN/initdb" -D "$RUN/pg/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$RUN/pg/data" -l "$RUN/pg/postgres.log" -w \
  -o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$RUN/pg \
      -c shared_preload_libraries=vset" start >/dev/null
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$RUN/redis" --save '' --appendonly no \
  --loadmodule "$MODULE" --logfile "$RUN/redis/redis.log" &
REDIS_PID=$!
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$PGURL")
sql() { "${PSQL[@]}" -At -c "$1"; }
rc() { redis-cli -p "$RPORT" "$@"; }
for _ in $(seq 100); do rc PING >/dev/null 2>&1 && break; sleep 0.05; done
say "PostgreSQL $(sql 'SHOW server_version'), $(redis-server --version | cut -d' ' -f1-3)"

step "Creating the users table and tracking it with vset"
"${PSQL[@]}" -f "$DEMO_SQL/schema.sql" >/dev/null
say "vset.track('public.users'): every committed change now writes a versioned record"
say "into vset.outbox in the same transaction (cache key public.users:<id>)."
say "Redis started without any saved data, so the module is cold: $(rc VFLOOR | paste -sd' ')"
say "(cold = it refuses every VSET until someone sets a floor: nothing old can sneak in)."

step "Starting vset-relay"
start_relay() {
  "$RELAY_BIN" --postgres "$PGURL" --redis "redis://127.0.0.1:$RPORT" \
    --metrics "127.0.0.1:$MPORT" --poll-interval 200ms --backoff-max 500ms 2>>"$RUN/relay.log" &
  RELAY_PID=$!
}
start_relay
for _ in $(seq 100); do [ "$(rc VFLOOR | sed -n 2p)" = "0" ] && break; sleep 0.05; done
[ "$(rc VFLOOR | sed -n 2p)" = "0" ] || die "the relay did not end the cold start; see $RUN/relay.log"
ok "the relay found Redis cold and set VFLOOR to the current version: $(rc VFLOOR | paste -sd' ')"

"${PSQL[@]}" -f "$DEMO_SQL/seed.sql" >/dev/null
wait_drained() {
  for _ in $(seq 600); do [ "$(sql 'SELECT count(*) FROM vset.outbox')" = "0" ] && return 0; sleep 0.05; done
  die "the outbox did not drain; see $RUN/relay.log"
}
wait_drained
ok "1,000 users inserted; the relay copied them to Redis: $(rc DBSIZE) keys"
say "Alice (user 42) as the API reads her, from Redis:"
say "  VGET public.users:42 → $(rc VGET public.users:42)"

step "The classic incident, and why it cannot happen here"
say "Without vset an app writes the database, then sets or deletes the cache key. If it"
say "crashes in between, or a slow retry lands after a newer write, the cache keeps an"
say "old profile until someone notices. Here the app never writes the cache: the relay"
say "does, after COMMIT, with a version. A late write with an older version is refused:"
V=$(rc VGET public.users:42 WITHVERSION | sed -n 2p)
say "  VGET public.users:42 WITHVERSION → version $V"
R=$(rc VSET public.users:42 $((V - 1)) '{"id":42,"name":"Alice","bio":"an OLD profile"}')
say "  VSET public.users:42 $((V - 1)) '{…an OLD profile…}' → $R (not stored)"
[ "$R" = "0" ] || die "a stale VSET was stored"
ok "Redis still has: $(rc VGET public.users:42)"

step "Alice edits her profile while 4 other connections write ~400 changes/s"
"$PG_BIN/pgbench" -n -c 4 -j 2 -R 400 -T 35 -f "$DEMO_SQL/writers.pgbench" "$PGURL" >"$RUN/pgbench.log" 2>&1 &
PGBENCH_PID=$!
sleep 1
bio_in_redis() { rc VGET public.users:42 | grep -o '"bio":"[^"]*"' | cut -d'"' -f4; }
# Update Alice's bio to "$1", then read Redis until it shows it. Every read must show
# either the previous acknowledged bio or the new one: never anything older.
MAX_LAG=0
edit_and_watch() {
  local bio=$1 prev=$2 t_ack seen lag reads=0
  sql "UPDATE public.users SET bio = '$bio', rev = rev + 1, updated_at = now() WHERE id = 42" >/dev/null
  t_ack=$(now_ms)
  while :; do
    seen=$(bio_in_redis); reads=$((reads + 1))
    if [ "$seen" = "$bio" ]; then break; fi
    [ "$seen" = "$prev" ] || die "read '$seen' while the last acknowledged bio was '$prev' → '$bio'"
    [ $(( $(now_ms) - t_ack )) -lt 10000 ] || die "'$bio' not visible after 10 s"
  done
  lag=$(( $(now_ms) - t_ack )); [ "$lag" -gt "$MAX_LAG" ] && MAX_LAG=$lag
  say "COMMIT of bio='$bio' acknowledged; Redis showed it ${lag} ms later (after $reads read(s); earlier reads showed '$prev')"
}
prev=$(bio_in_redis)
for i in 1 2 3 4 5; do edit_and_watch "edit $i" "$prev"; prev="edit $i"; done
ok "every read showed the last acknowledged profile or the one before it, never older;"
say "the longest gap was ${MAX_LAG} ms (measured with redis-cli/psql processes, which add a few ms)"

step "The relay is killed (SIGKILL) in the middle of the stream"
kill -9 "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=
T_KILL=$(now_ms)
sql "UPDATE public.users SET bio = 'edit 6', rev = rev + 1, updated_at = now() WHERE id = 42" >/dev/null
say "Alice saved bio='edit 6' (COMMIT acknowledged) while no relay runs."
sleep 2
say "2 s later: $(sql 'SELECT count(*) FROM vset.outbox') changes wait in vset.outbox; Redis still shows bio='$(bio_in_redis)'."
say "That is the lag, visible and measured (relay down = cache behind), not a stale entry:"
say "the change is committed in the outbox and nothing can overwrite it with something older."

step "The relay restarts and catches up"
BACKLOG=$(sql 'SELECT count(*) FROM vset.outbox')
start_relay
T_START=$(now_ms)
# Writers keep writing, so the outbox is never empty for long: "caught up" means
# Alice's edit is visible and what waits is only the last few milliseconds' writes.
for _ in $(seq 600); do
  [ "$(bio_in_redis)" = "edit 6" ] && [ "$(sql 'SELECT count(*) FROM vset.outbox')" -lt 50 ] && break
  sleep 0.02
done
[ "$(bio_in_redis)" = "edit 6" ] || die "Alice's last edit is not in Redis; see $RUN/relay.log"
ok "the relay caught up on $BACKLOG waiting changes $(( $(now_ms) - T_START )) ms after its restart; Redis shows bio='edit 6'"
say "(during the outage reads were behind by up to $(( $(now_ms) - T_KILL )) ms: the relay's downtime, never a wrong value)"
prev="edit 6"
for i in 7 8 9; do edit_and_watch "edit $i" "$prev"; prev="edit $i"; done

step "Writers stop; the relay drains; every cached row is compared with the database"
wait "$PGBENCH_PID" 2>/dev/null || true; PGBENCH_PID=
say "pgbench: $(grep -Eo 'number of transactions actually processed: [0-9]+' "$RUN/pgbench.log" | grep -Eo '[0-9]+$' || echo '?') profile edits committed"
wait_drained
"${PSQL[@]}" -At -F $'\001' -f "$DEMO_SQL/expected.sql" >"$RUN/expected"
cut -d$'\001' -f1 "$RUN/expected" | sed 's/^/VGET /' | rc >"$RUN/cached"
total=$(wc -l <"$RUN/expected")
paste -d$'\001' "$RUN/expected" "$RUN/cached" | awk -F'\001' '
  $3 == ""  { miss++; next }
  $2 == $3  { same++; next }
            { bad++; if (bad <= 3) print "   differs: " $1 "\n     db:    " $2 "\n     redis: " $3 }
  END { printf "%d %d %d\n", same, miss, bad }' >"$RUN/compare"
read -r same miss bad < <(tail -1 "$RUN/compare")
head -n -1 "$RUN/compare"
[ "$bad" = "0" ] || die "$bad cached rows differ from the database"
ok "$same of $total users: Redis holds exactly the database row; $miss not cached, $bad stale"

step "The relay's own numbers (Prometheus text on /metrics)"
curl_metrics() { exec 3<>"/dev/tcp/127.0.0.1/$MPORT"; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3; exec 3<&-; }
curl_metrics | grep -E '^vset_relay_(applied_total|rejected_total|acked_total|cold_starts_total|lag_seconds_(count|sum)) ' | sed 's/^/   /'
say "(this relay process started after the kill; applied = stored by Redis, rejected = refused as stale)"

step "Done: cleaning up .run/demo"
