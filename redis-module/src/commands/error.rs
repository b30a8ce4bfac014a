//! Errors a command answers with. redismodule-rs turns any `std::error::Error` into
//! an `ERR <message>` reply (its blanket `From`), so messages here carry no prefix;
//! replies with another code (READONLY) are built with [`read_only_replica`].

use redis_module::RedisError;
use thiserror::Error;

use crate::data::encoding::DecodeError;
use crate::data::value::TooLarge;
use crate::data::version::VersionError;

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("version must be an unsigned 64-bit integer (0..18446744073709551615): {0}")]
    BadVersion(#[from] VersionError),
    #[error("syntax error")]
    Syntax,
    #[error("invalid expire time in '{0}' command")]
    BadExpire(&'static str),
    #[error("VFLOOR RESTORE: {0}")]
    BadRestore(DecodeError),
    #[error("VFLOOR RESET needs an empty Redis (every database): FLUSHALL first. It forgets every floor and goes cold, so it is safe only with no value or tombstone left")]
    ResetNotEmpty,
    #[error("vset: module state is not initialised")]
    NoState,
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error("vset: could not write key: {0}")]
    Storage(&'static str),
}

/// `READONLY` for floor changes sent by a client to a read-only replica.
pub fn read_only_replica() -> RedisError {
    RedisError::Str("READONLY You can't raise floors on a read only replica.")
}
