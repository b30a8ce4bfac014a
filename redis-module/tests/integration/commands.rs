//! VSET/VGET/VDEL/VFLOOR semantics, bad input, WRONGTYPE, generic key commands,
//! key specs and ACL, INFO counters, module arguments.

use redis::Value;
use vset_tests::redis::{RedisOptions, RedisServer};

use crate::common::*;

#[test]
fn newer_versions_win_equal_and_older_lose() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "k", "5", "five"), 1);
    assert_eq!(vset(&mut con, "k", "5", "other five"), 0, "equal version");
    assert_eq!(vset(&mut con, "k", "4", "four"), 0, "older version");
    assert_eq!(vget(&mut con, "k").as_deref(), Some("five"));
    assert_eq!(vset(&mut con, "k", "6", "six"), 1);
    assert_eq!(vget_int(&mut con, "k"), (Some("six".into()), 6));
    assert_eq!(vset(&mut con, "k", "0", "zero"), 0, "0 is never newer");
    assert_eq!(vset(&mut con, "fresh", "0", "zero"), 0, "0 is never newer");
    assert_eq!(exists(&mut con, "fresh"), 0);
}

#[test]
fn versions_are_exact_u64() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    // 2^53 and 2^53+1 are the same double; vset must still order them.
    assert_eq!(vset(&mut con, "k", "9007199254740992", "a"), 1);
    assert_eq!(vset(&mut con, "k", "9007199254740993", "b"), 1);
    assert_eq!(vset(&mut con, "k", "9007199254740992", "c"), 0);
    assert_eq!(
        vget_int(&mut con, "k"),
        (Some("b".into()), 9_007_199_254_740_993)
    );
    // i64::MAX is still an integer reply; above it the version is a bulk string.
    assert_eq!(vset(&mut con, "k", "9223372036854775807", "d"), 1);
    assert_eq!(vget_int(&mut con, "k"), (Some("d".into()), i64::MAX));
    assert_eq!(vset(&mut con, "k", "9223372036854775808", "e"), 1);
    assert_eq!(
        vget_v(&mut con, "k"),
        (
            Some("e".into()),
            Value::BulkString(b"9223372036854775808".to_vec())
        )
    );
    assert_eq!(vset(&mut con, "k", "18446744073709551615", "max"), 1);
    assert_eq!(
        vget_v(&mut con, "k"),
        (
            Some("max".into()),
            Value::BulkString(b"18446744073709551615".to_vec())
        )
    );
    assert_eq!(vset(&mut con, "k", "18446744073709551615", "again"), 0);
    assert_eq!(vdel(&mut con, "k", "18446744073709551615"), 0);
    assert_eq!(vget(&mut con, "k").as_deref(), Some("max"));
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "k", "10", "ten"), 1);
    let before = info_vset(&mut con);
    for bad in [
        "-1",
        "1.5",
        "abc",
        "",
        "18446744073709551616",
        "+11",
        " 11",
        "11 ",
        "1e3",
    ] {
        for cmd in [
            redis::cmd("VSET").arg("k").arg(bad).arg("x").clone(),
            redis::cmd("VSET").arg("new").arg(bad).arg("x").clone(),
            redis::cmd("VDEL").arg("k").arg(bad).clone(),
            redis::cmd("VFLOOR").arg(bad).clone(),
        ] {
            let e = err(cmd.query(&mut con));
            assert!(
                e.contains("version must be an unsigned 64-bit integer"),
                "{bad:?}: {e}"
            );
        }
    }
    let bad_options: [&[&str]; 9] = [
        &["EX", "0"],
        &["EX", "-5"],
        &["EX", "abc"],
        &["PX", "0"],
        &["PX", "1.5"],
        &["EX", "99999999999999999999"],
        &["EX"],
        &["FOO", "1"],
        &["EX", "1", "PX", "1"],
    ];
    for opts in bad_options {
        let e = err(redis::cmd("VSET")
            .arg("k")
            .arg("11")
            .arg("x")
            .arg(opts)
            .query(&mut con));
        let e2 = err(redis::cmd("VDEL")
            .arg("k")
            .arg("11")
            .arg(opts)
            .query(&mut con));
        if opts.len() == 2 && opts[0] != "FOO" {
            assert!(
                e.contains("invalid expire time in 'vset' command"),
                "{opts:?}: {e}"
            );
            assert!(
                e2.contains("invalid expire time in 'vdel' command"),
                "{opts:?}: {e2}"
            );
        } else {
            assert!(e.contains("syntax error"), "{opts:?}: {e}");
            assert!(e2.contains("syntax error"), "{opts:?}: {e2}");
        }
    }
    let e = err(redis::cmd("VSET").arg("k").arg("11").query(&mut con));
    assert!(e.contains("wrong number of arguments"), "{e}");
    let e = err(redis::cmd("VDEL").arg("k").query(&mut con));
    assert!(e.contains("wrong number of arguments"), "{e}");
    let e = err(redis::cmd("VGET").query(&mut con));
    assert!(e.contains("wrong number of arguments"), "{e}");
    let e = err(redis::cmd("VGET")
        .arg("k")
        .arg("WITHVERSIONS")
        .query(&mut con));
    assert!(e.contains("syntax error"), "{e}");
    let e = err(redis::cmd("VFLOOR").arg("1").arg("2").query(&mut con));
    assert!(e.contains("syntax error"), "{e}");
    let e = err(redis::cmd("VFLOOR")
        .arg("RESTORE")
        .arg("garbage")
        .query(&mut con));
    assert!(e.contains("VFLOOR RESTORE"), "{e}");

    assert_eq!(vget_int(&mut con, "k"), (Some("ten".into()), 10));
    assert_eq!(exists(&mut con, "new"), 0);
    assert_eq!(ttl(&mut con, "k"), -1);
    let (cold, floor, _) = vfloor(&mut con);
    assert_eq!((cold, floor), (0, Value::Int(0)));
    assert_eq!(info_vset(&mut con), before, "no counter moved");
}

