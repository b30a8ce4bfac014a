//! `VDEL key version [EX s | PX ms | EXAT s | PXAT ms]` → 1 tombstone written, 0 stale.
//! The tombstone keeps the version (so an older VSET cannot resurrect the row) and
//! expires after the given time or the module's `tombstone-ttl-ms`.

use redis_module::{Context, RedisError, RedisResult};

use super::args::Arg;

use super::error::CommandError;
use super::expiry::parse_expiry;
use super::write::{self, Payload, Write};
use crate::data::version::parse_version;

pub fn vdel(ctx: &Context, args: &[Arg]) -> RedisResult {
    let [_, key, version, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let version_arg = version.as_slice();
    let version = parse_version(version_arg).map_err(CommandError::from)?;
    let opts: Vec<&[u8]> = opts.iter().map(Arg::as_slice).collect();
    let expiry = parse_expiry("vdel", &opts)?;
    write::run(
        ctx,
        Write {
            command: "VDEL",
            key,
            version,
            version_arg,
            payload: Payload::Tombstone,
            expiry,
        },
    )
}
