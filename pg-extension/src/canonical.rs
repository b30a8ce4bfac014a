//! Keys and payloads do not depend on the writing session's settings.
//!
//! A key is the text output of its columns and a payload is `row_to_json`, and both
//! follow the session's `TimeZone`, `DateStyle`, `IntervalStyle`,
//! `extra_float_digits` and `bytea_output`. Rendered under the writer's settings, an
//! INSERT from a UTC session and the DELETE of the same row from a Europe/Paris
//! session name two different keys (`…:2024-01-01 00:00:00+00` and
//! `…:2024-01-01 01:00:00+01`), and the deleted row stays cached for good. The
//! capture trigger and `vset.fill` therefore render under one fixed set, the ISO
//! forms PostgreSQL itself defaults to, with UTC:
//!
//! | setting | value while rendering |
//! | --- | --- |
//! | TimeZone | UTC |
//! | DateStyle | ISO (output; the input order is left alone) |
//! | IntervalStyle | postgres |
//! | extra_float_digits | 1 (shortest exact) |
//! | bytea_output | hex |
//! | quote_all_identifiers | off |
//!
//! The output functions read these as plain C globals, so they are swapped for the
//! duration of the rendering and put back (on error too) by [`CanonicalOutput`]'s
//! `Drop`: per row this costs a few stores, where a GUC nest level would cost a
//! catalog-free but allocating `set_config_option` per setting. Key columns of
//! types whose text also follows other settings (`reg*`: search_path; `money`:
//! lc_monetary) are refused by `vset.track`; in payloads they render as the
//! writing session's settings say.

use std::cell::Cell;
use std::ffi::c_int;

use pgrx::pg_sys;

mod raw {
    use std::ffi::c_int;
    unsafe extern "C" {
        // utils/bytea.h: `PGDLLIMPORT int bytea_output`, not in pgrx's bindings.
        pub static mut bytea_output: c_int;
    }
}

/// `BYTEA_OUTPUT_HEX` of utils/bytea.h's `ByteaOutputType`.
const BYTEA_OUTPUT_HEX: c_int = 1;
/// Shortest-exact float output (any value above 0).
const SHORTEST_EXACT_FLOATS: c_int = 1;

thread_local! {
    static UTC: Cell<*mut pg_sys::pg_tz> = const { Cell::new(std::ptr::null_mut()) };
}

fn utc() -> *mut pg_sys::pg_tz {
    UTC.with(|cell| {
        if cell.get().is_null() {
            // SAFETY: pg_tzset returns a pointer into PostgreSQL's zone cache, valid
            // for the life of the backend; "GMT" is built in when zone files lack UTC.
            let tz = unsafe {
                let tz = pg_sys::pg_tzset(c"UTC".as_ptr());
                if tz.is_null() {
                    pg_sys::pg_tzset(c"GMT".as_ptr())
                } else {
                    tz
                }
            };
            cell.set(tz);
        }
        cell.get()
    })
}

/// While alive, output functions render in the canonical settings above.
pub struct CanonicalOutput {
    date_style: c_int,
    interval_style: c_int,
    extra_float_digits: c_int,
    bytea_output: c_int,
    quote_all_identifiers: bool,
    timezone: *mut pg_sys::pg_tz,
}

impl CanonicalOutput {
    pub fn enter() -> CanonicalOutput {
        let utc = utc();
        // SAFETY: backend-local globals, read and written on the backend's only thread.
        unsafe {
            let saved = CanonicalOutput {
                date_style: pg_sys::DateStyle,
                interval_style: pg_sys::IntervalStyle,
                extra_float_digits: pg_sys::extra_float_digits,
                bytea_output: raw::bytea_output,
                quote_all_identifiers: pg_sys::quote_all_identifiers,
                timezone: pg_sys::session_timezone,
            };
            pg_sys::quote_all_identifiers = false;
            pg_sys::DateStyle = pg_sys::USE_ISO_DATES as c_int;
            pg_sys::IntervalStyle = pg_sys::INTSTYLE_POSTGRES as c_int;
            pg_sys::extra_float_digits = SHORTEST_EXACT_FLOATS;
            raw::bytea_output = BYTEA_OUTPUT_HEX;
            if !utc.is_null() {
                pg_sys::session_timezone = utc;
            }
            saved
        }
    }
}

impl Drop for CanonicalOutput {
    fn drop(&mut self) {
        // SAFETY: puts back exactly what enter() saved.
        unsafe {
            pg_sys::DateStyle = self.date_style;
            pg_sys::IntervalStyle = self.interval_style;
            pg_sys::extra_float_digits = self.extra_float_digits;
            raw::bytea_output = self.bytea_output;
            pg_sys::quote_all_identifiers = self.quote_all_identifiers;
            pg_sys::session_timezone = self.timezone;
        }
    }
}
