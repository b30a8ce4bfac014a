//! Waking relays when tracked changes commit.
//!
//! The outbox is the truth and relays also poll it; a wake-up only saves them the
//! wait. Two mechanisms:
//!
//! | mechanism | when | cost at commit |
//! | --- | --- | --- |
//! | [`shared`]: commit counter + condition variable, waited on with `vset.wait_for_commit(seen, timeout_ms)` | `vset` is in `shared_preload_libraries` (the default path then) | one atomic add and a broadcast, after the commit; no lock held across the WAL flush |
//! | [`notify`]: `NOTIFY <channel>` once per transaction, for relays that `LISTEN` | the library is not preloaded, or `vset.notify = on` | `PreCommit_Notify` takes a database-wide lock held through the commit's WAL flush: tracked commits flush one at a time; `PREPARE TRANSACTION` is refused |
//!
//! `vset.notify` (`auto`, the default: NOTIFY only when not preloaded; `on`; `off`)
//! picks whether NOTIFY is sent; `vset.wakeup()` tells relays which to use.

pub mod notify;
pub mod shared;

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::pg_sys;

use crate::guc;

thread_local! {
    /// This transaction captured something (announced at commit).
    static CAPTURED: Cell<bool> = const { Cell::new(false) };
}

/// Whether captures send NOTIFY in this session.
pub fn notify_enabled() -> bool {
    match guc::notify() {
        guc::NotifySetting::Auto => !shared::available(),
        guc::NotifySetting::On => true,
        guc::NotifySetting::Off => false,
    }
}

/// A change record was written for `channel` in this transaction.
pub fn record_written(channel: &CStr) {
    if shared::available() {
        CAPTURED.with(|c| c.set(true));
    }
    if notify_enabled() {
        notify::notify_once(channel);
    }
}

unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_COMMIT if CAPTURED.with(|c| c.replace(false)) => shared::announce_commit(),
        // A prepared transaction commits later, possibly in another session
        // (COMMIT PREPARED): relays find its records by polling.
        XACT_EVENT_ABORT | XACT_EVENT_PREPARE | XACT_EVENT_PARALLEL_ABORT => {
            CAPTURED.with(|c| c.set(false));
        }
        _ => {}
    }
}

/// Called once per backend from `_PG_init`; `preloading` when the postmaster loads
/// the library from `shared_preload_libraries`.
pub fn init(preloading: bool) {
    if preloading {
        shared::install_hooks();
    }
    notify::register_callbacks();
    // SAFETY: registering a static callback once per backend.
    unsafe { pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut()) };
}
