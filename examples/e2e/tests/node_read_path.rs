//! `examples/node-read-path` against a real PostgreSQL (extension installed) and a
//! real redis-server (module loaded): starts both on private ports, then runs the
//! example's own suite (`node --test test/`) with their URLs in
//! `VSET_TEST_POSTGRES_URL` / `VSET_TEST_REDIS_URL`. The suite covers hit, miss +
//! fill, a fill racing an update and a delete, a cold module, bad input and a
//! concurrent readers/writers/relay run checked row by row.

mod common;

use std::process::Command;

use common::*;
use vset_tests::postgres::PgCluster;
use vset_tests::redis::{RedisOptions, RedisServer};

/// `# pass N` / `# fail N` from node's TAP summary.
fn summary_count(output: &str, label: &str) -> Option<u64> {
    output.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("# {label} "))
            .and_then(|n| n.trim().parse().ok())
    })
}

#[test]
fn node_read_path_suite_passes_against_real_servers() {
    if let Some(reason) = skip_reason("VSET_SKIP_NODE_EXAMPLE") {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let dir = example_dir("node-read-path");
    assert!(
        dir.join("node_modules/ioredis").is_dir() && dir.join("node_modules/pg").is_dir(),
        "{}/node_modules is incomplete: run `make test-examples` (npm ci)",
        dir.display()
    );
    // The suite creates its own table; a cold module (the default) is part of it.
    let pg = PgCluster::start().expect("start postgres");
    pg.create_extension().expect("CREATE EXTENSION vset");
    let redis = RedisServer::start(RedisOptions::new()).expect("start redis");

    let out = Command::new("node")
        .args(["--test", "--test-reporter=tap", "test/"])
        .current_dir(&dir)
        .env("VSET_TEST_POSTGRES_URL", pg.url())
        .env("VSET_TEST_REDIS_URL", redis.url())
        .output()
        .expect("run node (is Node.js 18+ installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "node --test failed:\n{text}");
    let passed = summary_count(&text, "pass").expect("a `# pass N` summary line");
    assert_eq!(summary_count(&text, "fail"), Some(0), "{text}");
    assert!(
        passed >= 12,
        "expected the whole suite to run, {passed} passed:\n{text}"
    );
}
