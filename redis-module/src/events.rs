//! Server events that forget many keys at once.
//!
//! FLUSHDB/FLUSHALL (sync or async) drop whole databases without calling the type's
//! `unlink` callback, and the lazy-free thread may free the values later, so the
//! module cannot raise per-key floors. It raises every bucket to the highest version
//! it has ever stored or loaded instead: conservative (older writes to other keys
//! become misses until newer versions arrive) and always safe.
//!
//! SWAPDB is the same to a client of either database: every key it held is gone
//! (moved to the other one) without an `unlink`, so it raises every floor too.
//!
//! Internal flushes before a load (DEBUG RELOAD, a replica's full sync) fire the same
//! event; the floors raised here are then replaced by the loaded ones (see
//! [`crate::persistence::aux_load`]), so a reload keeps exactly the saved floors.

use std::os::raw::c_void;

use redis_module::server_events::FlushSubevent;
use redis_module::{raw, Context, Status};
use redis_module_macros::flush_event_handler;

use crate::state;

#[flush_event_handler]
fn on_flush(_ctx: &Context, subevent: FlushSubevent) {
    if subevent != FlushSubevent::Started {
        return;
    }
    if let Some(state) = state::get() {
        state.raise_all(state.max_seen());
    }
}

/// Subscribes to the events the crate has no handler macro for (SWAPDB).
pub fn subscribe(ctx: &Context) -> Status {
    raw::subscribe_to_server_event(
        ctx.ctx,
        raw::RedisModuleEvent {
            id: raw::REDISMODULE_EVENT_SWAPDB,
            dataver: 1,
        },
        Some(on_swapdb),
    )
}

extern "C" fn on_swapdb(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    if let Some(state) = state::get() {
        state.raise_all(state.max_seen());
    }
}
