//! Invariant 4: every way of forgetting a version raises a floor, so an older write
//! that arrives later stores nothing. Plus cold start.

use redis::Value;
use vset_tests::redis::{RedisOptions, RedisServer};

use crate::common::*;

/// After `key` (stored at `version`) was forgotten: older and equal writes must not
/// store, a newer one must.
fn assert_forgotten(con: &mut redis::Connection, key: &str, version: u64) {
    assert_eq!(exists(con, key), 0, "{key} must be gone");
    assert_eq!(
        vset(con, key, &(version - 1).to_string(), "older"),
        0,
        "{key}: older"
    );
    assert_eq!(
        vset(con, key, &version.to_string(), "equal"),
        0,
        "{key}: equal"
    );
    assert_eq!(vdel(con, key, &version.to_string()), 0, "{key}: equal VDEL");
    assert_eq!(exists(con, key), 0, "{key}: nothing stored");
    assert_eq!(
        vset(con, key, &(version + 1).to_string(), "newer"),
        1,
        "{key}: newer"
    );
}

#[test]
fn del_and_unlink_raise_the_floor() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "a", "10", "x"), 1);
    assert_eq!(vset(&mut con, "b", "20", "y"), 1);
    assert_eq!(vdel(&mut con, "t", "30"), 1);
    let n: i64 = redis::cmd("DEL").arg("a").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("UNLINK")
        .arg("b")
        .arg("t")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    assert_forgotten(&mut con, "a", 10);
    assert_forgotten(&mut con, "b", 20);
    assert_forgotten(&mut con, "t", 30);
    let (_, floor, _) = vfloor(&mut con);
    assert_eq!(floor, Value::Int(30));
    assert_eq!(counter(&mut con, "floors_raised"), 3);
    assert_eq!(
        counter(&mut con, "rejected_floor"),
        9,
        "3 keys x (older, equal, VDEL)"
    );
}

#[test]
fn floors_are_per_bucket() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    let other = key_in_other_bucket("o", "a", 65_536);
    assert_eq!(vset(&mut con, "a", "100", "x"), 1);
    let _: i64 = redis::cmd("DEL").arg("a").query(&mut con).unwrap();
    assert_eq!(vset(&mut con, "a", "50", "x"), 0);
    assert_eq!(
        vset(&mut con, &other, "50", "x"),
        1,
        "another bucket is not affected"
    );
}

#[test]
fn expiry_raises_the_floor() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset_with(&mut con, "lazy", "10", "x", &["PX", "30"]), 1);
    assert_eq!(vset_with(&mut con, "active", "20", "x", &["PX", "30"]), 1);
    // `lazy` is expired by access; `active` by Redis' background expiry cycle.
    std::thread::sleep(std::time::Duration::from_millis(50));
    wait_gone(&mut con, "lazy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        if keys == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "active expiry never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let expired: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(expired.contains("expired_keys:2"), "{expired}");
    assert_forgotten(&mut con, "lazy", 10);
    assert_forgotten(&mut con, "active", 20);
}

#[test]
fn tombstone_expiry_raises_the_floor() {
    let server = RedisServer::start(RedisOptions::new().module_args([
        "cold-start",
        "no",
        "tombstone-ttl-ms",
        "3000",
    ]))
    .unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "k", "5", "x"), 1);
    assert_eq!(vdel(&mut con, "k", "10"), 1);
    let ms = pttl(&mut con, "k");
    assert!(
        (1..=3000).contains(&ms),
        "module default tombstone TTL, got {ms}"
    );
    assert_eq!(vdel_with(&mut con, "e", "7", &["PX", "40"]), 1);
    wait_gone(&mut con, "k");
    wait_gone(&mut con, "e");
    assert_forgotten(&mut con, "k", 10);
    assert_forgotten(&mut con, "e", 7);
}

