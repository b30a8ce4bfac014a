//! DEBUG RELOAD, restart from AOF (with and without RDB preamble), the committed
//! RDB fixture, and corrupt RDB files.

use std::path::PathBuf;
use std::time::Duration;

use redis::{Connection, Value};
use vset_tests::redis::{wait_until, RedisOptions, RedisServer};

use crate::common::*;

/// Writes the state that every persistence test checks afterwards.
fn write_state(con: &mut Connection) {
    assert_eq!(vset(con, "a", "5", "x"), 1);
    assert_eq!(
        vset_with(con, "b", "9007199254740993", "y", &["EX", "100000"]),
        1
    );
    assert_eq!(vdel(con, "c", "7"), 1);
    assert_eq!(vset(con, "d", "10", "z"), 1);
    let _: i64 = redis::cmd("DEL").arg("d").query(con).unwrap();
}

/// Checks what `write_state` wrote survived, floors included.
fn check_state(con: &mut Connection) {
    assert_eq!(vget_int(con, "a"), (Some("x".into()), 5));
    assert_eq!(ttl(con, "a"), -1);
    assert_eq!(
        vget_int(con, "b"),
        (Some("y".into()), 9_007_199_254_740_993)
    );
    // Wide windows: a restart on a loaded machine may take a while.
    assert!(
        (99_000..=100_000).contains(&ttl(con, "b")),
        "b keeps its TTL"
    );
    assert_eq!(vget_int(con, "c"), (None, 7), "tombstone kept");
    assert!(
        (86_000..=86_400).contains(&ttl(con, "c")),
        "tombstone keeps its TTL"
    );
    assert_eq!(exists(con, "d"), 0);
    let (cold, floor, buckets) = vfloor(con);
    assert_eq!((cold, floor, buckets), (0, Value::Int(10), 65_536));
    assert_eq!(vset(con, "d", "10", "late"), 0, "d's floor survived");
    assert_eq!(vset(con, "c", "6", "late"), 0, "tombstone still blocks");
    // Only d's bucket was raised: the reload did not turn into a global floor.
    let other = key_in_other_bucket("o", "d", 65_536);
    assert_eq!(vset(con, &other, "5", "fresh"), 1);
}

#[test]
fn debug_reload_keeps_values_versions_and_floors() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    write_state(&mut con);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    check_state(&mut con);
    assert_eq!(counter(&mut con, "max_version_seen"), 9_007_199_254_740_993);
}

#[test]
fn cold_state_survives_debug_reload() {
    let server = RedisServer::start(RedisOptions::new()).unwrap();
    let mut con = server.client().unwrap();
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_eq!(
        vfloor(&mut con).0,
        1,
        "a cold module's snapshot is still cold"
    );
    assert_eq!(vset(&mut con, "k", "1", "x"), 0);
}

fn aof_server(preamble: &str, module_args: &[&str]) -> RedisServer {
    RedisServer::start(
        RedisOptions::new()
            .module_args(module_args.iter().copied())
            .config("appendonly", "yes")
            .config("appendfsync", "always")
            .config("aof-use-rdb-preamble", preamble),
    )
    .unwrap()
}

fn wait_for_rewrite(server: &RedisServer) {
    std::thread::sleep(Duration::from_millis(100));
    wait_until("AOF rewrite", || {
        Ok(server
            .info_field("persistence", "aof_rewrite_in_progress")?
            .as_deref()
            == Some("0")
            && server
                .info_field("persistence", "aof_rewrite_scheduled")?
                .as_deref()
                == Some("0"))
    })
    .unwrap();
    assert_eq!(
        server
            .info_field("persistence", "aof_last_bgrewrite_status")
            .unwrap()
            .as_deref(),
        Some("ok")
    );
}

fn base_file_suffix(server: &RedisServer) -> String {
    let dir = server.dir().join("appendonlydir");
    let mut bases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".base."))
        .collect();
    bases.sort();
    bases
        .pop()
        .expect("a base file")
        .rsplit('.')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn restart_from_aof_keeps_values_versions_and_floors() {
    // Cold start on: the replayed VFLOOR ends cold state, the replayed writes are
    // applied as logged.
    let mut server = aof_server("yes", &[]);
    let mut con = server.client().unwrap();
    raise_floor(&mut con, "3");
    write_state(&mut con);
    drop(con);
    server.kill(); // crash: only the AOF (fsync always) survives
    server.start_again().unwrap();
    let mut con = server.client().unwrap();
    check_state(&mut con);
    let other = key_in_other_bucket("n", "d", 65_536);
    assert_eq!(vset(&mut con, &other, "3", "at the VFLOOR floor"), 0);
}

