//! Invariant 4 through Redis' own lifecycle (issue 10): ways Redis drops or moves a
//! key without a DEL, expiry or eviction that the module sees key by key.

use std::time::Duration;

use crate::common::*;

/// A tombstone (and a value) whose TTL passes while Redis is down is dropped when
/// the RDB is loaded; its version must still be remembered.
#[test]
fn keys_that_expired_while_redis_was_down_raise_their_floors() {
    let mut server = warm_server();
    {
        let mut con = server.client().unwrap();
        assert_eq!(vset(&mut con, "k", "5", "v5"), 1);
        assert_eq!(vdel_with(&mut con, "k", "10", &["PX", "1500"]), 1);
        assert_eq!(vset_with(&mut con, "v", "20", "v20", &["PX", "1500"]), 1);
        assert_eq!(vset(&mut con, "kept", "30", "v30"), 1);
        let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    }
    server.stop();
    std::thread::sleep(Duration::from_millis(2_000));
    server.start_again().unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(exists(&mut con, "k"), 0, "the tombstone expired while down");
    assert_eq!(exists(&mut con, "v"), 0, "the value expired while down");
    assert_eq!(
        vset(&mut con, "k", "9", "stale-v9"),
        0,
        "older than the tombstone"
    );
    assert_eq!(vget(&mut con, "k"), None);
    assert_eq!(
        vset(&mut con, "v", "19", "stale-v19"),
        0,
        "older than the value"
    );
    assert_eq!(vget(&mut con, "v"), None);
    assert_eq!(vset(&mut con, "k", "11", "v11"), 1, "newer still stores");
    assert_eq!(vget_int(&mut con, "kept"), (Some("v30".into()), 30));
}

/// `RESTORE` with a TTL that already passed loads the value and drops it at once.
#[test]
fn a_restore_whose_ttl_already_passed_raises_the_floor() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "src", "40", "v40"), 1);
    let dump: Vec<u8> = redis::cmd("DUMP").arg("src").query(&mut con).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("dst")
        .arg(1_000)
        .arg(&dump)
        .arg("ABSTTL")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists(&mut con, "dst"), 0, "restored already expired");
    assert_eq!(vset(&mut con, "dst", "39", "stale"), 0);
    assert_eq!(vget(&mut con, "dst"), None);
}

/// `SWAPDB` moves every key of a database away without telling the type.
#[test]
fn swapdb_forgets_versions_safely() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "k", "10", "v10"), 1);
    let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query(&mut con).unwrap();
    assert_eq!(exists(&mut con, "k"), 0);
    assert_eq!(
        vset(&mut con, "k", "7", "stale7"),
        0,
        "older than what db 0 held"
    );
    assert_eq!(vget(&mut con, "k"), None);
    assert_eq!(vset(&mut con, "k", "11", "v11"), 1);
    assert_eq!(vget_int(&mut con, "k"), (Some("v11".into()), 11));
}

/// A refused write changes nothing, so it must not look like a change: `WATCH`
/// (and client-side caching, which uses the same signal) must not see one. A
/// stored write must.
#[test]
fn only_writes_that_change_the_key_signal_a_modification() {
    let server = warm_server();
    let mut watcher = server.client().unwrap();
    let mut writer = server.client().unwrap();
    assert_eq!(vset(&mut writer, "k", "10", "v10"), 1);

    let exec_after = |watcher: &mut redis::Connection, write: &mut dyn FnMut()| {
        let _: () = redis::cmd("WATCH").arg("k").query(watcher).unwrap();
        write();
        let _: () = redis::cmd("MULTI").query(watcher).unwrap();
        let _: redis::Value = redis::cmd("VGET").arg("k").query(watcher).unwrap();
        let reply: redis::Value = redis::cmd("EXEC").query(watcher).unwrap();
        !matches!(reply, redis::Value::Nil)
    };
    assert!(
        exec_after(&mut watcher, &mut || assert_eq!(
            vset(&mut writer, "k", "5", "old"),
            0
        )),
        "a refused VSET aborted a transaction watching the key"
    );
    assert!(
        exec_after(&mut watcher, &mut || assert_eq!(
            vdel(&mut writer, "k", "6"),
            0
        )),
        "a refused VDEL aborted a transaction watching the key"
    );
    assert!(
        !exec_after(&mut watcher, &mut || assert_eq!(
            vset(&mut writer, "k", "11", "v11"),
            1
        )),
        "a stored VSET must abort a transaction watching the key"
    );
    assert!(
        !exec_after(&mut watcher, &mut || assert_eq!(
            vdel(&mut writer, "k", "12"),
            1
        )),
        "a stored VDEL must abort a transaction watching the key"
    );
}

