//! # vset-redis — the Redis module `vset`
//!
//! Order-safe cache writes for a Redis cache kept behind PostgreSQL (see
//! `docs/design.md`, invariants 3 and 4). Loaded with
//! `redis-server --loadmodule libvset_redis.so [buckets N] [tombstone-ttl-ms N] [cold-start yes|no]`,
//! it registers the data type `vsetvalue` (value and version stored together, in one
//! module value) and the commands `VSET`, `VGET`, `VDEL` and `VFLOOR`. The relay
//! (`relay/`) and application read-miss fills write through `VSET`; nothing else in
//! the workspace links this crate.
//!
//! Layout, as RedisJSON splits it:
//!
//! | module | job |
//! | --- | --- |
//! | [`commands`] | argument parsing, replies, replication and keyspace side effects |
//! | [`data`] | versions, the stored value, the decision rule, floors, the persisted format |
//! | [`data_type`] | the `vsetvalue` type and its lifecycle callbacks (`unlink` raises floors) |
//! | [`persistence`] | RDB save/load, floors as RDB aux data, AOF rewrite |
//! | [`events`] | FLUSHDB/FLUSHALL and SWAPDB raise every floor |
//! | [`installs`] | values RESTORE/RENAME/COPY/MOVE install over a newer version are not served |
//! | [`load_discard`] | keys Redis loads and drops unseen (expired at load, RESTORE with a past TTL) raise their floor |
//! | [`config`] | module arguments |
//! | [`state`] | the module-wide floor table, cold flag and counters |
//! | [`info`] | `INFO vset` |

pub mod commands;
pub mod config;
pub mod data;
pub mod data_type;
pub mod events;
pub mod info;
pub mod installs;
pub mod load_discard;
pub mod logging;
pub mod persistence;
pub mod state;

use redis_module::{raw, redis_module, Context, InfoContext, RedisResult, RedisString, Status};

use crate::config::ModuleConfig;
use crate::data_type::VSET_TYPE;
use crate::info::add_info;

/// Module load: validate the arguments (refusing to load on any mistake), then set
/// up the floor table.
fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let raw_args: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
    let config = match ModuleConfig::parse(&raw_args) {
        Ok(c) => c,
        Err(e) => {
            logging::warning(
                ctx.ctx,
                &format!(
                    "vset: refusing to load: {e}. Usage: --loadmodule libvset_redis.so \
                     [buckets 1..16777216] [tombstone-ttl-ms N>0] [cold-start yes|no]"
                ),
            );
            return Status::Err;
        }
    };
    // Report short reads from RDB/AOF to our callbacks instead of panicking Redis.
    // Signal key modifications ourselves (commands/write.rs), only when a write
    // changed something: a refused VSET must not abort a WATCH.
    ctx.set_module_options(
        raw::ModuleOptions::HANDLE_IO_ERRORS | raw::ModuleOptions::NO_IMPLICIT_SIGNAL_MODIFIED,
    );
    let state = state::install(config);
    if commands::register::register_all(ctx) == Status::Err {
        return Status::Err;
    }
    if events::subscribe(ctx) == Status::Err || installs::subscribe(ctx) == Status::Err {
        logging::warning(
            ctx.ctx,
            "vset: refusing to load: cannot subscribe to SWAPDB or keyspace events",
        );
        return Status::Err;
    }
    logging::notice(
        ctx.ctx,
        &format!(
            "vset: loaded with buckets {}, tombstone-ttl-ms {}, cold-start {}{}",
            state.config.buckets,
            state.config.tombstone_ttl_ms,
            if state.config.cold_start { "yes" } else { "no" },
            if state.is_cold() {
                " — COLD: VSET/VDEL answer 0 until saved state is loaded or VFLOOR <version> is called"
            } else {
                ""
            }
        ),
    );
    Status::Ok
}

/// The module definition; unit tests use the system allocator because Redis'
/// allocator does not exist outside a server.
macro_rules! vset_module {
    ($alloc:ty, $alloc_init:expr) => {
        redis_module! {
            name: "vset",
            version: 1,
            allocator: ($alloc, $alloc_init),
            data_types: [VSET_TYPE],
            init: init,
            info: add_info,
            commands: [],
        }
    };
}

#[cfg(not(test))]
vset_module!(
    redis_module::alloc::RedisAlloc,
    redis_module::alloc::RedisAlloc
);
#[cfg(test)]
vset_module!(std::alloc::System, std::alloc::System);
