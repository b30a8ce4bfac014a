//! Values Redis installs at a key without asking the module: `RESTORE ... REPLACE`,
//! `RENAME` and `COPY ... REPLACE` onto an existing key, `MOVE` into another
//! database. If the key held a vset value, Redis unlinked it first, which raised
//! the key's floor to that version; an installed value at or below the floor is
//! then older than something the key already held, and serving it would be stale.
//!
//! Such keys are remembered by name (the keyspace events `restore`, `rename_to`,
//! `copy_to`, `move_to`), and `VGET` answers a miss for them while their version is
//! at or below their floor. The next `VSET`/`VDEL` that stores at the key clears
//! the mark; one at or below the floor removes the value, as for any key. The set
//! only ever holds keys an operator moved around by hand, and it is checked with
//! one relaxed atomic load when empty. It is not persisted: a restart from an RDB
//! written while such a value sat there serves it again (see the README's limits).

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use redis_module::{raw, Context, RedisString, Status};

use crate::commands::args::Arg;
use crate::commands::key::OpenKey;
use crate::state;

static ANY: AtomicBool = AtomicBool::new(false);
static MARKED: Mutex<Option<HashSet<Vec<u8>>>> = Mutex::new(None);

/// Subscribes to the generic keyspace events that install values.
pub fn subscribe(ctx: &Context) -> Status {
    // SAFETY: a valid context at module load; the callback is a plain function.
    let status = unsafe {
        raw::RedisModule_SubscribeToKeyspaceEvents
            .map(|f| f(ctx.ctx, raw::REDISMODULE_NOTIFY_GENERIC, Some(on_event)))
    };
    match status {
        Some(s) if s == raw::REDISMODULE_OK as c_int => Status::Ok,
        _ => Status::Err,
    }
}

unsafe extern "C" fn on_event(
    ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    const OK: c_int = raw::REDISMODULE_OK as c_int;
    if event.is_null() || key.is_null() {
        return OK;
    }
    // SAFETY: Redis passes a NUL-terminated event name for the callback's duration.
    let event = unsafe { CStr::from_ptr(event) }.to_bytes();
    if !matches!(event, b"restore" | b"rename_to" | b"copy_to" | b"move_to") {
        return OK;
    }
    let Some(state) = state::get() else { return OK };
    let context = Context::new(ctx);
    // SAFETY: the key name is alive for the callback's duration.
    let name = unsafe { Arg::from_raw(key) };
    let Some(open) = OpenKey::read(&context, &name) else {
        return OK;
    };
    if let Ok(Some(value)) = open.value() {
        let bytes = RedisString::string_as_slice(key);
        if value.version() <= state.floors.floor_for(bytes) {
            let mut marked = MARKED.lock().unwrap_or_else(|e| e.into_inner());
            marked
                .get_or_insert_with(HashSet::new)
                .insert(bytes.to_vec());
            ANY.store(true, Ordering::Relaxed);
        }
    }
    OK
}

/// Whether `VGET` must not serve `key`'s value at `version`.
pub fn hidden(key: &[u8], version: u64) -> bool {
    if !ANY.load(Ordering::Relaxed) {
        return false;
    }
    let marked = MARKED.lock().unwrap_or_else(|e| e.into_inner());
    marked.as_ref().is_some_and(|m| m.contains(key))
        && state::get().is_some_and(|s| version <= s.floors.floor_for(key))
}

/// A write stored at `key`: whatever was installed there is gone.
pub fn stored(key: &[u8]) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    let mut marked = MARKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = marked.as_mut() {
        m.remove(key);
        if m.is_empty() {
            ANY.store(false, Ordering::Relaxed);
        }
    }
}