#[test]
fn aof_rewrite_rebuilds_the_same_state() {
    for preamble in ["yes", "no"] {
        // One bucket, so a legitimately stored value can sit below the floor: the
        // rewritten AOF must restore it rather than refuse it.
        let mut server = aof_server(preamble, &["buckets", "1"]);
        let mut con = server.client().unwrap();
        raise_floor(&mut con, "1");
        assert_eq!(vset(&mut con, "a", "5", "x"), 1);
        assert_eq!(vset(&mut con, "b", "10", "y"), 1);
        let _: i64 = redis::cmd("DEL").arg("b").query(&mut con).unwrap();
        assert_eq!(vdel(&mut con, "t", "12"), 1);
        let _: Value = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
        wait_for_rewrite(&server);
        let expected_base = if preamble == "yes" { "rdb" } else { "aof" };
        assert_eq!(base_file_suffix(&server), expected_base);
        assert_eq!(vset(&mut con, "c", "11", "after rewrite"), 1);
        drop(con);
        server.kill();
        server.start_again().unwrap();
        let mut con = server.client().unwrap();
        assert_eq!(
            vget_int(&mut con, "a"),
            (Some("x".into()), 5),
            "preamble {preamble}"
        );
        assert_eq!(vget_int(&mut con, "c"), (Some("after rewrite".into()), 11));
        assert_eq!(vget_int(&mut con, "t"), (None, 12));
        assert!((86_000..=86_400).contains(&ttl(&mut con, "t")));
        assert_eq!(exists(&mut con, "b"), 0);
        assert_eq!(
            vfloor(&mut con),
            (0, Value::Int(10), 1),
            "preamble {preamble}"
        );
        assert_eq!(vset(&mut con, "b", "10", "late"), 0);
    }
}

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vset-v1.rdb")
}

/// Far-future expiry of the fixture's tombstone (2100-01-01T00:00:00Z).
const FIXTURE_TOMBSTONE_EXAT: i64 = 4_102_444_800;

/// Regenerates `tests/fixtures/vset-v1.rdb`. Run only on purpose:
/// `cargo test -p vset-redis --test integration -- --ignored write_rdb_fixture`.
/// The committed file must keep loading with every later module version.
#[test]
#[ignore]
fn write_rdb_fixture() {
    let mut server = warm_server();
    let mut con = server.client().unwrap();
    raise_floor(&mut con, "7");
    assert_eq!(vset(&mut con, "user:1", "8", "alice"), 1);
    assert_eq!(vset(&mut con, "user:2", "9007199254740993", "bob"), 1);
    assert_eq!(vset(&mut con, "user:3", "18446744073709551615", "max"), 1);
    let bin: &[u8] = b"bin\x00\xff\r\n";
    let n: i64 = redis::cmd("VSET")
        .arg("user:5")
        .arg(9)
        .arg(bin)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        vdel_with(
            &mut con,
            "user:4",
            "40",
            &["EXAT", &FIXTURE_TOMBSTONE_EXAT.to_string()]
        ),
        1
    );
    assert_eq!(vset(&mut con, "gone", "500", "forgotten"), 1);
    let _: i64 = redis::cmd("DEL").arg("gone").query(&mut con).unwrap();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    drop(con);
    server.stop();
    std::fs::create_dir_all(fixture_path().parent().unwrap()).unwrap();
    std::fs::copy(server.dir().join("dump.rdb"), fixture_path()).unwrap();
}

#[test]
fn committed_rdb_fixture_still_loads() {
    let server = RedisServer::start(RedisOptions::new().rdb_file(fixture_path())).unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(
        vfloor(&mut con),
        (0, Value::Int(500), 65_536),
        "floors and warm state"
    );
    assert_eq!(vget_int(&mut con, "user:1"), (Some("alice".into()), 8));
    assert_eq!(
        vget_int(&mut con, "user:2"),
        (Some("bob".into()), 9_007_199_254_740_993)
    );
    assert_eq!(
        vget_v(&mut con, "user:3"),
        (
            Some("max".into()),
            Value::BulkString(b"18446744073709551615".to_vec())
        )
    );
    let bin: Vec<u8> = redis::cmd("VGET").arg("user:5").query(&mut con).unwrap();
    assert_eq!(bin, b"bin\x00\xff\r\n");
    assert_eq!(vget_int(&mut con, "user:4"), (None, 40));
    let at: i64 = redis::cmd("EXPIRETIME")
        .arg("user:4")
        .query(&mut con)
        .unwrap();
    assert_eq!(at, FIXTURE_TOMBSTONE_EXAT);
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 5);
    assert_eq!(
        vset(&mut con, "gone", "500", "late"),
        0,
        "gone's bucket floor is 500"
    );
    assert_eq!(vset(&mut con, "gone", "501", "new"), 1);
    let other = key_in_other_bucket("o", "gone", 65_536);
    assert_eq!(vset(&mut con, &other, "7", "at VFLOOR 7"), 0);
    assert_eq!(vset(&mut con, &other, "8", "above"), 1);
    assert_eq!(vset(&mut con, "user:4", "39", "older than the delete"), 0);
}