#[test]
fn wrongtype_both_ways() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("plain")
        .query(&mut con)
        .unwrap();
    for cmd in [
        redis::cmd("VSET").arg("s").arg("1").arg("x").clone(),
        redis::cmd("VDEL").arg("s").arg("1").clone(),
        redis::cmd("VGET").arg("s").clone(),
        redis::cmd("VGET").arg("s").arg("WITHVERSION").clone(),
    ] {
        assert!(err(cmd.query(&mut con)).starts_with("WRONGTYPE"));
    }
    let s: String = redis::cmd("GET").arg("s").query(&mut con).unwrap();
    assert_eq!(s, "plain");

    assert_eq!(vset(&mut con, "v", "1", "x"), 1);
    for cmd in [
        redis::cmd("GET").arg("v").clone(),
        redis::cmd("HGET").arg("v").arg("f").clone(),
        redis::cmd("LPUSH").arg("v").arg("e").clone(),
        redis::cmd("INCR").arg("v").clone(),
        redis::cmd("APPEND").arg("v").arg("e").clone(),
        redis::cmd("SADD").arg("v").arg("e").clone(),
    ] {
        assert!(err(cmd.query(&mut con)).starts_with("WRONGTYPE"));
    }
    assert_eq!(vget_int(&mut con, "v"), (Some("x".into()), 1));
}

#[test]
fn generic_key_commands_behave() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "k", "7", "seven"), 1);
    let _: () = redis::cmd("SET")
        .arg("plain")
        .arg("p")
        .query(&mut con)
        .unwrap();

    let t: String = redis::cmd("TYPE").arg("k").query(&mut con).unwrap();
    assert_eq!(t, "vsetvalue");
    let n: i64 = redis::cmd("EXPIRE")
        .arg("k")
        .arg(100)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    let secs = ttl(&mut con, "k");
    assert!((90..=100).contains(&secs), "ttl {secs}");
    let n: i64 = redis::cmd("PERSIST").arg("k").query(&mut con).unwrap();
    assert_eq!(n, 1);
    assert_eq!(ttl(&mut con, "k"), -1);

    let _: () = redis::cmd("RENAME")
        .arg("k")
        .arg("k2")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists(&mut con, "k"), 0);
    assert_eq!(vget_int(&mut con, "k2"), (Some("seven".into()), 7));

    let n: i64 = redis::cmd("COPY")
        .arg("k2")
        .arg("k3")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(vget_int(&mut con, "k3"), (Some("seven".into()), 7));
    // The copy is independent: writing one leaves the other.
    assert_eq!(vset(&mut con, "k3", "8", "eight"), 1);
    assert_eq!(vget_int(&mut con, "k2"), (Some("seven".into()), 7));

    let big = "x".repeat(10_000);
    assert_eq!(vset(&mut con, "big", "1", &big), 1);
    let small: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("k2")
        .query(&mut con)
        .unwrap();
    let large: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("big")
        .query(&mut con)
        .unwrap();
    assert!(
        small > 0 && (10_000..12_000).contains(&large),
        "{small} {large}"
    );

    let idle: i64 = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("k2")
        .query(&mut con)
        .unwrap();
    assert!(idle >= 0);
    let refcount: i64 = redis::cmd("OBJECT")
        .arg("REFCOUNT")
        .arg("k2")
        .query(&mut con)
        .unwrap();
    assert_eq!(refcount, 1);

    let (cursor, mut keys): (String, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("TYPE")
        .arg("vsetvalue")
        .arg("COUNT")
        .arg(1000)
        .query(&mut con)
        .unwrap();
    keys.sort();
    assert_eq!(cursor, "0");
    assert_eq!(keys, vec!["big", "k2", "k3"]);

    // DUMP/RESTORE (what MIGRATE uses) carry value and version together.
    let dump: Vec<u8> = redis::cmd("DUMP").arg("k2").query(&mut con).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("restored")
        .arg(0)
        .arg(&dump)
        .query(&mut con)
        .unwrap();
    assert_eq!(vget_int(&mut con, "restored"), (Some("seven".into()), 7));
    let n: i64 = redis::cmd("DEL").arg("restored").query(&mut con).unwrap();
    assert_eq!(n, 1);

    let n: i64 = redis::cmd("DEL").arg("k2").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("UNLINK").arg("k3").query(&mut con).unwrap();
    assert_eq!(n, 1);
    assert_eq!((exists(&mut con, "k2"), exists(&mut con, "k3")), (0, 0));
}

