//! RDB and AOF callbacks of the `vsetvalue` type: values as one sealed record each
//! (see [`crate::data::encoding`]), the floor table and cold flag as RDB aux data
//! saved before the keys.
//!
//! Loading never trusts the file: a record that fails its checksum or format check
//! makes the load fail (Redis logs our line and refuses the file) instead of
//! producing a value nobody wrote. The module sets `HANDLE_IO_ERRORS`, so a short
//! read is reported the same way instead of crashing Redis.

use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::{raw, RedisString};

use crate::data::encoding::{self, SavedFloors};
use crate::data::value::VersionedValue;
use crate::data_type::ENCODING_VERSION;
use crate::load_discard;
use crate::logging;
use crate::state;

pub(crate) unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: values of this type came from VersionedValue::into_raw.
    if let Some(v) = unsafe { VersionedValue::borrow_raw(value) } {
        raw::save_slice(rdb, &encoding::encode_value(v));
    }
}

/// The name of the key being loaded (None when Redis does not say, e.g. aux data).
fn key_name_bytes<'a>(io: *mut raw::RedisModuleIO) -> Option<&'a [u8]> {
    // SAFETY: Redis keeps the name alive for the duration of the load callback.
    let name = unsafe { raw::RedisModule_GetKeyNameFromIO.map(|f| f(io)) }?;
    (!name.is_null()).then(|| RedisString::string_as_slice(name))
}

fn key_name(io: *mut raw::RedisModuleIO) -> String {
    key_name_bytes(io).map_or_else(
        || "?".to_string(),
        |k| String::from_utf8_lossy(k).into_owned(),
    )
}

pub(crate) unsafe extern "C" fn rdb_load(
    rdb: *mut raw::RedisModuleIO,
    encver: c_int,
) -> *mut c_void {
    if encver > ENCODING_VERSION {
        logging::io_warning(
            rdb,
            &format!(
                "vset: cannot load key '{}': encoding version {encver} is newer than this module's {ENCODING_VERSION}",
                key_name(rdb)
            ),
        );
        return std::ptr::null_mut();
    }
    let buffer = match raw::load_string_buffer(rdb) {
        Ok(b) => b,
        Err(e) => {
            logging::io_warning(
                rdb,
                &format!(
                    "vset: cannot load key '{}': short read ({e})",
                    key_name(rdb)
                ),
            );
            return std::ptr::null_mut();
        }
    };
    match encoding::decode_value(buffer.as_ref()) {
        Ok(v) => {
            if let Some(state) = state::get() {
                state.saw_version(v.version());
            }
            let version = v.version();
            let raw_value = v.into_raw();
            if let Some(key) = key_name_bytes(rdb) {
                load_discard::loaded(raw_value, key, version);
            }
            raw_value
        }
        Err(e) => {
            logging::io_warning(
                rdb,
                &format!("vset: corrupt RDB value for key '{}': {e}", key_name(rdb)),
            );
            std::ptr::null_mut()
        }
    }
}

pub(crate) unsafe extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return;
    }
    let Some(state) = state::get() else { return };
    let saved = SavedFloors {
        cold: state.is_cold(),
        buckets: state.floors.buckets() as u32,
        floors: state.floors.nonzero(),
    };
    raw::save_slice(rdb, &encoding::encode_floors(&saved));
}

pub(crate) unsafe extern "C" fn aux_load(
    rdb: *mut raw::RedisModuleIO,
    encver: c_int,
    when: c_int,
) -> c_int {
    const OK: c_int = raw::REDISMODULE_OK as c_int;
    const ERR: c_int = raw::REDISMODULE_ERR as c_int;
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return OK;
    }
    if encver > ENCODING_VERSION {
        logging::io_warning(
            rdb,
            &format!("vset: cannot load floors: encoding version {encver} is newer than this module's {ENCODING_VERSION}"),
        );
        return ERR;
    }
    let buffer = match raw::load_string_buffer(rdb) {
        Ok(b) => b,
        Err(e) => {
            logging::io_warning(rdb, &format!("vset: cannot load floors: short read ({e})"));
            return ERR;
        }
    };
    let saved = match encoding::decode_floors(buffer.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            logging::io_warning(rdb, &format!("vset: corrupt RDB floors record: {e}"));
            return ERR;
        }
    };
    let Some(state) = state::get() else {
        return ERR;
    };
    // A load means "become the saved state" (restart, DEBUG RELOAD, replica full
    // sync): adopt its floors and cold flag rather than merging with ours.
    if !state.floors.adopt(saved.buckets, &saved.floors) {
        logging::io_warning(
            rdb,
            &format!(
                "vset: saved floors have {} buckets, the module has {}: every bucket now holds the highest saved floor",
                saved.buckets,
                state.floors.buckets()
            ),
        );
    }
    state.set_cold(saved.cold);
    state.reset_max_seen(state.floors.highest());
    OK
}

/// Set in the AOF-rewrite child once the floor table has been written into the new
/// AOF. The child is a fork, so this never changes in the serving process.
static FLOORS_EMITTED: AtomicBool = AtomicBool::new(false);

pub(crate) unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: values of this type came from VersionedValue::into_raw.
    let Some(v) = (unsafe { VersionedValue::borrow_raw(value) }) else {
        return;
    };
    let Some(emit) = (unsafe { raw::RedisModule_EmitAOF }) else {
        return;
    };
    // Only an AOF without RDB preamble gets here (`aof-use-rdb-preamble no`); it has
    // no aux data, so the floors ride along with the first key as one
    // `VFLOOR RESTORE <record>` command. An AOF without vset keys carries no floors and
    // a module with cold start on then starts cold, which is safe.
    if !FLOORS_EMITTED.swap(true, Ordering::Relaxed) {
        if let Some(state) = state::get() {
            let record = encoding::encode_floors(&SavedFloors {
                cold: state.is_cold(),
                buckets: state.floors.buckets() as u32,
                floors: state.floors.nonzero(),
            });
            // SAFETY: "cb" = C string + (pointer, length) buffer.
            unsafe {
                emit(
                    aof,
                    c"VFLOOR".as_ptr(),
                    c"cb".as_ptr(),
                    c"RESTORE".as_ptr(),
                    record.as_ptr() as *const c_char,
                    record.len(),
                )
            };
        }
    }
    let version = v.version().to_string();
    // Commands replayed from the AOF are applied as written (never refused as cold or
    // below floor); Redis appends the key's PEXPIREAT itself.
    match v.payload() {
        // SAFETY: "sbb" = RedisModuleString + two (pointer, length) buffers.
        Some(payload) => unsafe {
            emit(
                aof,
                c"VSET".as_ptr(),
                c"sbb".as_ptr(),
                key,
                version.as_ptr() as *const c_char,
                version.len(),
                payload.as_ptr() as *const c_char,
                payload.len(),
            )
        },
        // SAFETY: "sb" = RedisModuleString + (pointer, length) buffer.
        None => unsafe {
            emit(
                aof,
                c"VDEL".as_ptr(),
                c"sb".as_ptr(),
                key,
                version.as_ptr() as *const c_char,
                version.len(),
            )
        },
    }
}
