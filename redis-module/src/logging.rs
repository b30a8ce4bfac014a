//! Log lines in the Redis log. Messages are passed as a `%s` argument, never as the
//! format string: key names are user data and may contain `%`.

use std::ffi::CString;
use std::os::raw::c_char;

use redis_module::raw;

fn c_message(message: &str) -> CString {
    // Interior NULs (possible in key names) would truncate the line; show them.
    CString::new(message.replace('\0', "\\0")).unwrap_or_default()
}

/// Logs at `warning` level, attributed to the module when `ctx` is a module context.
pub(crate) fn warning(ctx: *mut raw::RedisModuleCtx, message: &str) {
    log(ctx, c"warning", message);
}

/// Logs at `notice` level.
pub(crate) fn notice(ctx: *mut raw::RedisModuleCtx, message: &str) {
    log(ctx, c"notice", message);
}

fn log(ctx: *mut raw::RedisModuleCtx, level: &std::ffi::CStr, message: &str) {
    let Some(log) = (unsafe { raw::RedisModule_Log }) else {
        return;
    };
    let msg = c_message(message);
    // SAFETY: Redis' logging function, valid C strings, `%s` consumes exactly `msg`.
    unsafe {
        log(
            ctx,
            level.as_ptr(),
            c"%s".as_ptr(),
            msg.as_ptr() as *const c_char,
        )
    };
}

/// Logs from an RDB/AOF callback (the line names the module and the key type).
pub(crate) fn io_warning(io: *mut raw::RedisModuleIO, message: &str) {
    let Some(log) = (unsafe { raw::RedisModule_LogIOError }) else {
        return;
    };
    let msg = c_message(message);
    // SAFETY: as in `log`.
    unsafe {
        log(
            io,
            c"warning".as_ptr(),
            c"%s".as_ptr(),
            msg.as_ptr() as *const c_char,
        )
    };
}