#[test]
fn vdel_writes_a_tombstone_that_blocks_older_writes() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "k", "5", "five"), 1);
    assert_eq!(vdel(&mut con, "k", "4"), 0, "stale delete");
    assert_eq!(vdel(&mut con, "k", "5"), 0, "equal-version delete");
    assert_eq!(vget(&mut con, "k").as_deref(), Some("five"));
    assert_eq!(vdel(&mut con, "k", "6"), 1);
    assert_eq!(vget(&mut con, "k"), None);
    assert_eq!(vget_int(&mut con, "k"), (None, 6));
    assert_eq!(exists(&mut con, "k"), 1, "the tombstone is a key");
    let secs = ttl(&mut con, "k");
    assert!(
        (86_390..=86_400).contains(&secs),
        "default tombstone TTL, got {secs}"
    );
    assert_eq!(
        vset(&mut con, "k", "5", "late five"),
        0,
        "tombstone blocks older"
    );
    assert_eq!(vset(&mut con, "k", "6", "six"), 0, "and equal");
    assert_eq!(vget_int(&mut con, "k"), (None, 6));
    assert_eq!(vset(&mut con, "k", "7", "seven"), 1);
    assert_eq!(vget_int(&mut con, "k"), (Some("seven".into()), 7));
    assert_eq!(
        ttl(&mut con, "k"),
        -1,
        "a value written without EX does not keep the tombstone TTL"
    );

    // VDEL of a key never seen still records the delete.
    assert_eq!(vdel(&mut con, "never", "3"), 1);
    assert_eq!(vget_int(&mut con, "never"), (None, 3));
    assert_eq!(vset(&mut con, "never", "2", "old"), 0);

    assert_eq!(vdel_with(&mut con, "px", "3", &["PX", "5000"]), 1);
    let ms = pttl(&mut con, "px");
    assert!((1..=5_000).contains(&ms), "pttl {ms}");
}

#[test]
fn vset_expiry_options() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vset_with(&mut con, "k", "1", "a", &["EX", "100"]), 1);
    let secs = ttl(&mut con, "k");
    assert!((90..=100).contains(&secs), "ttl {secs}");
    assert_eq!(vset(&mut con, "k", "2", "b"), 1);
    assert_eq!(
        ttl(&mut con, "k"),
        -1,
        "VSET without EX/PX clears the expiry, like SET"
    );
    assert_eq!(vset_with(&mut con, "k", "3", "c", &["px", "60000"]), 1);
    let ms = pttl(&mut con, "k");
    assert!((50_000..=60_000).contains(&ms), "pttl {ms}");
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1000;
    assert_eq!(
        vset_with(&mut con, "k", "4", "d", &["EXAT", &at.to_string()]),
        1
    );
    let secs = ttl(&mut con, "k");
    assert!((990..=1000).contains(&secs), "ttl {secs}");
    // A rejected write changes nothing, expiry included.
    assert_eq!(vset_with(&mut con, "k", "1", "old", &["EX", "5"]), 0);
    let secs = ttl(&mut con, "k");
    assert!((990..=1000).contains(&secs), "ttl {secs}");
}

