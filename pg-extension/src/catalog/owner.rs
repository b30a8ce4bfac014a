//! Catalog work done as the extension's owner, on behalf of a caller whose rights
//! were checked first.
//!
//! `vset.tracked` says which key, payload and channel a table's capture trigger may
//! write, so no role but the extension's owner may write it, and `vset.capture()` is
//! not executable by PUBLIC (CREATE TRIGGER checks EXECUTE; a trigger that fires
//! does not). `vset.track`/`untrack` are therefore the only way in: they check that
//! the *caller* owns the table, then create the trigger and write the catalog row
//! here, as PostgreSQL's own code does for such steps (`SetUserIdAndSecContext`, as
//! in `ri_triggers.c` and `REFRESH MATERIALIZED VIEW`), with `search_path` pinned to
//! `pg_catalog, pg_temp` so that no object of the caller's can be resolved while
//! the owner's rights are in effect. A SQL `SECURITY DEFINER` function could not do
//! this: inside it, the caller's identity is gone.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::VsetError;

/// The role the calling code runs as (`current_user`), before any switch.
pub fn caller() -> pg_sys::Oid {
    // SAFETY: reads backend-local state.
    unsafe { pg_sys::GetUserId() }
}

/// The extension's owner (who ran `CREATE EXTENSION vset`, a superuser).
fn extension_owner() -> Result<pg_sys::Oid, VsetError> {
    Spi::get_one::<pg_sys::Oid>(
        "SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'vset'",
    )?
    .ok_or(VsetError::Altered("extension record"))
}

/// A GUC nest level with `search_path` pinned; popped on drop (normal path only:
/// when an ERROR unwinds through here, (sub)transaction abort pops it, and calling
/// into the GUC code mid-abort is not safe).
struct PinnedSearchPath {
    guc_level: i32,
}

impl PinnedSearchPath {
    fn enter() -> PinnedSearchPath {
        // SAFETY: a new GUC nest level and a SAVE-action setting inside it, as
        // fmgr_security_definer does for `SET search_path` on a function.
        unsafe {
            let guc_level = pg_sys::NewGUCNestLevel();
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                PINNED_SEARCH_PATH.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
            PinnedSearchPath { guc_level }
        }
    }
}

impl Drop for PinnedSearchPath {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: pops the level enter() pushed.
            unsafe { pg_sys::AtEOXact_GUC(true, self.guc_level) };
        }
    }
}

const PINNED_SEARCH_PATH: &CStr = c"pg_catalog, pg_temp";

/// Runs `f` with `search_path = pg_catalog, pg_temp`, as the caller. Every catalog
/// query vset runs goes through this (or [`as_extension_owner`]): with the
/// caller's search_path, an operator or function the caller created (an exact-type
/// match beats pg_catalog's when pg_catalog is listed later) would answer vset's
/// own questions (is the caller the owner? which keys are unique?), or run with
/// the rights of whoever writes a tracked table.
pub fn with_pinned_search_path<R>(f: impl FnOnce() -> R) -> R {
    let pinned = PinnedSearchPath::enter();
    let result = f();
    drop(pinned);
    result
}

/// Undoes the identity switch (on error too: only assignments).
struct Switched {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for Switched {
    fn drop(&mut self) {
        // SAFETY: restores the identity saved before the switch.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}

/// Runs `f` with the extension owner's rights, a restricted security context and
/// `search_path = pg_catalog, pg_temp`. Check the caller's rights *before*.
pub fn as_extension_owner<R>(f: impl FnOnce() -> Result<R, VsetError>) -> Result<R, VsetError> {
    let owner = with_pinned_search_path(extension_owner)?;
    let mut user = pg_sys::InvalidOid;
    let mut context: i32 = 0;
    // SAFETY: backend-local identity switch, undone by `Switched` (or by abort).
    let switched = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        Switched { user, context }
    };
    let result = with_pinned_search_path(f);
    drop(switched);
    result
}
