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

.PHONY: help deps build build-redis build-redis-release build-relay build-pg install install-pg \
        test lint test-redis test-pg test-e2e \
        demo bench bench-redis bench-pg bench-e2e chaos lab package clean

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

build-relay: deps ## build the relay (target/debug/vset-relay)
	cargo build -p vset-relay

build-pg: install-pg ## alias of install-pg

install-pg: deps ## build the extension and install it into the system PostgreSQL 15
	cd pg-extension && cargo pgrx install --pg-config $(PG_CONFIG)

install: install-pg build-redis-release ## install the extension; the module stays at target/release/libvset_redis.so

# ---------------------------------------------------------------- test
test: deps lint test-redis test-pg test-e2e ## every test (the command CI runs)

lint: deps ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-redis: build-redis ## Redis module: unit tests + integration tests against real redis-server
	cargo test -p vset-redis

test-pg: install-pg ## extension: #[pg_test]s, isolation specs, concurrency test
	bash pg-extension/tests/run.sh

test-e2e: build-redis build-relay install-pg ## whole system: real postgres + redis-server + relay
	cargo test -p vset-tests

# ---------------------------------------------------------------- run
demo: build-redis-release build-relay install-pg ## run the whole system on private servers and show the cache staying correct
	bash sql/demo/run.sh

# ---------------------------------------------------------------- measure (not tests)
bench: bench-redis bench-pg bench-e2e ## every benchmark

bench-redis: build-redis-release ## VSET vs SET vs Lua EVALSHA, via redis-benchmark
	bash redis-module/bench/run.sh

bench-pg: install-pg ## per-row cost: no trigger vs PL/pgSQL outbox trigger vs vset
	bash pg-extension/bench/run.sh

bench-e2e: build-redis-release install-pg ## relay drain rate and commit-to-visible latency
	cargo build -p vset-relay --release
	bash relay/bench/run.sh

clean: ## remove build output and scratch servers
	cargo clean
	rm -rf $(RUN_DIR)