#[test]
fn eviction_raises_the_floor() {
    let server = RedisServer::start(RedisOptions::warm()).unwrap();
    let mut con = server.client().unwrap();
    let used: u64 = vset_tests::redis::parse_info_field(
        &redis::cmd("INFO")
            .arg("memory")
            .query::<String>(&mut con)
            .unwrap(),
        "used_memory",
    )
    .unwrap()
    .parse()
    .unwrap();
    // Room for ~100 values of 20 kB, then write 300: the oldest get evicted.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 2_000_000)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query(&mut con)
        .unwrap();
    let value = "v".repeat(20_000);
    for i in 0..300u64 {
        assert_eq!(
            vset(
                &mut con,
                &format!("key:{i}"),
                &(1000 + i).to_string(),
                &value
            ),
            1
        );
    }
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    let evicted: u64 = vset_tests::redis::parse_info_field(&stats, "evicted_keys")
        .unwrap()
        .parse()
        .unwrap();
    assert!(evicted >= 100, "expected evictions, got {evicted}");
    let mut gone = Vec::new();
    for i in 0..300u64 {
        let key = format!("key:{i}");
        if exists(&mut con, &key) == 0 {
            gone.push((key, 1000 + i));
        }
    }
    // (Later commands may evict a few more, so at least as many as counted above.)
    assert!(
        gone.len() as u64 >= evicted,
        "{} gone, {evicted} evicted",
        gone.len()
    );
    for (key, version) in &gone {
        // The relay's late retry of the same change, and an older one: both refused.
        assert_eq!(
            vset(&mut con, key, &version.to_string(), &value),
            0,
            "{key}"
        );
        assert_eq!(
            vset(&mut con, key, &(version - 1).to_string(), "old"),
            0,
            "{key}"
        );
        assert_eq!(exists(&mut con, key), 0, "{key}");
    }
    assert!(counter(&mut con, "floors_raised") >= 1);
}

#[test]
fn flushdb_and_flushall_raise_every_floor() {
    for flush in [
        &["FLUSHDB"][..],
        &["FLUSHALL"],
        &["FLUSHALL", "ASYNC"],
        &["FLUSHDB", "ASYNC"],
    ] {
        let server = warm_server();
        let mut con = server.client().unwrap();
        assert_eq!(vset(&mut con, "a", "10", "x"), 1);
        assert_eq!(vset(&mut con, "b", "20", "y"), 1);
        let _: () = redis::cmd(flush[0])
            .arg(&flush[1..])
            .query(&mut con)
            .unwrap();
        assert_forgotten(&mut con, "a", 20);
        assert_forgotten(&mut con, "b", 20);
        // A key never seen is below the flush floor too: the flush forgot keys
        // without naming them.
        assert_eq!(vset(&mut con, "never-seen", "20", "z"), 0, "{flush:?}");
        assert_eq!(vset(&mut con, "never-seen", "21", "z"), 1, "{flush:?}");
        let (_, floor, _) = vfloor(&mut con);
        assert_eq!(floor, Value::Int(20), "{flush:?}");
    }
}

#[test]
fn rename_forgets_the_source_name() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "src", "10", "x"), 1);
    let _: () = redis::cmd("RENAME")
        .arg("src")
        .arg("dst")
        .query(&mut con)
        .unwrap();
    assert_forgotten(&mut con, "src", 10);
    assert_eq!(vget_int(&mut con, "dst"), (Some("x".into()), 10));
}

#[test]
fn below_floor_write_removes_the_older_value() {
    // One bucket: every key shares the floor.
    let server =
        RedisServer::start(RedisOptions::new().module_args(["cold-start", "no", "buckets", "1"]))
            .unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "a", "5", "old a"), 1);
    assert_eq!(vset(&mut con, "b", "10", "b"), 1);
    let _: i64 = redis::cmd("DEL").arg("b").query(&mut con).unwrap();
    // a@5 is still the newest known value of a...
    assert_eq!(vget_int(&mut con, "a"), (Some("old a".into()), 5));
    // ...until a newer change of a arrives at or below the floor: it cannot be
    // stored, and a@5 is now known stale, so it goes.
    assert_eq!(vset(&mut con, "a", "7", "new a"), 0);
    assert_eq!(exists(&mut con, "a"), 0);
    assert_eq!(counter(&mut con, "removed_below_floor"), 1);
    assert_eq!(vset(&mut con, "a", "11", "newest a"), 1);
}

#[test]
fn cold_until_vfloor() {
    let server = RedisServer::start(RedisOptions::new()).unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vfloor(&mut con), (1, Value::Int(0), 65_536));
    assert_eq!(vset(&mut con, "k", "1", "x"), 0);
    assert_eq!(vset(&mut con, "k", "18446744073709551615", "x"), 0);
    assert_eq!(vdel(&mut con, "k", "1"), 0);
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 0);
    let info = info_vset(&mut con);
    assert_eq!(info["cold"], "1");
    assert_eq!(info["rejected_cold"], "3");
    let log = server.log();
    assert!(log.contains("COLD: VSET/VDEL answer 0 until"), "{log}");
    raise_floor(&mut con, "100");
    assert_eq!(vfloor(&mut con), (0, Value::Int(100), 65_536));
    assert_eq!(vset(&mut con, "k", "100", "x"), 0);
    assert_eq!(vset(&mut con, "k", "101", "x"), 1);
    // VFLOOR 0 ends cold state without raising anything.
    let server2 = RedisServer::start(RedisOptions::new()).unwrap();
    let mut con2 = server2.client().unwrap();
    raise_floor(&mut con2, "0");
    assert_eq!(vfloor(&mut con2), (0, Value::Int(0), 65_536));
    assert_eq!(vset(&mut con2, "k", "1", "x"), 1);
}

