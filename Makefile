# vset — one entry point for every part. `make help` lists the targets.
#
# Every target installs what it needs first (`deps`, idempotent and quick when
# everything is there), so `make demo` and `make test` work on a fresh Debian 12.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Debian's PostgreSQL 15 (postgresql-server-dev-15); pgrx never downloads Postgres.
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
# One shared target/ for every crate: builds on 2 cores are slow enough already.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
# Scratch space for demo/bench servers (private Postgres and Redis data).
RUN_DIR ?= $(CURDIR)/.run
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help deps build build-redis build-redis-release build-redis-control build-relay build-pg install install-pg install-pg-release \
        test lint test-redis test-pg test-e2e test-verify build-verify test-examples \
        demo bench bench-redis bench-pg bench-pg-commit bench-pg-claim bench-pg-fill bench-e2e chaos lab package clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

deps: ## install system packages, cargo-pgrx 0.18.0 and pgrx's PG15 config (idempotent)
	@bash .ci/install-deps.sh

# ---------------------------------------------------------------- build
build: build-redis build-relay install-pg ## build every part (debug) and install the extension

build-redis: deps ## build the Redis module (target/debug/libvset_redis.so)
	cargo build -p vset-redis

build-redis-release: deps ## build the Redis module optimised (for benchmarks and the demo)
	cargo build -p vset-redis --release

# The chaos matrix's control: the module with the test-only feature that lets a
# cell switch one order check off. Its own profile puts it in target/control/, so
# it never replaces the real module. Never install it.
build-redis-control: deps ## build the chaos controls' broken-on-purpose module (target/control/libvset_redis.so; tests only)
	cargo build -p vset-redis --profile control --features unsafe-test-gates

build-relay: deps ## build the relay (target/debug/vset-relay)
	cargo build -p vset-relay

build-pg: install-pg ## alias of install-pg

