//! Who sent the command. Writes that come over the replication link or are replayed
//! from the AOF were already decided by the master (or by this server before a
//! restart): they are applied as written, never refused as cold or below floor, so
//! a replica or a restarted server ends with exactly the master's state.

use redis_module::{raw, Context};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client (or a script/transaction run by one): decide.
    Client,
    /// The master's replication stream or the AOF being loaded: apply.
    Decided,
}

fn flags(ctx: &Context) -> u32 {
    // SAFETY: plain query on the command's context.
    unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.ctx)) as u32 }
}

impl Origin {
    pub fn of(ctx: &Context) -> Self {
        let decided = raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING;
        if flags(ctx) & decided != 0 {
            Origin::Decided
        } else {
            Origin::Client
        }
    }
}

/// A client talking to a read-only replica (only the master may change floors there).
pub fn is_read_only_replica_client(ctx: &Context) -> bool {
    let f = flags(ctx);
    let replica = raw::REDISMODULE_CTX_FLAGS_SLAVE | raw::REDISMODULE_CTX_FLAGS_READONLY;
    let decided = raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING;
    f & replica == replica && f & decided == 0
}
