//! What vset does when a DBA alters a tracked table: the `ddl_command_start` event
//! trigger `vset_guard_ddl`.
//!
//! DDL changes rows or their rendering without firing row triggers. Looked at before
//! the statement runs (its parse tree is only there), each case either gets the
//! records that keep Redis right, written in the DDL's own transaction, or is
//! refused with the safe way in the message:
//!
//! | statement reaching a tracked table (itself, a partition, an inheritance parent or partitioned parent above it) | vset |
//! | --- | --- |
//! | `ADD`/`DROP COLUMN` (payload of every column), `RENAME COLUMN` (same, also through `ALTER VIEW`/`ALTER FOREIGN TABLE`), `ALTER COLUMN … TYPE` of a key or payload column | a `del` for every row first: cached payloads (or keys) change shape |
//! | `DETACH PARTITION`, `DROP TABLE` of a partition | a `del` for every row of that partition: its rows leave the table |
//! | `DETACH PARTITION … CONCURRENTLY` | refused: it cannot share a transaction with the dels |
//! | `DROP COLUMN` / `RENAME COLUMN` of a key column or a listed payload column | refused: every later write would fail; untrack, alter, track again |
//! | `DISABLE TRIGGER` (vset's, `ALL`, `USER`), `ENABLE REPLICA TRIGGER`, `ALTER TRIGGER … RENAME`/`DEPENDS ON EXTENSION`, `CREATE OR REPLACE TRIGGER`, `DROP TRIGGER` of vset's | refused: writes would bypass capture |
//! | `SET UNLOGGED`, an unlogged partition (`CREATE UNLOGGED TABLE … PARTITION OF`, `ATTACH PARTITION`) | refused: crash recovery would empty it without row triggers |
//! | `ALTER TYPE` (enum `RENAME VALUE`, composite attributes) of a type a tracked table's columns use | refused: keys or payloads would change shape |
//!
//! Only for callers who own the relation (or its schema): anyone else gets
//! PostgreSQL's own refusal, before vset locks or reads anything. The dels are
//! written after the statement's relation (and everything below it) is locked
//! `ACCESS EXCLUSIVE`, the lock the statement takes anyway, taken first: no write or
//! fill can slip between them and the change, so every value cached before has a
//! version below its del, and every one after reflects the new definition. Columns
//! dropped by other statements (`DROP TYPE … CASCADE`) are refused by the `sql_drop`
//! guard ([`super::drop_guard`]).
//!
//! `vset.track`/`untrack` drop their own triggers through SQL; they run that inside
//! [`own_ddl`], which this guard lets through.

mod decide;
mod lookup;

use std::cell::Cell;

use pgrx::prelude::*;

use crate::catalog::owner::{as_extension_owner, with_pinned_search_path};
use crate::catalog::table::TableInfo;
use crate::error::{OrRaise, VsetError};
use crate::trigger::retire::{del_every_row, report_retired};

thread_local! {
    /// Depth of vset's own DDL in progress (track/untrack dropping their triggers).
    static OWN_DDL: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` with the guard standing aside (vset's own trigger DDL).
pub fn own_ddl<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            OWN_DDL.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    OWN_DDL.with(|d| d.set(d.get() + 1));
    let _reset = Reset;
    f()
}

pgrx::extension_sql!(
    r#"
CREATE FUNCTION vset.guard_ddl() RETURNS event_trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'vset_guard_ddl';
COMMENT ON FUNCTION vset.guard_ddl() IS 'ddl_command_start: writes the del records DDL on a tracked table needs, or refuses DDL that would bypass capture';
REVOKE ALL ON FUNCTION vset.guard_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER vset_guard_ddl ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'DROP TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'DROP TRIGGER',
                 'ALTER TRIGGER', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER FOREIGN TABLE',
                 'ALTER TYPE')
    EXECUTE FUNCTION vset.guard_ddl();
"#,
    name = "vset_ddl_guard",
    requires = ["vset_catalog"]
);

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_vset_guard_ddl() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The event trigger function (pgrx has no event-trigger support: a plain V1
/// function that reads `EventTriggerData`).
///
/// # Safety
/// Called by PostgreSQL's function manager as an event trigger.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn vset_guard_ddl(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: fcinfo is the call's; its context is EventTriggerData when called as an
    // event trigger (checked).
    let parsetree = unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_EventTriggerData {
            VsetError::TriggerMisuse("vset.guard_ddl() must be called as an event trigger".into())
                .raise();
        }
        (*(context as *mut pg_sys::EventTriggerData)).parsetree
    };
    if OWN_DDL.with(Cell::get) == 0 && !parsetree.is_null() {
        // SAFETY: the parse tree of the statement about to run.
        let actions = unsafe { decide::plan(parsetree) }.or_raise();
        if !actions.is_empty() {
            act(actions).or_raise();
        }
    }
    pg_sys::Datum::from(0usize)
}

/// What one part of a statement needs.
pub(crate) enum Action {
    /// Lock `locks` in order (`(relation, only)`: without ONLY, LOCK TABLE takes
    /// everything below it too), then write a del for every row of `rows` as records
    /// of the tracked table `root`.
    DelEveryRow {
        locks: Vec<(pg_sys::Oid, bool)>,
        rows: pg_sys::Oid,
        root: pg_sys::Oid,
        what: String,
    },
    Refuse(VsetError),
}

/// Catalog queries as the extension owner with a pinned search_path (names in the
/// statement were resolved before, with the caller's).
pub(crate) fn as_vset<R>(f: impl FnOnce() -> Result<R, VsetError>) -> Result<R, VsetError> {
    with_pinned_search_path(|| as_extension_owner(f))
}

/// Refusals first (nothing written), then the dels (once per set of rows), each after
/// its locks.
fn act(actions: Vec<Action>) -> Result<(), VsetError> {
    let (refusals, dels): (Vec<Action>, Vec<Action>) = actions
        .into_iter()
        .partition(|a| matches!(a, Action::Refuse(_)));
    if let Some(Action::Refuse(e)) = refusals.into_iter().next() {
        return Err(e);
    }
    let mut done: Vec<pg_sys::Oid> = Vec::new();
    for action in dels {
        let Action::DelEveryRow {
            locks,
            rows,
            root,
            what,
        } = action
        else {
            continue;
        };
        if done.contains(&rows) {
            continue;
        }
        done.push(rows);
        Spi::connect_mut(|client| {
            as_vset(|| {
                // Held until the transaction ends.
                for (rel, only) in &locks {
                    let info = TableInfo::load(client, *rel)?;
                    let only = if *only { "ONLY " } else { "" };
                    client.update(
                        &format!(
                            "LOCK TABLE {only}{} IN ACCESS EXCLUSIVE MODE",
                            info.qualified
                        ),
                        None,
                        &[],
                    )?;
                }
                let Some(owner) = lookup::tracked_owner_of(client, root)? else {
                    return Ok(());
                };
                let info = TableInfo::load(client, rows)?;
                let retired = del_every_row(client, &info, root, &owner.tracked)?;
                report_retired(&info.qualified, &what, retired);
                Ok(())
            })
        })?;
    }
    Ok(())
}