# Tests install a debug build (minutes faster on 2 cores); `make install` and the
# benchmarks install the optimised one (PGRX_PROFILE=--release).
PGRX_PROFILE ?=
install-pg: deps ## build the extension and install it into the system PostgreSQL 15 (debug; PGRX_PROFILE=--release for optimised)
	cd pg-extension && cargo pgrx install --pg-config $(PG_CONFIG) $(PGRX_PROFILE)
	@# Released install scripts and upgrade scripts (pgrx generates only the current one).
	install -m 0644 pg-extension/sql/*.sql "$$($(PG_CONFIG) --sharedir)/extension/"

install-pg-release: deps ## build the extension optimised and install it into the system PostgreSQL 15
	$(MAKE) install-pg PGRX_PROFILE=--release

# Where `make install` puts the Redis module and the relay (DESTDIR stages a package root).
PREFIX ?= /usr/local
install: install-pg-release build-redis-release ## install the extension into PostgreSQL 15, the module as $(PREFIX)/lib/vset/libvset_redis.so, vset-relay and vset-verify in $(PREFIX)/bin
	cargo build -p vset-relay -p vset-verify --release
	@# Copy beside, then rename over: a running redis-server has the old .so mapped, and
	@# rewriting that file in place would crash it (SIGBUS); a rename leaves its inode alone.
	install -D -m 0755 $(CARGO_TARGET_DIR)/release/libvset_redis.so $(DESTDIR)$(PREFIX)/lib/vset/.libvset_redis.so.new
	mv -f $(DESTDIR)$(PREFIX)/lib/vset/.libvset_redis.so.new $(DESTDIR)$(PREFIX)/lib/vset/libvset_redis.so
	install -D -m 0755 $(CARGO_TARGET_DIR)/release/vset-relay $(DESTDIR)$(PREFIX)/bin/.vset-relay.new
	mv -f $(DESTDIR)$(PREFIX)/bin/.vset-relay.new $(DESTDIR)$(PREFIX)/bin/vset-relay
	install -D -m 0755 $(CARGO_TARGET_DIR)/release/vset-verify $(DESTDIR)$(PREFIX)/bin/.vset-verify.new
	mv -f $(DESTDIR)$(PREFIX)/bin/.vset-verify.new $(DESTDIR)$(PREFIX)/bin/vset-verify
	@echo "installed: extension (CREATE EXTENSION vset), $(PREFIX)/lib/vset/libvset_redis.so (loadmodule), $(PREFIX)/bin/vset-relay, $(PREFIX)/bin/vset-verify; see deploy/ and docs/operations.md"

# ---------------------------------------------------------------- test
test: deps lint test-redis test-pg test-verify test-e2e test-examples ## every test (the command CI runs)

lint: deps ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-redis: build-redis ## Redis module: unit tests + integration tests against real redis-server
	cargo test -p vset-redis

test-pg: install-pg ## extension: #[pg_test]s, isolation specs, concurrency test
	bash pg-extension/tests/run.sh

test-e2e: build-redis build-redis-control build-relay build-verify install-pg ## whole system: real postgres + redis-server + relay
	cargo test -p vset-tests

test-examples: build-redis build-relay install-pg ## examples/: Python relay + Node.js read path on real servers (deps from PyPI/npm, pinned)
	bash examples/install-deps.sh
	set -a; source $(CARGO_TARGET_DIR)/examples.env; set +a; cargo test -p vset-examples-e2e

build-verify: deps ## build the consistency checker (target/debug/vset-verify)
	cargo build -p vset-verify

test-verify: build-redis build-verify install-pg ## vset-verify: unit tests + planted stale/orphan/miss against real servers (lab unit tests too)
	cargo test -p vset-verify -p vset-lab
	cargo test -p vset-tests --test verify_planted

# ---------------------------------------------------------------- prove (issue 5)
chaos: build-redis build-redis-control build-relay build-verify install-pg ## the long chaos matrix (9 cells of 45 s, each with its control); writes docs/chaos.md
	cargo build -p vset-lab --bin vset-chaos
	$(CARGO_TARGET_DIR)/debug/vset-chaos --table docs/chaos.md

lab: build-redis install-pg ## the strategy lab: six cache strategies, one seeded fault schedule; writes docs/lab.md + docs/lab.png
	cargo build -p vset-lab --bin vset-lab
	$(CARGO_TARGET_DIR)/debug/vset-lab --table docs/lab.md --chart docs/lab.png

# ---------------------------------------------------------------- run
demo: build-redis-release build-relay install-pg ## run the whole system on private servers and show the cache staying correct
	bash sql/demo/run.sh

# ---------------------------------------------------------------- measure (not tests)
bench: bench-redis bench-pg bench-e2e ## every benchmark

bench-redis: build-redis-release ## VSET vs SET vs Lua EVALSHA, via redis-benchmark
	bash redis-module/bench/run.sh

bench-pg: install-pg ## per-row cost, durable commit rate (no trigger vs PL/pgSQL outbox vs vset), fill rate
	bash pg-extension/bench/run.sh
	bash pg-extension/bench/commit_rate.sh
	bash pg-extension/bench/fill.sh

bench-pg-commit: install-pg ## durable commit rate only (fsync on, 16 and 64 clients; CLIENTS, ROUNDS, DURATION)
	bash pg-extension/bench/commit_rate.sh

bench-pg-claim: install-pg ## claim rate with and without a snapshot holding the xmin horizon back
	bash pg-extension/bench/claim_horizon.sh

bench-pg-fill: install-pg ## read-miss fills per second: vset.fill vs the hand-written query, 1 and 8 sessions
	bash pg-extension/bench/fill.sh

bench-e2e: build-redis-release install-pg-release ## relay drain rate and commit-to-visible latency
	cargo build -p vset-relay --release
	bash relay/bench/run.sh

# ---------------------------------------------------------------- ship
package: deps ## release artifacts with SHA256SUMS in target/package/vset-<version>/ (packaging/package.sh)
	bash packaging/package.sh

clean: ## remove build output and scratch servers
	cargo clean
	rm -rf $(RUN_DIR)
