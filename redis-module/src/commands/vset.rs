//! `VSET key version value [EX s | PX ms | EXAT s | PXAT ms]` → 1 stored, 0 not stored.

use redis_module::{Context, RedisError, RedisResult};

use super::args::Arg;

use super::error::CommandError;
use super::expiry::parse_expiry;
use super::write::{self, Payload, Write};
use crate::data::version::parse_version;

pub fn vset(ctx: &Context, args: &[Arg]) -> RedisResult {
    let [_, key, version, value, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let version_arg = version.as_slice();
    let version = parse_version(version_arg).map_err(CommandError::from)?;
    let opts: Vec<&[u8]> = opts.iter().map(Arg::as_slice).collect();
    let expiry = parse_expiry("vset", &opts)?;
    write::run(
        ctx,
        Write {
            command: "VSET",
            key,
            version,
            version_arg,
            payload: Payload::Value(value.as_slice()),
            expiry,
        },
    )
}
