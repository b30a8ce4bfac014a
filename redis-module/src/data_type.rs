//! The Redis data type `vsetvalue` (type names are exactly 9 characters) and its
//! lifecycle callbacks. The persistence callbacks live in [`crate::persistence`].
//!
//! Forgetting a version raises a floor (docs/design.md, invariant 4). The `unlink` callback
//! is where that happens for single keys: Redis calls it whenever a key leaves the
//! keyspace — DEL, UNLINK, expiry (values and tombstones), eviction, RENAME/MOVE of
//! the source, overwrite by another command — on the main thread, before the value
//! is freed (possibly later, by the lazy-free thread). Whole-database flushes and
//! SWAPDB do not call it; [`crate::events`] handles those, and
//! [`crate::load_discard`] the values Redis loads and drops unseen.

use std::os::raw::c_void;

use redis_module::native_types::RedisType;
use redis_module::{raw, RedisString};

use crate::data::value::VersionedValue;
use crate::load_discard;
use crate::persistence;
use crate::state;

/// RDB encoding version of the type (Redis' per-type `encver`); the payload has its
/// own format byte as well, see [`crate::data::encoding`].
pub const ENCODING_VERSION: i32 = 1;

pub static VSET_TYPE: RedisType = RedisType::new(
    "vsetvalue",
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(persistence::rdb_load),
        rdb_save: Some(persistence::rdb_save),
        aof_rewrite: Some(persistence::aof_rewrite),
        free: Some(free),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        aux_load: Some(persistence::aux_load),
        aux_save: Some(persistence::aux_save),
        // Floors before keys, so a load adopts the floor table first.
        aux_save_triggers: raw::REDISMODULE_AUX_BEFORE_RDB as i32,
        free_effort: None,
        unlink: Some(unlink),
        copy: Some(copy),
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    },
);

/// The raw type pointer registered with Redis (null before the module loaded).
pub fn raw_type() -> *mut raw::RedisModuleType {
    *VSET_TYPE.raw_type.borrow()
}

unsafe extern "C" fn free(value: *mut c_void) {
    load_discard::freeing(value);
    if !value.is_null() {
        // SAFETY: every value of this type came from VersionedValue::into_raw.
        drop(unsafe { VersionedValue::from_raw(value) });
    }
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    // SAFETY: see `free`.
    unsafe { VersionedValue::borrow_raw(value) }.map_or(0, |v| v.memory_usage())
}

unsafe extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    // SAFETY: see `free`.
    match unsafe { VersionedValue::borrow_raw(value) } {
        Some(v) => v.to_owned().into_raw(),
        None => std::ptr::null_mut(),
    }
}

/// `DEBUG DIGEST` / `DIGEST-VALUE`: a kind tag (`v` value, `t` tombstone), the
/// version's decimal digits and the payload, as one sequence, so a master and its
/// replica digest alike exactly when they hold the same versions and payloads.
unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    // SAFETY: see `free`.
    let Some(v) = (unsafe { VersionedValue::borrow_raw(value) }) else {
        return;
    };
    // SAFETY: Redis passes a live digest for the duration of the callback.
    unsafe {
        let (Some(add), Some(end)) = (
            raw::RedisModule_DigestAddStringBuffer,
            raw::RedisModule_DigestEndSequence,
        ) else {
            return;
        };
        let version = v.version().to_string();
        let tag: &[u8] = if v.payload().is_some() { b"v" } else { b"t" };
        add(md, tag.as_ptr().cast(), tag.len());
        add(md, version.as_ptr().cast(), version.len());
        if let Some(p) = v.payload() {
            add(md, p.as_ptr().cast(), p.len());
        }
        end(md);
    }
}

unsafe extern "C" fn unlink(key: *mut raw::RedisModuleString, value: *const c_void) {
    // SAFETY: see `free`.
    let Some(value) = (unsafe { VersionedValue::borrow_raw(value) }) else {
        return;
    };
    if key.is_null() {
        return;
    }
    if let Some(state) = state::get() {
        state.forget(RedisString::string_as_slice(key), value.version());
    }
}
