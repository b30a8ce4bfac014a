//! `VSET key version value [EX s | PX ms | EXAT s | PXAT ms]` → 1 stored, 0 not stored.

use redis_module::{Context, RedisError, RedisResult};

use super::args::Arg;
use super::write::{self, Payload, Write};

pub fn vset(ctx: &Context, args: &[Arg]) -> RedisResult {
    let [_, key, version, value, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let write = Write::parse(key, version, Payload::Value(value.as_slice()), opts)?;
    write::run(ctx, write)
}