/// A value is overwritten in place when the new payload fits its block, and moved
/// to a new block when it grows or shrinks a lot; either way the key keeps what the
/// contract says (payload, version, expiry) and nothing is forgotten (no floor rises).
#[test]
fn overwrites_that_grow_shrink_and_switch_to_tombstones() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    let memory = |con: &mut redis::Connection| -> i64 {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg("k")
            .query(con)
            .unwrap()
    };
    let big = "x".repeat(4096);
    let steps: [(&str, Option<&str>); 7] = [
        ("1", Some("ten bytes!")),
        ("2", Some("same size!")),
        ("3", Some(big.as_str())),
        ("4", Some("tiny")),
        ("5", None),
        ("6", Some("")),
        ("7", Some("after the tombstone")),
    ];
    let floors_raised = counter(&mut con, "floors_raised");
    let mut sizes = Vec::new();
    for (version, payload) in steps {
        let stored = match payload {
            Some(p) => vset_with(&mut con, "k", version, p, &["EX", "1000"]),
            None => vdel_with(&mut con, "k", version, &["EX", "1000"]),
        };
        assert_eq!(stored, 1, "version {version}");
        assert_eq!(
            vget_int(&mut con, "k"),
            (payload.map(str::to_string), version.parse().unwrap()),
            "version {version}"
        );
        let secs = ttl(&mut con, "k");
        assert!(
            (990..=1000).contains(&secs),
            "version {version}: ttl {secs}"
        );
        sizes.push(memory(&mut con));
    }
    assert!(sizes[2] > 4096, "the big value is accounted: {sizes:?}");
    assert!(
        sizes[3] < 1024,
        "a shrunk value gives the block back: {sizes:?}"
    );
    assert_eq!(
        counter(&mut con, "floors_raised"),
        floors_raised,
        "nothing forgotten"
    );
    assert_eq!(vset(&mut con, "k", "6", "older"), 0);
    assert_eq!(vget(&mut con, "k").as_deref(), Some("after the tombstone"));
}

#[test]
fn vget_of_missing_key() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    assert_eq!(vget(&mut con, "nope"), None);
    assert_eq!(vget_v(&mut con, "nope"), (None, Value::Int(0)));
    assert_eq!(vset(&mut con, "empty", "1", ""), 1);
    assert_eq!(vget_int(&mut con, "empty"), (Some(String::new()), 1));
}

#[test]
fn binary_values_round_trip() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    let value: Vec<u8> = (0..=255u8).chain([0, 0, b'\r', b'\n']).collect();
    let n: i64 = redis::cmd("VSET")
        .arg("bin")
        .arg(1)
        .arg(&value)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    let got: Vec<u8> = redis::cmd("VGET").arg("bin").query(&mut con).unwrap();
    assert_eq!(got, value);
}

#[test]
fn vfloor_reports_and_raises() {
    let server =
        RedisServer::start(RedisOptions::new().module_args(["cold-start", "no", "buckets", "16"]))
            .unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vfloor(&mut con), (0, Value::Int(0), 16));
    raise_floor(&mut con, "100");
    assert_eq!(vfloor(&mut con), (0, Value::Int(100), 16));
    assert_eq!(vset(&mut con, "k", "100", "at floor"), 0);
    assert_eq!(vset(&mut con, "k", "99", "below"), 0);
    assert_eq!(vdel(&mut con, "k", "100"), 0);
    assert_eq!(vset(&mut con, "k", "101", "above"), 1);
    raise_floor(&mut con, "50");
    assert_eq!(
        vfloor(&mut con),
        (0, Value::Int(100), 16),
        "floors never go down"
    );
    raise_floor(&mut con, "18446744073709551615");
    assert_eq!(
        vfloor(&mut con),
        (0, Value::BulkString(b"18446744073709551615".to_vec()), 16)
    );
    assert_eq!(vset(&mut con, "k", "18446744073709551615", "x"), 0);
    assert_eq!(
        counter(&mut con, "floors_raised"),
        32,
        "2 x 16 buckets rose"
    );
    assert_eq!(counter(&mut con, "highest_floor"), u64::MAX);
}

