//! Server events that forget many keys at once.
//!
//! FLUSHDB/FLUSHALL (sync or async) drop whole databases without calling the type's
//! `unlink` callback, and the lazy-free thread may free the values later, so the
//! module cannot raise per-key floors. It raises every bucket to the highest version
//! it has ever stored or loaded instead: conservative (older writes to other keys
//! become misses until newer versions arrive) and always safe.
//!
//! Internal flushes before a load (DEBUG RELOAD, a replica's full sync) fire the same
//! event; the floors raised here are then replaced by the loaded ones (see
//! [`crate::persistence::aux_load`]), so a reload keeps exactly the saved floors.

use redis_module::server_events::FlushSubevent;
use redis_module::Context;
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