/// Saves an RDB holding a marker value, with Redis' own `rdbchecksum` set to
/// `rdbchecksum` ("yes"/"no"), and returns its bytes.
fn rdb_with_marker(rdbchecksum: &str) -> Vec<u8> {
    let mut server =
        RedisServer::start(RedisOptions::warm().config("rdbchecksum", rdbchecksum)).unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "marker", "1", "CORRUPT-ME-0123456789"), 1);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    drop(con);
    server.stop();
    std::fs::read(server.dir().join("dump.rdb")).unwrap()
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern in the RDB file")
}

/// Starts a server on `bytes` (with `rdbchecksum` as they were saved) that must
/// refuse them cleanly; returns its log.
fn load_corrupt(bytes: &[u8], rdbchecksum: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.rdb");
    std::fs::write(&path, bytes).unwrap();
    let log = RedisServer::start_expecting_exit(
        RedisOptions::warm()
            .config("rdbchecksum", rdbchecksum)
            .rdb_file(&path),
    )
    .expect("a corrupt RDB must stop the server");
    assert!(
        !log.contains("REDIS BUG REPORT"),
        "a clean refusal, not a crash:\n{log}"
    );
    assert!(!log.contains("crashed by signal"), "{log}");
    log
}

#[test]
fn corrupt_value_fails_to_load_cleanly() {
    let mut bad = rdb_with_marker("no");
    let at = find(&bad, b"CORRUPT-ME");
    bad[at + 3] ^= 0x01; // one bit of the value
    let log = load_corrupt(&bad, "no");
    assert!(
        log.contains("vset: corrupt RDB value for key 'marker': checksum mismatch"),
        "{log}"
    );
}

#[test]
fn corrupt_floors_fail_to_load_cleanly() {
    let mut bad = rdb_with_marker("no");
    // The floors record: format 1, cold=false, bincode varint 65536 (0xfc + u32 LE).
    let at = find(&bad, &[1, 0, 0xfc, 0, 0, 1, 0]);
    bad[at + 1] = 1; // claim "cold" without fixing the checksum
    let log = load_corrupt(&bad, "no");
    assert!(
        log.contains("vset: corrupt RDB floors record: checksum mismatch"),
        "{log}"
    );
}

#[test]
fn corrupt_value_is_refused_with_redis_checksum_on_too() {
    // Redis verifies its own RDB checksum only after reading the whole file, so
    // the module's per-record checksum is what stops a corrupt value even then.
    let mut bad = rdb_with_marker("yes");
    let at = find(&bad, b"CORRUPT-ME");
    bad[at + 3] ^= 0x01;
    let log = load_corrupt(&bad, "yes");
    assert!(
        log.contains("vset: corrupt RDB value for key 'marker': checksum mismatch"),
        "{log}"
    );
}

#[test]
fn aof_replay_is_never_refused_as_cold() {
    // An AOF rewritten without RDB preamble while no vset key existed carries no
    // floors, so the restarted module is cold while it replays the writes logged
    // after the rewrite: they were decided before the crash and must be applied.
    let mut server = aof_server("no", &[]);
    let mut con = server.client().unwrap();
    raise_floor(&mut con, "1");
    let _: Value = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_for_rewrite(&server);
    assert_eq!(vset(&mut con, "a", "5", "x"), 1);
    assert_eq!(vdel(&mut con, "t", "6"), 1);
    drop(con);
    server.kill();
    server.start_again().unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vget_int(&mut con, "a"), (Some("x".into()), 5));
    assert_eq!(vget_int(&mut con, "t"), (None, 6));
    // No floors were saved, so the module is (safely) cold again for clients.
    assert_eq!(vfloor(&mut con).0, 1);
    assert_eq!(vset(&mut con, "a", "7", "y"), 0);
    assert_eq!(counter(&mut con, "rejected_cold"), 1);
}