#[test]
fn info_counts_every_outcome() {
    let server = RedisServer::start(RedisOptions::new()).unwrap(); // cold start on
    let mut con = server.client().unwrap();
    let info = info_vset(&mut con);
    assert_eq!(info["cold"], "1");
    assert_eq!(vset(&mut con, "k", "1", "x"), 0);
    assert_eq!(vdel(&mut con, "k", "1"), 0);
    raise_floor(&mut con, "10");
    assert_eq!(vset(&mut con, "k", "10", "x"), 0); // floor
    assert_eq!(vset(&mut con, "k", "11", "x"), 1); // stored
    assert_eq!(vset(&mut con, "k", "11", "y"), 0); // stale
    assert_eq!(vset(&mut con, "k", "5", "y"), 0); // stale
    assert_eq!(vdel(&mut con, "k", "12"), 1); // tombstone
    assert_eq!(vset(&mut con, "k", "13", "z"), 1); // stored
    let info = info_vset(&mut con);
    let get = |name: &str| {
        info.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("vset_{name}"))
    };
    assert_eq!(get("cold"), "0");
    assert_eq!(get("stored"), "2");
    assert_eq!(get("rejected_stale"), "2");
    assert_eq!(get("rejected_floor"), "1");
    assert_eq!(get("rejected_cold"), "2");
    assert_eq!(get("tombstones_written"), "1");
    assert_eq!(get("floors_raised"), "65536");
    assert_eq!(get("highest_floor"), "10");
    assert_eq!(get("buckets"), "65536");
    assert_eq!(get("tombstone_ttl_ms"), "86400000");
}

#[test]
fn bad_module_arguments_refuse_to_load() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["buckets", "0"],
            "module argument `buckets`: `0` is not an integer from 1 to 16777216",
        ),
        (
            &["buckets", "lots"],
            "module argument `buckets`: `lots` is not an integer from 1 to 16777216",
        ),
        (
            &["tombstone-ttl-ms", "-1"],
            "module argument `tombstone-ttl-ms`: `-1` is not a positive number of milliseconds",
        ),
        (
            &["cold-start", "maybe"],
            "module argument `cold-start`: `maybe` is not `yes` or `no`",
        ),
        (&["bucket", "8"], "unknown module argument `bucket`"),
        (&["buckets"], "module argument `buckets` has no value"),
    ];
    for (args, expected) in cases {
        let log = RedisServer::start_expecting_exit(
            RedisOptions::new().module_args(args.iter().copied()),
        )
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(
            log.contains(&format!("vset: refusing to load: {expected}")),
            "{args:?}: log was:\n{log}"
        );
    }
}

