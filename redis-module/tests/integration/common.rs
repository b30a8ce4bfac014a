//! Small helpers shared by the tests: typed wrappers around the vset commands and
//! INFO, so assertions read like the contract.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use vset_tests::redis::{RedisOptions, RedisServer};

/// A server with the module loaded and cold start off.
pub fn warm_server() -> RedisServer {
    RedisServer::start(RedisOptions::warm()).expect("start redis-server with vset")
}

pub fn vset(con: &mut Connection, key: &str, version: &str, value: &str) -> i64 {
    vset_with(con, key, version, value, &[])
}

/// `VSET key version value` followed by `options` (e.g. `["EX", "100"]`).
pub fn vset_with(
    con: &mut Connection,
    key: &str,
    version: &str,
    value: &str,
    options: &[&str],
) -> i64 {
    redis::cmd("VSET")
        .arg(key)
        .arg(version)
        .arg(value)
        .arg(options)
        .query(con)
        .unwrap_or_else(|e| panic!("VSET {key} {version}: {e}"))
}

pub fn vdel(con: &mut Connection, key: &str, version: &str) -> i64 {
    vdel_with(con, key, version, &[])
}

/// `VDEL key version` followed by `options` (e.g. `["PX", "5000"]`).
pub fn vdel_with(con: &mut Connection, key: &str, version: &str, options: &[&str]) -> i64 {
    redis::cmd("VDEL")
        .arg(key)
        .arg(version)
        .arg(options)
        .query(con)
        .unwrap_or_else(|e| panic!("VDEL {key} {version}: {e}"))
}

/// `TTL key`: seconds left, -1 without expiry, -2 when the key does not exist.
pub fn ttl(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query(con).expect("TTL")
}

/// `PTTL key`: milliseconds left, -1 without expiry, -2 when the key does not exist.
pub fn pttl(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(con).expect("PTTL")
}

pub fn vget(con: &mut Connection, key: &str) -> Option<String> {
    redis::cmd("VGET").arg(key).query(con).expect("VGET")
}

/// `VGET key WITHVERSION` as (value, version as the raw reply).
pub fn vget_v(con: &mut Connection, key: &str) -> (Option<String>, Value) {
    let reply: Value = redis::cmd("VGET")
        .arg(key)
        .arg("WITHVERSION")
        .query(con)
        .expect("VGET WITHVERSION");
    match reply {
        Value::Array(items) if items.len() == 2 => {
            let value = match &items[0] {
                Value::Nil => None,
                Value::BulkString(b) => Some(String::from_utf8(b.clone()).expect("utf8")),
                other => panic!("unexpected value element {other:?}"),
            };
            (value, items[1].clone())
        }
        other => panic!("VGET WITHVERSION must be a 2-element array, got {other:?}"),
    }
}

/// `(value, version)` where the version must be a RESP integer.
pub fn vget_int(con: &mut Connection, key: &str) -> (Option<String>, i64) {
    match vget_v(con, key) {
        (v, Value::Int(n)) => (v, n),
        (_, other) => panic!("version must be an integer, got {other:?}"),
    }
}

/// `VFLOOR` as (cold, highest floor as raw reply, buckets), checking the exact shape.
pub fn vfloor(con: &mut Connection) -> (i64, Value, i64) {
    let reply: Value = redis::cmd("VFLOOR").query(con).expect("VFLOOR");
    let Value::Array(items) = reply else {
        panic!("VFLOOR must be an array, got {reply:?}")
    };
    assert_eq!(items.len(), 6, "VFLOOR reply {items:?}");
    assert_eq!(items[0], Value::BulkString(b"cold".to_vec()));
    assert_eq!(items[2], Value::BulkString(b"floor".to_vec()));
    assert_eq!(items[4], Value::BulkString(b"buckets".to_vec()));
    let Value::Int(cold) = items[1] else {
        panic!("cold must be an integer: {items:?}")
    };
    let Value::Int(buckets) = items[5] else {
        panic!("buckets must be an integer: {items:?}")
    };
    (cold, items[3].clone(), buckets)
}

pub fn raise_floor(con: &mut Connection, version: &str) {
    let ok: String = redis::cmd("VFLOOR")
        .arg(version)
        .query(con)
        .expect("VFLOOR v");
    assert_eq!(ok, "OK");
}

/// The `vset_*` fields of `INFO vset`, without the prefix.
pub fn info_vset(con: &mut Connection) -> HashMap<String, String> {
    let info: String = redis::cmd("INFO")
        .arg("vset")
        .query(con)
        .expect("INFO vset");
    info.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .filter_map(|(k, v)| Some((k.strip_prefix("vset_")?.to_string(), v.to_string())))
        .collect()
}

pub fn counter(con: &mut Connection, name: &str) -> u64 {
    info_vset(con)
        .get(name)
        .unwrap_or_else(|| panic!("INFO vset has no vset_{name}"))
        .parse()
        .expect("numeric INFO field")
}

pub fn exists(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("EXISTS").arg(key).query(con).expect("EXISTS")
}

/// The error reply of a command that must fail, as the server sent it
/// (`CODE detail`, e.g. `WRONGTYPE Operation against...`).
pub fn err(result: redis::RedisResult<Value>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_string(),
            _ => e.to_string(),
        },
    }
}

/// The error reply of a `VSET key version value` that must fail.
pub fn vset_err(con: &mut Connection, key: &str, version: &str, value: &str) -> String {
    err(redis::cmd("VSET")
        .arg(key)
        .arg(version)
        .arg(value)
        .query(con))
}

/// The documented bucket function: FNV-1a 64 of the key bytes, mod bucket count.
pub fn bucket(key: &str, buckets: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % buckets
}

/// A key named `prefix<n>` whose bucket differs from `other`'s.
pub fn key_in_other_bucket(prefix: &str, other: &str, buckets: u64) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| bucket(k, buckets) != bucket(other, buckets))
        .expect("some key lands elsewhere")
}

/// Polls until `key` no longer exists (expiry), at most 10 s.
pub fn wait_gone(con: &mut Connection, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while exists(con, key) == 1 {
        assert!(Instant::now() < deadline, "{key} did not expire");
        std::thread::sleep(Duration::from_millis(20));
    }
}