/// `DEBUG DIGEST-VALUE` (and so `DEBUG DIGEST`, which compares a master with its
/// replica) sees a value's version and payload, and tells a tombstone apart.
#[test]
fn digests_cover_version_payload_and_tombstones() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    let digest = |con: &mut redis::Connection, key: &str| -> String {
        let v: Vec<String> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(key)
            .query(con)
            .unwrap();
        v[0].clone()
    };
    assert_eq!(vset(&mut con, "a", "5", "x"), 1);
    assert_eq!(vset(&mut con, "b", "5", "x"), 1);
    assert_eq!(vset(&mut con, "c", "6", "x"), 1);
    assert_eq!(vset(&mut con, "d", "5", "y"), 1);
    assert_eq!(vdel(&mut con, "e", "5"), 1);
    let (a, b, c, d, e) = (
        digest(&mut con, "a"),
        digest(&mut con, "b"),
        digest(&mut con, "c"),
        digest(&mut con, "d"),
        digest(&mut con, "e"),
    );
    assert_eq!(a, b, "same version and payload, same digest");
    assert_ne!(a, c, "the version is part of the digest");
    assert_ne!(a, d, "the payload is part of the digest");
    assert_ne!(a, e, "a tombstone is not a value");
    assert_ne!(a, "0".repeat(40), "a digest at all");
}

/// Commands that install a value at a key without asking the module — `RESTORE ...
/// REPLACE`, `RENAME` and `COPY ... REPLACE` onto an existing vset key — must not
/// serve a version older than the one they replaced.
#[test]
fn values_installed_over_a_newer_version_are_not_served() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    // RESTORE ... REPLACE of an older DUMP.
    assert_eq!(vset(&mut con, "r", "2", "old-r"), 1);
    let dump: Vec<u8> = redis::cmd("DUMP").arg("r").query(&mut con).unwrap();
    assert_eq!(vset(&mut con, "r", "10", "new-r"), 1);
    let _: () = redis::cmd("RESTORE")
        .arg("r")
        .arg(0)
        .arg(&dump)
        .arg("REPLACE")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        vget(&mut con, "r"),
        None,
        "RESTORE brought back version 2 over 10"
    );
    assert_eq!(vset(&mut con, "r", "9", "still-old"), 0);
    assert_eq!(vget(&mut con, "r"), None);
    assert_eq!(vset(&mut con, "r", "11", "v11"), 1);
    assert_eq!(vget_int(&mut con, "r"), (Some("v11".into()), 11));

    // RENAME an older value onto a newer one.
    assert_eq!(vset(&mut con, "a", "3", "old-a"), 1);
    assert_eq!(vset(&mut con, "b", "20", "new-b"), 1);
    let _: () = redis::cmd("RENAME")
        .arg("a")
        .arg("b")
        .query(&mut con)
        .unwrap();
    assert_eq!(vget(&mut con, "b"), None, "RENAME put version 3 over 20");
    assert_eq!(vset(&mut con, "b", "21", "v21"), 1);
    assert_eq!(vget(&mut con, "b"), Some("v21".into()));

    // COPY ... REPLACE an older value onto a newer one.
    assert_eq!(vset(&mut con, "c", "4", "old-c"), 1);
    assert_eq!(vset(&mut con, "d", "30", "new-d"), 1);
    let copied: i64 = redis::cmd("COPY")
        .arg("c")
        .arg("d")
        .arg("REPLACE")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 1);
    assert_eq!(vget(&mut con, "d"), None, "COPY put version 4 over 30");
    assert_eq!(
        vget(&mut con, "c"),
        Some("old-c".into()),
        "the source is untouched"
    );

    // Newer over older stays served.
    assert_eq!(vset(&mut con, "e", "5", "old-e"), 1);
    assert_eq!(vset(&mut con, "f", "50", "newer-f"), 1);
    let _: () = redis::cmd("RENAME")
        .arg("f")
        .arg("e")
        .query(&mut con)
        .unwrap();
    assert_eq!(vget(&mut con, "e"), Some("newer-f".into()));
}