#[test]
fn commands_declare_keys_and_flags() {
    let server = warm_server();
    let mut con = server.client().unwrap();
    for cmd in [
        redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg("VSET")
            .arg("user:1")
            .arg("1")
            .arg("v")
            .clone(),
        redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg("VDEL")
            .arg("user:1")
            .arg("1")
            .arg("EX")
            .arg("5")
            .clone(),
        redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg("VGET")
            .arg("user:1")
            .arg("WITHVERSION")
            .clone(),
    ] {
        let keys: Vec<String> = cmd.query(&mut con).unwrap();
        assert_eq!(keys, vec!["user:1"]);
    }
    let info: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("vset")
        .arg("vget")
        .arg("vdel")
        .arg("vfloor")
        .query(&mut con)
        .unwrap();
    let Value::Array(cmds) = info else {
        panic!("{info:?}")
    };
    let flags_of = |i: usize| -> Vec<String> {
        let Value::Array(fields) = &cmds[i] else {
            panic!("{:?}", cmds[i])
        };
        let Value::Array(flags) = &fields[2] else {
            panic!("{:?}", fields[2])
        };
        flags
            .iter()
            .map(|f| match f {
                Value::SimpleString(s) => s.clone(),
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let arity_of = |i: usize| -> i64 {
        let Value::Array(fields) = &cmds[i] else {
            panic!()
        };
        let Value::Int(a) = fields[1] else { panic!() };
        a
    };
    assert_eq!(flags_of(0), vec!["write", "denyoom", "module"]);
    assert_eq!(flags_of(1), vec!["readonly", "module", "fast"]);
    // VDEL is not deny-oom: a deletion must land under memory pressure.
    assert_eq!(flags_of(2), vec!["write", "module"]);
    // VFLOOR is not `write` (its status must be readable on replicas).
    let vfloor_flags = flags_of(3);
    assert!(
        vfloor_flags.contains(&"module".to_string()),
        "{vfloor_flags:?}"
    );
    assert!(
        !vfloor_flags.contains(&"write".to_string()),
        "{vfloor_flags:?}"
    );
    assert_eq!(
        (arity_of(0), arity_of(1), arity_of(2), arity_of(3)),
        (-4, -2, -3, -1)
    );
}

/// A new connection authenticated as `user`, created by `admin` with all commands
/// but only the keys `key_pattern` allows.
fn client_as(
    server: &RedisServer,
    admin: &mut redis::Connection,
    user: &str,
    key_pattern: &str,
) -> redis::Connection {
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(user)
        .arg("on")
        .arg(">secret")
        .arg(key_pattern)
        .arg("+@all")
        .query(admin)
        .unwrap();
    let mut con = server.client().unwrap();
    let _: () = redis::cmd("AUTH")
        .arg(user)
        .arg("secret")
        .query(&mut con)
        .unwrap();
    con
}

#[test]
fn acl_key_patterns_apply() {
    let server = warm_server();
    let mut admin = server.client().unwrap();
    let mut con = client_as(&server, &mut admin, "relay", "~cache:*");
    assert_eq!(vset(&mut con, "cache:1", "1", "ok"), 1);
    let e = vset_err(&mut con, "other:1", "1", "no");
    assert!(e.starts_with("NOPERM"), "{e}");
    let e = err(redis::cmd("VGET").arg("other:1").query(&mut con));
    assert!(e.starts_with("NOPERM"), "{e}");
    assert_eq!(exists(&mut admin, "other:1"), 0);

    // Read-only key pattern: VGET allowed, VSET refused.
    let mut reader = client_as(&server, &mut admin, "reader", "%R~cache:*");
    assert_eq!(vget(&mut reader, "cache:1").as_deref(), Some("ok"));
    let e = vset_err(&mut reader, "cache:1", "2", "no");
    assert!(e.starts_with("NOPERM"), "{e}");
    assert_eq!(vget_int(&mut admin, "cache:1"), (Some("ok".into()), 1));
}

#[test]
fn oom_refuses_vset() {
    // maxmemory far below what the server already uses, no eviction: deny-oom.
    let server = RedisServer::start(
        RedisOptions::warm()
            .config("maxmemory", "1mb")
            .config("maxmemory-policy", "noeviction"),
    )
    .unwrap();
    let mut con = server.client().unwrap();
    let e = vset_err(&mut con, "k", "1", "v");
    assert!(e.starts_with("OOM"), "{e}");
    assert_eq!(vget(&mut con, "k"), None);
}

#[test]
fn oom_still_accepts_vdel() {
    // A deletion must reach Redis under memory pressure: refusing it would leave the
    // deleted row's value cached (and the relay's batch failing) until memory frees
    // up. A tombstone replacing a value is never larger than it; one for a missing
    // key is a few bytes.
    let server = RedisServer::start(RedisOptions::warm()).unwrap();
    let mut con = server.client().unwrap();
    assert_eq!(vset(&mut con, "k", "1", &"v".repeat(10_000)), 1);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1mb")
        .query(&mut con)
        .unwrap();
    let e = vset_err(&mut con, "k", "2", "v2");
    assert!(e.starts_with("OOM"), "{e}");
    assert_eq!(vdel(&mut con, "k", "3"), 1);
    assert_eq!(vdel(&mut con, "missing", "3"), 1);
    assert_eq!(vget(&mut con, "k"), None);
    // The tombstones hold: an older write is refused (not an OOM: a refusal).
    let stored: i64 = redis::cmd("VSET")
        .arg("missing")
        .arg("2")
        .arg("old")
        .query(&mut con)
        .unwrap_or(-1);
    assert_ne!(stored, 1, "an older write must not land over the tombstone");
}

#[test]
fn module_load_where_enabled() {
    // The harness enables MODULE LOAD (`enable-module-command yes`).
    let server = RedisServer::start(RedisOptions::new().without_module()).unwrap();
    let mut con = server.client().unwrap();
    let e = vset_err(&mut con, "k", "1", "v");
    assert!(e.contains("unknown command"), "{e}");
    let path = vset_tests::paths::redis_module().unwrap();
    let _: () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(path.to_str().unwrap())
        .arg("cold-start")
        .arg("no")
        .query(&mut con)
        .unwrap();
    assert_eq!(vset(&mut con, "k", "1", "v"), 1);
    assert_eq!(vget_int(&mut con, "k"), (Some("v".into()), 1));
    let e = err(redis::cmd("MODULE")
        .arg("LOAD")
        .arg(path.to_str().unwrap())
        .query(&mut con));
    assert!(e.contains("Error loading the extension"), "{e}");
}
