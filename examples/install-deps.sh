#!/usr/bin/env bash
# Installs the examples' pinned dependencies from the package registries:
#   python-relay/requirements.txt -> a venv at $VSET_PY_VENV (default $CARGO_TARGET_DIR/py-venv)
#   node-read-path/package-lock.json -> node-read-path/node_modules (npm ci)
# and writes $CARGO_TARGET_DIR/examples.env for the tests (examples/e2e):
#   VSET_PYTHON=<venv python>            the interpreter that runs relay.py
#   VSET_E2E_RELAY=<python relay.py>     the relay the shared e2e stack starts
#   VSET_SKIP_PYTHON_EXAMPLE=<reason>    only when the Python registry is unreachable
#   VSET_SKIP_NODE_EXAMPLE=<reason>      only when the npm registry is unreachable
# Any other failure (a bad pin, a broken venv) is an error: the tests must not be
# skipped for it. Re-runs are quick: each step is skipped when its lock file is
# unchanged since the last successful install.
set -euo pipefail
cd "$(dirname "$0")"
TARGET="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
VENV="${VSET_PY_VENV:-$TARGET/py-venv}"
PYTHON="${PYTHON:-python3}"
ENV_FILE="$TARGET/examples.env"
mkdir -p "$TARGET"
: >"$ENV_FILE.tmp"

stamp_matches() { [ -f "$2" ] && [ "$(sha256sum <"$1")" = "$(cat "$2")" ]; }
write_stamp() { sha256sum <"$1" >"$2"; }

# ---- Python: psycopg 3 + redis-py for python-relay/relay.py
py_stamp="$VENV/.requirements.sha256"
if ! stamp_matches python-relay/requirements.txt "$py_stamp"; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  pip_install() {
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r python-relay/requirements.txt
  }
  # One retry: a registry hiccup must not fail `make test`.
  if pip_install || { sleep 5; pip_install; }; then
    write_stamp python-relay/requirements.txt "$py_stamp"
  elif ! "$VENV/bin/python" -m pip index versions redis --disable-pip-version-check >/dev/null 2>&1; then
    echo "examples: SKIPPING the Python relay test: the Python package index is unreachable (pip could not list packages)" >&2
    echo "VSET_SKIP_PYTHON_EXAMPLE='the Python package index was unreachable when installing python-relay/requirements.txt'" >>"$ENV_FILE.tmp"
  else
    echo "examples: pip install -r python-relay/requirements.txt failed while the index is reachable" >&2
    exit 1
  fi
fi
echo "VSET_PYTHON='$VENV/bin/python'" >>"$ENV_FILE.tmp"
# The shared e2e stack (tests/src/stack.rs) takes its relay command from here.
echo "VSET_E2E_RELAY='$VENV/bin/python examples/python-relay/relay.py'" >>"$ENV_FILE.tmp"

# ---- Node: ioredis + pg for node-read-path
npm_stamp="node-read-path/node_modules/.package-lock.sha256"
if ! stamp_matches node-read-path/package-lock.json "$npm_stamp"; then
  npm_ci() { (cd node-read-path && npm ci --no-audit --no-fund --loglevel=error); }
  if npm_ci || { sleep 5; npm_ci; }; then
    write_stamp node-read-path/package-lock.json "$npm_stamp"
  elif ! npm ping --loglevel=error >/dev/null 2>&1; then
    echo "examples: SKIPPING the Node read-path test: the npm registry is unreachable (npm ping failed)" >&2
    echo "VSET_SKIP_NODE_EXAMPLE='the npm registry was unreachable when running npm ci in node-read-path'" >>"$ENV_FILE.tmp"
  else
    echo "examples: npm ci in node-read-path failed while the registry is reachable" >&2
    exit 1
  fi
fi
mv "$ENV_FILE.tmp" "$ENV_FILE"
