//! The configuration snippets in `deploy/` are loaded by real servers, so a typo or
//! a setting the server does not know fails here rather than in production.

mod common;

use std::process::{Command, Stdio};

use common::*;
use vset_tests::paths::{relay_binary, workspace_root};
use vset_tests::ports::free_port;
use vset_tests::postgres::PgCluster;
use vset_tests::process::ChildGuard;
use vset_tests::redis::{RedisOptions, RedisServer};
use vset_tests::relay::{metric_value, wait_metrics};

/// The `name value` lines of a config snippet (comments and blanks dropped).
fn setting_lines(file: &str) -> Vec<(String, String)> {
    let path = workspace_root().join("deploy").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .split_once([' ', '='])
                .unwrap_or_else(|| panic!("{file}: `{l}` is not `name value`"));
            (
                name.trim().to_string(),
                value.trim().trim_start_matches('=').trim().to_string(),
            )
        })
        .collect()
}

#[test]
fn redis_conf_snippet_starts_redis_with_the_module_as_documented() {
    let lines = setting_lines("redis.conf");
    let mut opts = RedisOptions::new();
    let mut saw_module = false;
    for (name, value) in &lines {
        if name == "loadmodule" {
            // The harness loads the module built from this tree; keep the snippet's
            // documented path and arguments honest.
            let mut words = value.split_whitespace();
            assert_eq!(words.next(), Some("/usr/local/lib/vset/libvset_redis.so"));
            opts = opts.module_args(words.map(str::to_string).collect::<Vec<_>>());
            saw_module = true;
        } else {
            opts = opts.config(name.clone(), value.clone());
        }
    }
    assert!(saw_module, "the snippet must load the module");
    let redis = RedisServer::start(opts).expect("redis-server accepts deploy/redis.conf");

    let field = |section: &str, name: &str| {
        redis
            .info_field(section, name)
            .expect("INFO")
            .unwrap_or_else(|| panic!("INFO {section} lacks {name}"))
    };
    assert_eq!(field("vset", "vset_buckets"), "65536");
    assert_eq!(field("vset", "vset_tombstone_ttl_ms"), "86400000");
    assert_eq!(field("vset", "vset_cold_start"), "1");
    assert_eq!(field("vset", "vset_cold"), "1", "no saved state: cold");
    assert_eq!(field("persistence", "aof_enabled"), "1");
    let mut con = redis.client().expect("client");
    let fsync: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .query(&mut con)
        .expect("CONFIG GET");
    assert_eq!(fsync, ["appendfsync", "always"]);
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut con)
        .expect("CONFIG GET");
    assert_eq!(policy, ["maxmemory-policy", "allkeys-lru"]);
}

#[test]
fn postgresql_conf_snippet_is_accepted_by_postgres() {
    let lines = setting_lines("postgresql.conf");
    assert!(!lines.is_empty());
    let settings: Vec<(String, String)> = lines
        .into_iter()
        .map(|(k, v)| (k, v.trim_matches('\'').to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let pg = PgCluster::start_with(&pairs).expect("postgres accepts deploy/postgresql.conf");
    let mut c = pg.client().expect("client");
    let timeout: String = c
        .query_one("SHOW idle_in_transaction_session_timeout", &[])
        .expect("SHOW")
        .get(0);
    assert_eq!(timeout, "5min");
    // The snippet preloads vset: relays are woken through shared memory.
    pg.create_extension().expect("CREATE EXTENSION vset");
    let wakeup: String = c
        .query_one("SELECT vset.wakeup()", &[])
        .expect("vset.wakeup()")
        .get(0);
    assert_eq!(wakeup, "shared_memory");
    current_version(&pg);
}

#[test]
fn systemd_unit_command_with_the_example_environment_runs_the_relay() {
    let unit = std::fs::read_to_string(workspace_root().join("deploy/vset-relay.service"))
        .expect("read the unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(
        words.next(),
        Some("/usr/local/bin/vset-relay"),
        "where make install puts it"
    );
    let args: Vec<&str> = words.collect();

    let pg = postgres_with_users();
    let redis = RedisServer::start(RedisOptions::new()).expect("start redis");
    let metrics = format!("127.0.0.1:{}", free_port());
    // The example environment file as systemd would pass it, pointed at this test's
    // servers (its hosts are placeholders).
    let mut cmd = Command::new(relay_binary().expect("vset-relay is built (make build-relay)"));
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in setting_lines("relay.env.example") {
        cmd.env(name, value);
    }
    cmd.env("VSET_POSTGRES_URL", pg.url())
        .env("VSET_REDIS_URL", redis.url())
        .env("VSET_METRICS_ADDR", &metrics);
    let mut relay = ChildGuard::new("vset-relay", cmd.spawn().expect("spawn vset-relay"));
    wait_metrics(&metrics, PATIENCE).expect("the relay serves its metrics");
    // Changes committed before the relay ends the cold start are misses by design.
    eventually("the relay to warm the module", || vfloor(&redis).0 == 0);

    pg.execute("INSERT INTO users VALUES (5, 'from-the-unit')")
        .expect("insert");
    eventually("the relay to apply the insert", || {
        vget(&redis, "public.users:5").is_some_and(|v| v.contains("from-the-unit"))
    });
    // The relay counts a row after COMMIT, which follows the VSET the read above saw.
    eventually("the relay to count the applied row", || {
        wait_metrics(&metrics, PATIENCE)
            .ok()
            .and_then(|text| metric_value(&text, "vset_relay_applied_total"))
            .is_some_and(|n| n >= 1.0)
    });
    // SIGTERM, as `systemctl stop` sends (KillSignal=), ends it cleanly.
    let status = relay.terminate(PATIENCE).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}
