//! Invariant 11: one bad key delays only itself. A key Redis refuses for that key
//! alone — a plain string left at a tracked key by the cache vset replaced
//! (`WRONGTYPE`) — must not hold back the rows of any other key, and must not keep
//! an older value either. No memory under `noeviction` (`OOM`) is the whole server:
//! the batch waits, nothing is acked, nothing goes stale.
//! (Reference relay: the examples' tests hold the Python relay to the same.)

use std::time::Duration;

use vset_tests::ports::free_port;
use vset_tests::relay::{metric_value, scrape_metrics, wait_metrics};
use vset_tests::stack::Stack;

const KEYS: i32 = 300;

fn metric(addr: &str, name: &str) -> f64 {
    let text = scrape_metrics(addr).expect("metrics");
    metric_value(&text, name).unwrap_or(0.0)
}

/// Waits until `name` reaches `at_least` (the relay counts after COMMIT).
fn wait_metric(addr: &str, name: &str, at_least: f64) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = metric(addr, name);
        if v >= at_least || std::time::Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stack_with_relay() -> Option<(Stack, String)> {
    let mut stack = Stack::standalone(KEYS).expect("stack");
    if !stack.relay_command.is_reference() {
        eprintln!(
            "SKIPPED: {} is checked by the examples' own tests",
            stack.relay_command.describe()
        );
        return None;
    }
    let addr = format!("127.0.0.1:{}", free_port());
    stack
        .spawn_relay(&["--metrics", addr.as_str(), "--batch-size", "50"])
        .expect("relay");
    wait_metrics(&addr, Duration::from_secs(20)).expect("relay up");
    stack.drain(Duration::from_secs(30)).expect("seed drained");
    Some((stack, addr))
}

#[test]
fn a_foreign_value_at_a_tracked_key_is_replaced_and_blocks_nothing() {
    let Some((mut stack, addr)) = stack_with_relay() else {
        return;
    };
    // The old cache's plain strings at two tracked keys (stale JSON).
    let mut con = stack.redis().client().expect("redis");
    for id in [1, 57] {
        let _: () = redis::cmd("SET")
            .arg(format!("public.users:{id}"))
            .arg(r#"{"id":0,"name":"from the old cache"}"#)
            .query(&mut con)
            .expect("SET");
    }
    // Every row changes, the two poisoned ones included, then one more update.
    let mut c = stack.pg.client().expect("pg");
    c.execute("UPDATE public.users SET rev = rev + 1", &[])
        .expect("update all");
    c.execute("UPDATE public.users SET name = 'later' WHERE id = 200", &[])
        .expect("later update");
    stack
        .drain(Duration::from_secs(30))
        .expect("the outbox drains although two keys held foreign values");
    stack
        .check()
        .expect("check")
        .assert_exact("after foreign values");
    assert_eq!(
        wait_metric(&addr, "vset_relay_foreign_replaced_total", 2.0),
        2.0,
        "both foreign values counted once"
    );
    let t: String = redis::cmd("TYPE")
        .arg("public.users:57")
        .query(&mut con)
        .expect("TYPE");
    assert_eq!(t, "vsetvalue");
    let log = stack.relay_logs(200);
    assert!(
        log.contains("public.users:57") && log.contains("WRONGTYPE"),
        "the log names the key: {log}"
    );
}

#[test]
fn out_of_memory_holds_the_batch_without_acking_or_going_stale() {
    let Some((mut stack, _addr)) = stack_with_relay() else {
        return;
    };
    let used: u64 = stack
        .redis()
        .info_field("memory", "used_memory")
        .expect("INFO")
        .and_then(|v| v.parse().ok())
        .expect("used_memory");
    // Full: no write fits, and nothing may be evicted. This is the whole server,
    // not one key: a row must not be acked as a miss (a DEL of a missing key raises
    // no floor, so a late older fill could then land), so the batch waits.
    let redis = stack.redis();
    redis
        .config_set("maxmemory-policy", "noeviction")
        .expect("policy");
    redis.config_set("maxmemory", used / 2).expect("maxmemory");
    let mut c = stack.pg.client().expect("pg");
    c.execute(
        "INSERT INTO public.users (id, name) SELECT g, 'new ' || g FROM generate_series(1001, 1100) g",
        &[],
    )
    .expect("insert");
    c.execute("UPDATE public.users SET rev = rev + 1 WHERE id <= 50", &[])
        .expect("update");
    std::thread::sleep(Duration::from_secs(2));
    let waiting: i64 = c
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("outbox")
        .get(0);
    // Redis lags behind meanwhile (the 50 updated keys still hold their previous
    // version: a lag the backlog alert reports, not a stale entry left behind).
    assert_eq!(
        waiting, 150,
        "nothing acked while Redis refuses every write"
    );
    // Memory back: the waiting changes are applied, exactly.
    stack
        .redis()
        .config_set("maxmemory", 0)
        .expect("maxmemory 0");
    stack.drain(Duration::from_secs(30)).expect("drained");
    stack
        .check()
        .expect("check")
        .assert_exact("after memory came back");
}
