#!/usr/bin/env bash
# `make test-pg`: the extension's tests.
#   1. #[pg_test]s:   cargo pgrx test pg15 (a pgrx-managed cluster, as the postgres user)
#   2. isolation:     pg_isolation_regress + isolationtester (Debian's
#                     postgresql-server-dev-15) against a private cluster started here
#                     as the postgres user, on a free loopback port
# Then reinstalls the plain (non-test) build, because `cargo pgrx test` installs a
# build with the test schema into the system PostgreSQL.
# The Rust concurrency test (tests/tests/pg_concurrency.rs) runs with `make test-e2e`
# or `cargo test -p vset-tests --test pg_concurrency`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
ext="$(dirname "$here")"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
bindir="$("$PG_CONFIG" --bindir)"
pgxs_src="$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")"   # .../lib/pgxs/src
iso_regress="$pgxs_src/test/isolation/pg_isolation_regress"
export PATH="$HOME/.cargo/bin:$PATH"

work="$(mktemp -d /tmp/vset-test-pg.XXXXXX)"
chmod 755 "$work"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$work"
  as_pg() { runuser -u postgres -- "$@"; }
  runas=(--runas postgres)
else
  as_pg() { "$@"; }
  runas=()
fi
pid=""
cleanup() {
  if [ -n "$pid" ]; then as_pg "$bindir/pg_ctl" -D "$work/iso" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== test-pg: #[pg_test]s (cargo pgrx test pg15)"
start=$SECONDS
(cd "$ext" && cargo pgrx test pg15 "${runas[@]}" --pgdata "$work/pgrx")
echo "== test-pg: #[pg_test]s passed in $((SECONDS - start))s"

echo "== test-pg: reinstalling the non-test build"
(cd "$ext" && cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null)

echo "== test-pg: isolation specs"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$bindir/initdb" -D "$work/iso" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/iso" -w -l "$work/iso.log" \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c fsync=off" start >/dev/null
pid=started
mkdir -p "$work/iso-out" && chown "$(stat -c %u "$work")" "$work/iso-out"
specs=(two_updaters delete_reinsert fill_vs_update claim_two_relays)
if ! as_pg "$iso_regress" --host=127.0.0.1 --port="$port" --user=postgres \
      --dbname=vset_isolation --bindir="$bindir" \
      --inputdir="$here/isolation" --outputdir="$work/iso-out" "${specs[@]}"; then
  echo "== isolation diffs:"; cat "$work/iso-out/regression.diffs" 2>/dev/null || true
  exit 1
fi
echo "== test-pg: all passed ($((SECONDS))s)"
