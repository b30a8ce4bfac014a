//! What the example tests share: the installed interpreters (or the reason they
//! are missing), the demo table, waiting for the outbox to drain, and the
//! convergence check (vset-verify, as for vset-relay).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vset_tests::paths::workspace_root;
use vset_tests::postgres::PgCluster;
use vset_tests::redis::RedisServer;
use vset_verify::cache::{CacheTarget, DEFAULT_MODULE_TYPE};

/// How long anything in these tests may take to happen (a liveness bound, not a
/// speed goal: a healthy run needs a small fraction of it).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `examples/install-deps.sh` sets `VSET_SKIP_*_EXAMPLE` only when a package
/// registry was unreachable; everything else that is missing is a failure. In CI
/// (`CI=true`, as `.ci/run` sets it) a skip is a failure too: a green run must mean
/// the example ran. Elsewhere the caller prints the reason and returns.
pub fn skip_reason(var: &str) -> Option<String> {
    let reason = std::env::var(var).ok().filter(|r| !r.is_empty())?;
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{var}: {reason} (CI=true: an example that cannot run fails the build)");
    }
    Some(reason)
}

pub fn example_dir(name: &str) -> PathBuf {
    workspace_root().join("examples").join(name)
}

/// The venv interpreter with psycopg and redis-py (`VSET_PYTHON`, set by
/// `make test-examples`).
pub fn python() -> PathBuf {
    let py = std::env::var_os("VSET_PYTHON").map(PathBuf::from).expect(
        "VSET_PYTHON is not set: run these tests with `make test-examples`, which installs \
         examples/python-relay/requirements.txt into a venv and sets it",
    );
    assert!(
        py.exists(),
        "VSET_PYTHON={} does not exist: run `make test-examples`",
        py.display()
    );
    py
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after [`PATIENCE`].
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {PATIENCE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private PostgreSQL with the extension and a tracked `users` table.
pub fn postgres_with_users() -> PgCluster {
    users_on(PgCluster::start().expect("start postgres"))
}

/// [`postgres_with_users`] with vset in `shared_preload_libraries` (relays are woken
/// through `vset.wait_for_commit`, no NOTIFY is sent).
pub fn preloaded_postgres_with_users() -> PgCluster {
    users_on(
        PgCluster::start_with(&[("shared_preload_libraries", "vset")])
            .expect("start postgres with vset preloaded"),
    )
}

fn users_on(pg: PgCluster) -> PgCluster {
    pg.create_extension().expect("CREATE EXTENSION vset");
    pg.execute(
        "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL); \
         SELECT vset.track('users');",
    )
    .expect("create and track users");
    pg
}

pub fn outbox_rows(pg: &PgCluster) -> i64 {
    pg.client()
        .expect("client")
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("count outbox")
        .get(0)
}

pub fn wait_drained(pg: &PgCluster) {
    eventually("vset.outbox to drain", || outbox_rows(pg) == 0);
}

/// `VFLOOR` as (cold, highest floor).
pub fn vfloor(redis: &RedisServer) -> (i64, u64) {
    let mut con = redis.client().expect("redis client");
    let flat: Vec<redis::Value> = redis::cmd("VFLOOR").query(&mut con).expect("VFLOOR");
    let field = |name: &str| -> u64 {
        let at = flat
            .iter()
            .position(|v| matches!(v, redis::Value::BulkString(b) if b == name.as_bytes()))
            .unwrap_or_else(|| panic!("VFLOOR reply {flat:?} lacks {name}"));
        redis::from_redis_value(flat[at + 1].clone())
            .unwrap_or_else(|e| panic!("VFLOOR {name}: {e}"))
    };
    (field("cold") as i64, field("floor"))
}

pub fn current_version(pg: &PgCluster) -> u64 {
    let v: i64 = pg
        .client()
        .expect("client")
        .query_one("SELECT vset.current_version()", &[])
        .expect("current_version")
        .get(0);
    v as u64
}

/// Runs vset-verify (the library, as the relay's e2e tests do) and returns the
/// totals after asserting there is nothing stale or orphaned.
pub fn assert_converged(pg: &PgCluster, redis: &RedisServer) -> vset_verify::Counts {
    let report = vset_verify::run(&vset_verify::Options {
        postgres: pg.url(),
        cache: CacheTarget::Single(redis.url()),
        sample: None,
        grace: Duration::from_millis(500),
        fetch_size: 1000,
        module_type: DEFAULT_MODULE_TYPE.to_string(),
        max_recheck: 100_000,
        skip_orphans: false,
    })
    .expect("vset-verify runs");
    let total = report.total();
    assert!(
        report.consistent() && total.stale == 0 && total.orphaned == 0,
        "cache and database disagree:\n{}",
        report.render_text()
    );
    total
}

pub fn live_users(pg: &PgCluster) -> u64 {
    let n: i64 = pg
        .client()
        .expect("client")
        .query_one("SELECT count(*) FROM users", &[])
        .expect("count users")
        .get(0);
    n as u64
}

/// `VGET key` as text (None for a miss).
pub fn vget(redis: &RedisServer, key: &str) -> Option<String> {
    let mut con = redis.client().expect("redis client");
    redis::cmd("VGET").arg(key).query(&mut con).expect("VGET")
}
