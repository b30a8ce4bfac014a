//! PostgreSQL backend functions vset calls that pgrx 0.18 does not bind (their
//! headers, commands/sequence.h, commands/async.h and utils/datum.h, are not in
//! its bindings), plus the raw C symbol of `row_to_json` (pgrx binds it as a guarded
//! Rust function, but `DirectFunctionCall1Coll` needs the C function pointer). The
//! signatures are identical in PostgreSQL 13 to 18. Each safe-to-call wrapper goes
//! through `pg_guard_ffi_boundary`, which turns an ERROR raised inside PostgreSQL
//! into a Rust panic that unwinds our frames properly before PostgreSQL sees it.

use std::ffi::{c_char, c_int, CStr};

use pgrx::pg_sys;
use pgrx::pg_sys::ffi::pg_guard_ffi_boundary;

mod raw {
    use super::*;
    unsafe extern "C-unwind" {
        pub fn nextval_internal(relid: pg_sys::Oid, check_permissions: bool) -> i64;
        pub fn Async_Notify(channel: *const c_char, payload: *const c_char);
        pub fn datumIsEqual(
            value1: pg_sys::Datum,
            value2: pg_sys::Datum,
            typ_by_val: bool,
            typ_len: c_int,
        ) -> bool;
        pub fn row_to_json(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    }
}

/// `nextval()` without the caller's privilege check: capture and fill draw versions
/// on behalf of whoever wrote or read the row.
///
/// # Safety
/// `relid` must name a sequence; call inside a transaction.
pub unsafe fn nextval_internal(relid: pg_sys::Oid) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { pg_guard_ffi_boundary(|| raw::nextval_internal(relid, false)) }
}

/// `NOTIFY channel, payload` (queued until commit; dropped on rollback).
///
/// # Safety
/// Call inside a transaction.
pub unsafe fn async_notify(channel: &CStr, payload: &CStr) {
    // SAFETY: both are valid NUL-terminated strings.
    unsafe { pg_guard_ffi_boundary(|| raw::Async_Notify(channel.as_ptr(), payload.as_ptr())) }
}

/// Binary equality of two non-null datums of the same type.
///
/// # Safety
/// Both datums must be valid values of a type with the given by-value flag and length.
pub unsafe fn datum_is_equal(a: pg_sys::Datum, b: pg_sys::Datum, by_val: bool, len: i16) -> bool {
    // SAFETY: forwarded contract.
    unsafe { pg_guard_ffi_boundary(|| raw::datumIsEqual(a, b, by_val, len as c_int)) }
}

/// `row_to_json(composite)` of a composite datum, as a json (text) datum.
///
/// # Safety
/// `composite` must be a valid composite datum whose type the typcache can resolve.
pub unsafe fn row_to_json(composite: pg_sys::Datum) -> pg_sys::Datum {
    // SAFETY: row_to_json is a plain V1 function of one non-null argument.
    unsafe {
        pg_sys::DirectFunctionCall1Coll(Some(raw::row_to_json), pg_sys::InvalidOid, composite)
    }
}

/// `FormData_pg_sequence` (catalog/pg_sequence.h; the same in PostgreSQL 13 to 18,
/// not in pgrx's bindings).
#[repr(C)]
struct FormPgSequence {
    seqrelid: pg_sys::Oid,
    seqtypid: pg_sys::Oid,
    seqstart: i64,
    seqincrement: i64,
    seqmax: i64,
    seqmin: i64,
    seqcache: i64,
    seqcycle: bool,
}

/// A sequence's (increment, cache, cycle) from the syscache; None if it is gone.
///
/// # Safety
/// Call inside a transaction.
pub unsafe fn sequence_options(relid: pg_sys::Oid) -> Option<(i64, i64, bool)> {
    // SAFETY: syscache lookup by oid; the tuple's struct is read before release.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::SEQRELID as c_int,
            pg_sys::Datum::from(relid),
        );
        if tuple.is_null() {
            return None;
        }
        let header = (*tuple).t_data;
        let form =
            (header as *const u8).add(usize::from((*header).t_hoff)) as *const FormPgSequence;
        let options = ((*form).seqincrement, (*form).seqcache, (*form).seqcycle);
        pg_sys::ReleaseSysCache(tuple);
        Some(options)
    }
}
