//! `VGET key` → the value, nil when missing or a tombstone.
//! `VGET key WITHVERSION` → `[value-or-nil, version]`, version 0 when unknown.

use redis_module::{Context, RedisError, RedisResult, RedisValue};

use super::args::Arg;

use super::error::CommandError;
use super::key::OpenKey;
use super::reply;
use crate::installs;

pub fn vget(ctx: &Context, args: &[Arg]) -> RedisResult {
    let (key, with_version) = match args {
        [_, key] => (key, false),
        [_, key, opt] if opt.as_slice().eq_ignore_ascii_case(b"WITHVERSION") => (key, true),
        [_, _, _] => return Err(CommandError::Syntax.into()),
        _ => return Err(RedisError::WrongArity),
    };
    let (payload, version) = match OpenKey::read(ctx, key) {
        None => (RedisValue::Null, 0),
        Some(k) => match k.value()? {
            None => (RedisValue::Null, 0),
            // Installed by RESTORE/RENAME/COPY/MOVE over a newer version: a miss.
            Some(v) if installs::hidden(key.as_slice(), v.version()) => (RedisValue::Null, 0),
            Some(v) => (
                v.payload()
                    .map_or(RedisValue::Null, |p| RedisValue::StringBuffer(p.to_vec())),
                v.version(),
            ),
        },
    };
    Ok(if with_version {
        RedisValue::Array(vec![payload, reply::version(version)])
    } else {
        payload
    })
}
