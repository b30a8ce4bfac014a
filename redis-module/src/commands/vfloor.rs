//! `VFLOOR` → `["cold", 0|1, "floor", <highest floor>, "buckets", <bucket count>]`.
//! `VFLOOR version` → `+OK`: every bucket's floor rises to at least `version`, and the
//! module leaves cold state. Replicated, so replicas and the AOF follow.
//! `VFLOOR RESTORE <record>` (written by AOF rewrite without RDB preamble): raises
//! floors to a saved table; raise-only, so it can never make a stale write possible.
//! `VFLOOR RESET`: the operator's way back when floors are wrong for good (a floor
//! raised by hand to the maximum, a PostgreSQL restored to an earlier point whose
//! versions go back): on an empty Redis only (after `FLUSHALL`), every floor and the
//! highest version seen go back to 0 and the module goes cold, as at first start;
//! the relay's next handshake (`VFLOOR <current version>`) warms it again. With no
//! value or tombstone left there is nothing a low floor could let a stale write
//! overwrite. Replicated.

use redis_module::{Context, RedisResult, RedisValue};

use super::args::Arg;

use super::error::{read_only_replica, CommandError};
use super::origin::is_read_only_replica_client;
use super::reply;
use crate::data::encoding::decode_floors;
use crate::data::version::parse_version;
use crate::state;

pub fn vfloor(ctx: &Context, args: &[Arg]) -> RedisResult {
    let state = state::get().ok_or(CommandError::NoState)?;
    match args {
        [_] => Ok(RedisValue::Array(vec![
            RedisValue::BulkString("cold".into()),
            RedisValue::Integer(i64::from(state.is_cold())),
            RedisValue::BulkString("floor".into()),
            reply::version(state.floors.highest()),
            RedisValue::BulkString("buckets".into()),
            RedisValue::Integer(state.floors.buckets() as i64),
        ])),
        [_, sub, record] if sub.as_slice().eq_ignore_ascii_case(b"RESTORE") => {
            if is_read_only_replica_client(ctx) {
                return Err(read_only_replica());
            }
            let saved = decode_floors(record.as_slice()).map_err(CommandError::BadRestore)?;
            let risen = state.floors.raise_buckets(saved.buckets, &saved.floors);
            state
                .counters
                .floors_raised
                .fetch_add(risen, std::sync::atomic::Ordering::Relaxed);
            state.saw_version(state.floors.highest());
            if !saved.cold {
                state.set_cold(false);
            }
            ctx.replicate_verbatim();
            Ok(RedisValue::SimpleStringStatic("OK"))
        }
        [_, sub] if sub.as_slice().eq_ignore_ascii_case(b"RESET") => {
            if is_read_only_replica_client(ctx) {
                return Err(read_only_replica());
            }
            if !keyspace_is_empty(ctx) {
                return Err(CommandError::ResetNotEmpty.into());
            }
            state.reset_cold();
            ctx.replicate_verbatim();
            Ok(RedisValue::SimpleStringStatic("OK"))
        }
        [_, version] => {
            let version = parse_version(version.as_slice()).map_err(CommandError::from)?;
            if is_read_only_replica_client(ctx) {
                return Err(read_only_replica());
            }
            state.raise_all(version);
            state.set_cold(false);
            ctx.replicate_verbatim();
            Ok(RedisValue::SimpleStringStatic("OK"))
        }
        _ => Err(CommandError::Syntax.into()),
    }
}

/// True when no database holds a key (`INFO keyspace` lists only non-empty ones).
fn keyspace_is_empty(ctx: &Context) -> bool {
    let text = match ctx.call("INFO", &["keyspace"]) {
        Ok(RedisValue::SimpleString(s)) | Ok(RedisValue::BulkString(s)) => s,
        Ok(RedisValue::StringBuffer(b)) => String::from_utf8_lossy(&b).into_owned(),
        // Cannot tell: refuse (the safe answer).
        _ => return false,
    };
    !text.lines().any(|l| l.starts_with("db"))
}
