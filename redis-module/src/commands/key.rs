//! A key opened through the raw module API, closed on drop. The safe wrapper in
//! redismodule-rs has no absolute-expire call and reports a wrong type as a generic
//! error; vset needs both (WRONGTYPE is part of the contract).

use std::os::raw::{c_int, c_void};

use redis_module::{raw, Context, RedisError};

use super::args::Arg;

use super::error::CommandError;
use crate::data::value::{ValueRef, VersionedValue};
use crate::data_type;

pub struct OpenKey {
    key: *mut raw::RedisModuleKey,
}

impl OpenKey {
    /// Opens `name` for reading; `None` when the key does not exist.
    pub fn read(ctx: &Context, name: &Arg) -> Option<Self> {
        Self::open(ctx, name, raw::REDISMODULE_READ)
    }

    /// Opens `name` for writing (the key may be empty).
    pub fn write(ctx: &Context, name: &Arg) -> Result<Self, CommandError> {
        Self::open(ctx, name, raw::REDISMODULE_READ | raw::REDISMODULE_WRITE)
            .ok_or(CommandError::Storage("could not open the key"))
    }

    fn open(ctx: &Context, name: &Arg, mode: u32) -> Option<Self> {
        // SAFETY: a valid context and key name for the duration of the command.
        let key = unsafe { raw::RedisModule_OpenKey?(ctx.ctx, name.raw(), mode as c_int) };
        (!key.is_null()).then_some(Self { key })
    }

    /// The vset value, `None` for an empty key, WRONGTYPE for any other type.
    pub fn value(&self) -> Result<Option<ValueRef<'_>>, RedisError> {
        // SAFETY: the raw value is a block of ours, alive while the key is open and
        // not written through this handle while the view is borrowed.
        Ok(unsafe { VersionedValue::borrow_raw(self.raw_value()?) })
    }

    /// The raw module value: null for an empty key, WRONGTYPE for any other type.
    fn raw_value(&self) -> Result<*mut c_void, RedisError> {
        // SAFETY: `self.key` is open until drop.
        unsafe {
            let kind = raw::RedisModule_KeyType.map_or(0, |f| f(self.key));
            if kind == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
                return Ok(std::ptr::null_mut());
            }
            let ours = kind == raw::REDISMODULE_KEYTYPE_MODULE as c_int
                && raw::RedisModule_ModuleTypeGetType.map(|f| f(self.key))
                    == Some(data_type::raw_type());
            if !ours {
                return Err(RedisError::WrongType);
            }
            Ok(raw::RedisModule_ModuleTypeGetValue.map_or(std::ptr::null_mut(), |f| f(self.key)))
        }
    }

    /// Stores `version` and `payload` (`None`: a tombstone) in the key: in place when
    /// it holds a vset value whose block fits, else as a new block. `existing` is what
    /// [`OpenKey::value`] returned for this key (passed in, not looked up again: this
    /// is every write's path).
    pub fn store(
        &self,
        existing: Option<ValueRef<'_>>,
        version: u64,
        payload: Option<&[u8]>,
    ) -> Result<(), CommandError> {
        let old = existing.map_or(std::ptr::null_mut(), |v| v.as_raw());
        // SAFETY: `old` is our block, held by Redis, and we are on the main thread.
        if !old.is_null() && unsafe { VersionedValue::overwrite_raw(old, version, payload) } {
            return Ok(());
        }
        let new = VersionedValue::new(version, payload)?.into_raw();
        // SAFETY: Redis takes ownership of `new` on success; we free it otherwise.
        // Replacing (rather than setting) keeps the key and its expiry and does not
        // call `unlink`: the key is not forgotten, it moves to a newer version.
        let ok = unsafe {
            if old.is_null() {
                raw::RedisModule_ModuleTypeSetValue.map(|f| f(self.key, data_type::raw_type(), new))
            } else {
                let mut replaced: *mut c_void = std::ptr::null_mut();
                let status = raw::RedisModule_ModuleTypeReplaceValue
                    .map(|f| f(self.key, data_type::raw_type(), new, &mut replaced));
                if status == Some(raw::REDISMODULE_OK as c_int) {
                    // Replaced by a newer version, not forgotten: no floor, and no
                    // record left pointing at a freed block.
                    crate::load_discard::replaced(replaced);
                    drop(VersionedValue::from_raw(replaced));
                }
                status
            }
        } == Some(raw::REDISMODULE_OK as c_int);
        if !ok {
            // SAFETY: not taken by Redis.
            drop(unsafe { VersionedValue::from_raw(new) });
            return Err(CommandError::Storage("could not set the value"));
        }
        Ok(())
    }

    /// Removes the key (its `unlink` callback raises the floor).
    pub fn delete(&self) {
        // SAFETY: `self.key` is open for writing.
        unsafe {
            if let Some(f) = raw::RedisModule_DeleteKey {
                f(self.key);
            }
        }
    }

    /// Expires the key at `at_ms` (unix ms), or removes any expiry with `None`.
    pub fn set_expire_at(&self, at_ms: Option<i64>) -> Result<(), CommandError> {
        // SAFETY: `self.key` is open for writing and holds a value.
        let status = unsafe {
            match at_ms {
                // Most writes have no expiry: skip Redis' removeExpire (an extra
                // keyspace lookup) when there is none to remove.
                None if raw::RedisModule_GetExpire.map(|f| f(self.key))
                    == Some(raw::REDISMODULE_NO_EXPIRE as i64) =>
                {
                    Some(raw::REDISMODULE_OK as c_int)
                }
                None => raw::RedisModule_SetExpire
                    .map(|f| f(self.key, raw::REDISMODULE_NO_EXPIRE as i64)),
                Some(at) => match raw::RedisModule_SetAbsExpire {
                    Some(f) => Some(f(self.key, at)),
                    // Redis < 6.2.2 has no absolute expiry: convert at the last moment.
                    None => raw::RedisModule_SetExpire.map(|f| f(self.key, (at - now_ms()).max(1))),
                },
            }
        };
        if status == Some(raw::REDISMODULE_OK as c_int) {
            Ok(())
        } else {
            Err(CommandError::Storage("could not set the expiry"))
        }
    }
}

impl Drop for OpenKey {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed exactly once.
        unsafe {
            if let Some(f) = raw::RedisModule_CloseKey {
                f(self.key);
            }
        }
    }
}

/// Redis' clock in unix milliseconds.
pub fn now_ms() -> i64 {
    // SAFETY: no arguments, no side effects.
    unsafe { raw::RedisModule_Milliseconds.map_or(0, |f| f()) }
}
