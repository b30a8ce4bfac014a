//! At most one `NOTIFY <channel>` per transaction, with a constant (empty) payload
//! (used when `vset.notify` asks for it, see [`super`]).
//!
//! NOTIFY takes a global lock at commit, so it is sent once per channel per
//! transaction and never when nothing was captured (no capture, no call). PostgreSQL
//! would fold duplicates itself, but only after allocating and comparing each one;
//! this remembers which (sub)transaction already queued a channel so later rows skip
//! the call. A subtransaction that rolls back drops its queued notification, so the
//! memory follows savepoints: forgotten on ROLLBACK TO, handed to the parent on RELEASE.

use std::cell::RefCell;
use std::ffi::{CStr, CString};

use pgrx::pg_sys;

use crate::pg_internal::async_notify;

thread_local! {
    /// (channel, subtransaction that queued it) for the current top-level transaction.
    static QUEUED: RefCell<Vec<(CString, pg_sys::SubTransactionId)>> = const { RefCell::new(Vec::new()) };
}

/// Queue `NOTIFY channel` unless this transaction already did.
pub fn notify_once(channel: &CStr) {
    let already = QUEUED.with(|q| q.borrow().iter().any(|(c, _)| c.as_c_str() == channel));
    if already {
        return;
    }
    // SAFETY: plain backend calls inside a transaction; errors unwind via pg_guard.
    unsafe {
        async_notify(channel, c"");
        let sub = pg_sys::GetCurrentSubTransactionId();
        QUEUED.with(|q| q.borrow_mut().push((channel.to_owned(), sub)));
    }
}

unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PREPARE
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_PARALLEL_ABORT
    ) {
        QUEUED.with(|q| {
            if let Ok(mut q) = q.try_borrow_mut() {
                q.clear();
            }
        });
    }
}

unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    my: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    QUEUED.with(|q| {
        let Ok(mut q) = q.try_borrow_mut() else {
            return;
        };
        match event {
            SUBXACT_EVENT_ABORT_SUB => q.retain(|(_, s)| *s != my),
            SUBXACT_EVENT_COMMIT_SUB => {
                for entry in q.iter_mut() {
                    if entry.1 == my {
                        entry.1 = parent;
                    }
                }
            }
            _ => {}
        }
    });
}

/// Called once from `_PG_init`.
pub fn register_callbacks() {
    // SAFETY: registering static callbacks once per backend.
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
    }
}
