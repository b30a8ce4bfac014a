//! `VDEL key version [EX s | PX ms | EXAT s | PXAT ms]` → 1 tombstone written, 0 stale.
//! The tombstone keeps the version (so an older VSET cannot resurrect the row) and
//! expires after the given time or the module's `tombstone-ttl-ms`.

use redis_module::{Context, RedisError, RedisResult};

use super::args::Arg;
use super::write::{self, Payload, Write};

pub fn vdel(ctx: &Context, args: &[Arg]) -> RedisResult {
    let [_, key, version, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let write = Write::parse(key, version, Payload::Tombstone, opts)?;
    write::run(ctx, write)
}
