#!/usr/bin/env bash
# Installs what vset needs on Debian 12, idempotently: a second run does nothing
# and takes about a second. Called by `make deps` (and so by every make target).
set -euo pipefail

PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
PGRX_VERSION="0.18.0"
export PATH="$HOME/.cargo/bin:$PATH"

APT_PACKAGES=(
  postgresql-15 postgresql-server-dev-15   # server + headers/pg_config + isolationtester
  redis-server redis-tools                 # redis-server, redis-cli, redis-benchmark
  clang libclang-dev                       # bindgen, used by pgrx-pg-sys and redis-module
  sudo                                     # cargo pgrx test --runas postgres
  pkg-config libssl-dev                    # native TLS for rediss:// and sslmode=require
  openssl                                  # CLI: tests/tests/e2e_tls.rs makes throwaway CAs and certs at test time
  python3-venv                             # examples/python-relay test environment
  nodejs                                   # examples/node-read-path (node --test, Node 18+)
  fonts-dejavu-core                        # text in the PNG charts (vset-lab)
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm: a package of its own in Debian, bundled with NodeSource's nodejs.
if ! command -v npm >/dev/null 2>&1; then
  echo "deps: installing npm"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# Debian's package starts a cluster on 5432; vset never uses it (tests start their
# own servers on free ports), so leave it be rather than fight the packaging.

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "deps: installing cargo-pgrx $PGRX_VERSION (a few minutes on 2 cores)"
  cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked --quiet
fi

PGRX_CONFIG="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -q "^pg15 *= *\"$PG_CONFIG\"" "$PGRX_CONFIG" 2>/dev/null; then
  echo "deps: pointing pgrx at Debian's PostgreSQL 15 ($PG_CONFIG)"
  cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi
