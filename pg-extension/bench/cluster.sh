# Sourced by the extension's benchmarks (run.sh, commit_rate.sh): builds and installs
# the release build of the extension, starts a private cluster as the postgres user
# on a free loopback port, and stops and removes it on exit.
#
#   bench_cluster <label> [-c name=value ...]    sets work, port, bindir; defines psql_q

PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
bindir="$("$PG_CONFIG" --bindir)"
export PATH="$HOME/.cargo/bin:$PATH"
bench_ext="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bench_cluster() {
  local label="$1"
  shift
  echo "== $label: building and installing the release build of the extension"
  (cd "$bench_ext" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
  work="$(mktemp -d "/tmp/vset-$label.XXXXXX")"
  chmod 755 "$work"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$work"
    as_pg() { runuser -u postgres -- "$@"; }
  else
    as_pg() { "$@"; }
  fi
  started=""
  trap bench_cluster_cleanup EXIT
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_pg "$bindir/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  as_pg "$bindir/pg_ctl" -D "$work/data" -w -l "$work/pg.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work $*" start >/dev/null
  started=yes
}

bench_cluster_cleanup() {
  if [ -n "$started" ]; then as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}

psql_q() { "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

# Median of the numbers on stdin (one per line or separated by spaces).
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The hand-written equivalent of vset's capture, the baseline the benchmarks compare
# with: an AFTER row trigger in PL/pgSQL drawing a version from a CACHE 1 sequence and
# INSERTing the rendered key and row_to_json(NEW) into an outbox shaped like
# vset.outbox; `bench_capture('notify')` also calls pg_notify.
bench_plpgsql_outbox() {
  psql_q <<'SQL'
CREATE SEQUENCE bench_version_seq CACHE 1;
CREATE TABLE bench_outbox (
    id bigint NOT NULL PRIMARY KEY, tbl regclass NOT NULL, cache_key text NOT NULL, op text NOT NULL,
    version bigint NOT NULL, payload text, created_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION bench_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v bigint := nextval('bench_version_seq');
BEGIN
    INSERT INTO bench_outbox (id, tbl, cache_key, op, version, payload)
    VALUES (v, TG_RELID, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ':' || NEW.id, 'set', v, row_to_json(NEW)::text);
    IF TG_ARGV[0] = 'notify' THEN PERFORM pg_notify('bench', ''); END IF;
    RETURN NULL;
END $$;
SQL
}