#[test]
fn restart_without_persistence_is_cold() {
    let mut server = RedisServer::start(RedisOptions::new()).unwrap();
    {
        let mut con = server.client().unwrap();
        raise_floor(&mut con, "5");
        assert_eq!(vset(&mut con, "k", "6", "x"), 1);
    }
    server.restart().unwrap(); // no save points, no AOF: nothing is kept
    let mut con = server.client().unwrap();
    assert_eq!(vfloor(&mut con), (1, Value::Int(0), 65_536));
    assert_eq!(exists(&mut con, "k"), 0);
    assert_eq!(vset(&mut con, "k", "7", "x"), 0, "cold: refused");

    // Saved state, then the files are lost: cold again.
    raise_floor(&mut con, "5");
    assert_eq!(vset(&mut con, "k", "7", "x"), 1);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    drop(con);
    server.stop();
    server.wipe_data().unwrap();
    server.start_again().unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vfloor(&mut con).0, 1);
    assert_eq!(vset(&mut con, "k", "8", "x"), 0);
}

#[test]
fn restart_with_rdb_is_warm() {
    let mut server = RedisServer::start(RedisOptions::new()).unwrap();
    {
        let mut con = server.client().unwrap();
        raise_floor(&mut con, "5");
        assert_eq!(vset(&mut con, "k", "6", "x"), 1);
        let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    }
    server.restart().unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vfloor(&mut con), (0, Value::Int(5), 65_536));
    assert_eq!(vget_int(&mut con, "k"), (Some("x".into()), 6));
    assert_eq!(vset(&mut con, "k", "7", "y"), 1);
    assert_eq!(vset(&mut con, "other", "5", "y"), 0);
}

/// Issue 10: one `VFLOOR 18446744073709551615` (or a PostgreSQL restored to an earlier
/// point) makes every later write stale for good. `VFLOOR RESET` is the way back: on
/// an empty Redis only, it forgets every floor and goes cold until the relay's
/// handshake (replicated like any floor change).
#[test]
fn vfloor_reset_recovers_a_bricked_cache_and_only_an_empty_one() {
    // Cold start on, as in production: the relay's handshake warms it.
    let server = RedisServer::start(RedisOptions::new()).unwrap();
    let mut con = server.client().unwrap();
    raise_floor(&mut con, "1");
    assert_eq!(vset(&mut con, "k", "5", "v5"), 1);
    raise_floor(&mut con, "18446744073709551615");
    assert_eq!(vset(&mut con, "other", "100", "v"), 0, "bricked: refused");
    // Not while anything is cached: a low floor would let old writes land.
    let e = err(redis::cmd("VFLOOR").arg("RESET").query(&mut con));
    assert!(e.contains("VFLOOR RESET needs an empty Redis"), "{e}");
    assert_eq!(vget_int(&mut con, "k"), (Some("v5".into()), 5));
    // Another database's key counts too.
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    let _: () = redis::cmd("SET")
        .arg("elsewhere")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    let _: () = redis::cmd("DEL").arg("k").query(&mut con).unwrap();
    let e = err(redis::cmd("VFLOOR").arg("RESET").query(&mut con));
    assert!(e.contains("VFLOOR RESET needs an empty Redis"), "{e}");
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    let ok: String = redis::cmd("VFLOOR").arg("reset").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    let (cold, floor, _) = vfloor(&mut con);
    assert_eq!((cold, floor), (1, Value::Int(0)));
    assert_eq!(vset(&mut con, "k", "100", "v"), 0, "cold: nothing stored");
    // The relay's handshake: VFLOOR at PostgreSQL's current version.
    raise_floor(&mut con, "50");
    assert_eq!(vset(&mut con, "k", "49", "old"), 0);
    assert_eq!(vset(&mut con, "k", "51", "new"), 1);
    assert_eq!(vget_int(&mut con, "k"), (Some("new".into()), 51));
}
