#!/usr/bin/env bash
# `make package`: release artifacts of every part, versioned, with checksums.
#
#   $CARGO_TARGET_DIR/package/vset-<version>/
#     vset-pg<major>-<version>-<arch>.tar.gz   the extension, from `cargo pgrx package`:
#                                              a file tree to unpack at / (Debian paths)
#     libvset_redis.so                         the Redis module (loadmodule ...)
#     vset-relay, vset-verify                  the relay and the consistency checker
#     deploy/                                  redis.conf / postgresql.conf snippets, systemd unit
#     operations.md                            the operations guide
#     SHA256SUMS                               `sha256sum -c SHA256SUMS` checks all of the above
#   $CARGO_TARGET_DIR/package/vset-<version>-linux-<arch>.tar.gz (+ .sha256)  the folder as one file
#
# The artifacts are checked before the script reports success: checksums verify,
# the module exports RedisModule_OnLoad, the binaries run, the extension tree holds
# the control file, the install script and the shared library.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
# The one version of the workspace ([workspace.package] in Cargo.toml).
VERSION="$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print({p["name"]: p["version"] for p in json.load(sys.stdin)["packages"]}["vset-relay"])')"
PG_MAJOR="$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
ARCH="$(uname -m)"
NAME="vset-$VERSION"
OUT="$TARGET/package/$NAME"

crates=(-p vset-redis -p vset-relay)
binaries=(vset-relay)
# vset-verify ships when the workspace has it.
if cargo metadata --no-deps --format-version 1 | grep -q '"name":"vset-verify"'; then
  crates+=(-p vset-verify)
  binaries+=(vset-verify)
fi

echo "package: building $NAME (release) for PostgreSQL $PG_MAJOR on $ARCH"
cargo build --release "${crates[@]}"
rm -rf "$OUT" "$TARGET/package/.pgrx-tree"
mkdir -p "$OUT"
(cd pg-extension && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$TARGET/package/.pgrx-tree")
# Upgrade scripts (and the released install scripts they start from) beside the
# generated one, so ALTER EXTENSION vset UPDATE works from every shipped version.
ext_dir="$(find "$TARGET/package/.pgrx-tree" -type d -name extension | head -1)"
install -m 0644 pg-extension/sql/*.sql "$ext_dir/"
tar -C "$TARGET/package/.pgrx-tree" --owner=0 --group=0 --sort=name \
  -czf "$OUT/vset-pg$PG_MAJOR-$VERSION-$ARCH.tar.gz" .

install -m 0755 "$TARGET/release/libvset_redis.so" "$OUT/"
for b in "${binaries[@]}"; do install -m 0755 "$TARGET/release/$b" "$OUT/"; done
cp -r deploy "$OUT/deploy"
cp docs/operations.md "$OUT/"
(cd "$OUT" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
tar -C "$TARGET/package" --owner=0 --group=0 --sort=name -czf "$TARGET/package/$NAME-linux-$ARCH.tar.gz" "$NAME"
(cd "$TARGET/package" && sha256sum "$NAME-linux-$ARCH.tar.gz" >"$NAME-linux-$ARCH.tar.gz.sha256")

# ---- check what was built, so a broken artifact never looks like a release
fail() { echo "package: CHECK FAILED: $*" >&2; exit 1; }
(cd "$OUT" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not verify"
nm -D --defined-only "$OUT/libvset_redis.so" | grep -qw RedisModule_OnLoad \
  || fail "libvset_redis.so does not export RedisModule_OnLoad"
for b in "${binaries[@]}"; do
  "$OUT/$b" --version >/dev/null || fail "$b --version failed"
done
tree_files="$(tar -tzf "$OUT/vset-pg$PG_MAJOR-$VERSION-$ARCH.tar.gz")"
for f in "extension/vset.control" "extension/vset--$VERSION.sql" "extension/vset--0.1.0--0.2.0.sql" "lib/vset.so"; do
  grep -q "$f\$" <<<"$tree_files" || fail "extension package lacks */$f"
done

rm -rf "$TARGET/package/.pgrx-tree"
echo "package: $OUT"
(cd "$OUT" && cat SHA256SUMS)
