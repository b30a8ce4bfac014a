//! Values Redis loads and then drops before they ever enter the keyspace, which
//! no `unlink` callback reports:
//! - a key whose TTL passed while Redis was down (or while a snapshot travelled):
//!   `rdbLoad` on a master frees it right after our `rdb_load` made it;
//! - `RESTORE key <ttl>` with a TTL that has already passed: loaded, then freed.
//!
//! Either way a version is forgotten (invariant 4) and its floor must rise. The
//! type's `free` callback gets only the value, not the key, so `rdb_load`
//! remembers the key's bucket and version beside the value's address; if `free`
//! sees that very value next, Redis discarded it unseen. A value that was kept is
//! simply not matched (the next load replaces the record); if it is freed much
//! later while still recorded, its key was already unlinked (raising the same
//! floor) or overwritten by a newer version, so raising the floor again is safe.
//!
//! `free` may run on the lazy-free thread: the record is guarded by a mutex, and
//! the common case (any other value) costs one relaxed atomic load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::state;

/// Address of the last value `rdb_load` made (0: none).
static LAST_LOADED: AtomicUsize = AtomicUsize::new(0);
/// Its bucket and version.
static RECORD: Mutex<(usize, u64)> = Mutex::new((0, 0));

/// Called by `rdb_load` for every value it returns.
pub fn loaded(value: *const std::ffi::c_void, key: &[u8], version: u64) {
    let Some(state) = state::get() else { return };
    let bucket = state.floors.bucket(key);
    let mut record = RECORD.lock().unwrap_or_else(|e| e.into_inner());
    *record = (bucket, version);
    LAST_LOADED.store(value as usize, Ordering::Release);
}

/// Called by the type's `free` before the value is dropped.
pub fn freeing(value: *const std::ffi::c_void) {
    if value.is_null() || LAST_LOADED.load(Ordering::Acquire) != value as usize {
        return;
    }
    let record = RECORD.lock().unwrap_or_else(|e| e.into_inner());
    if LAST_LOADED
        .compare_exchange(value as usize, 0, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        if let Some(state) = state::get() {
            state.forget_in(record.0, record.1);
        }
    }
}

/// The module frees `value` itself because a newer version replaced it (not a
/// forget): drop the record if it is this value, so that a later block at the same
/// address is not mistaken for it.
pub fn replaced(value: *const std::ffi::c_void) {
    if !value.is_null() && LAST_LOADED.load(Ordering::Acquire) == value as usize {
        let _record = RECORD.lock().unwrap_or_else(|e| e.into_inner());
        let _ =
            LAST_LOADED.compare_exchange(value as usize, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}
