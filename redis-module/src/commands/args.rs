//! Command arguments borrowed straight from Redis' `argv`: no copy, no refcount
//! traffic, no allocation (redismodule-rs' `decode_args` retains every argument
//! into a fresh `Vec`, measurable on a command as small as VSET).

use std::marker::PhantomData;

use redis_module::{raw, RedisString};

/// One argument, valid for the duration of the command call.
#[repr(transparent)]
pub struct Arg<'a> {
    ptr: *mut raw::RedisModuleString,
    _call: PhantomData<&'a raw::RedisModuleString>,
}

impl<'a> Arg<'a> {
    /// The argument's bytes.
    pub fn as_slice(&self) -> &'a [u8] {
        RedisString::string_as_slice(self.ptr)
    }

    /// An argument from a Redis string that is not in `argv` (a key name a
    /// keyspace-event callback receives).
    ///
    /// # Safety
    /// `ptr` must be a valid Redis string that outlives `'a`.
    pub unsafe fn from_raw(ptr: *mut raw::RedisModuleString) -> Self {
        Self {
            ptr,
            _call: PhantomData,
        }
    }

    /// The Redis string, for module API calls that take one.
    pub fn raw(&self) -> *mut raw::RedisModuleString {
        self.ptr
    }
}

/// Views `argv` as arguments.
///
/// # Safety
/// `argv` must point to `argc` valid strings that outlive `'a` (true for the
/// `argv` Redis passes to a command callback, for the duration of the call).
pub unsafe fn from_argv<'a>(argv: *mut *mut raw::RedisModuleString, argc: i32) -> &'a [Arg<'a>] {
    if argv.is_null() || argc <= 0 {
        return &[];
    }
    // SAFETY: `Arg` is a transparent wrapper of the pointer type; see above.
    unsafe { std::slice::from_raw_parts(argv.cast::<Arg<'a>>(), argc as usize) }
}
