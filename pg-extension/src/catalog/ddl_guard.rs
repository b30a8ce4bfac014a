//! What vset does when a DBA alters a tracked table: the `ddl_command_start` event
//! trigger `vset_guard_ddl`.
//!
//! DDL changes rows or their rendering without firing row triggers. Looked at before
//! the statement runs (its parse tree is only there), each case either gets the
//! records that keep Redis right, written in the DDL's own transaction, or is
//! refused with the safe way in the message:
//!
//! | statement on a tracked table (or one of its partitions) | vset |
//! | --- | --- |
//! | `ADD`/`DROP COLUMN` (payload of every column), `RENAME COLUMN` (same), `ALTER COLUMN … TYPE` of a key or payload column | a `del` for every row first: cached payloads (or keys) change shape |
//! | `DETACH PARTITION`, `DROP TABLE` of a partition | a `del` for every row of that partition: its rows leave the table |
//! | `DETACH PARTITION … CONCURRENTLY` | refused: it cannot share a transaction with the dels |
//! | `DROP COLUMN` / `RENAME COLUMN` of a key column or a listed payload column | refused: every later write would fail; untrack, alter, track again |
//! | `DISABLE TRIGGER` (vset's, `ALL`, `USER`), `ENABLE REPLICA TRIGGER` of vset's, `ALTER TRIGGER` vset's `RENAME`, `DROP TRIGGER` vset's | refused: writes would bypass capture |
//! | `SET UNLOGGED` | refused: crash recovery would empty it without row triggers |
//!
//! The dels are written after the whole partition tree is locked `ACCESS
//! EXCLUSIVE` (the lock the statement takes anyway, taken first): no write or fill
//! can slip between them and the change, so every value cached before has a
//! version below its del, and every one after reflects the new definition.
//!
//! `vset.track`/`untrack` drop their own triggers through SQL; they run that inside
//! [`own_ddl`], which this guard lets through.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgList;

use crate::api::track::{CAPTURE_TRIGGER, TRUNCATE_TRIGGER};
use crate::catalog::owner::{as_extension_owner, with_pinned_search_path};
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::Tracked;
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
    WHEN TAG IN ('ALTER TABLE', 'DROP TABLE', 'DROP TRIGGER', 'ALTER TRIGGER')
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
        let actions = unsafe { plan(parsetree) }.or_raise();
        if !actions.is_empty() {
            act(actions).or_raise();
        }
    }
    pg_sys::Datum::from(0usize)
}

/// What one part of a statement needs.
enum Action {
    /// Lock `lock_first` (when set), then `rows` and its partitions, then write a
    /// del for every row of `rows` under its tracked table's settings.
    DelEveryRow {
        lock_first: Option<pg_sys::Oid>,
        rows: pg_sys::Oid,
        what: String,
    },
    Refuse(VsetError),
}

/// A relation named in the statement, if it exists.
unsafe fn relid(rv: *mut pg_sys::RangeVar) -> Option<pg_sys::Oid> {
    if rv.is_null() {
        return None;
    }
    // SAFETY: rv is a RangeVar of the parse tree; no lock (taken later, in order).
    let oid = unsafe {
        pg_sys::RangeVarGetRelidExtended(
            rv,
            pg_sys::NoLock as pg_sys::LOCKMODE,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        )
    };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

unsafe fn text(s: *const std::ffi::c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string of the parse tree.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

/// The tracked table `rel` belongs to (itself, or the root of its partition tree),
/// with its settings and quoted name; None when it is not tracked.
fn tracked_owner_of(
    client: &SpiClient<'_>,
    rel: pg_sys::Oid,
) -> Result<Option<(pg_sys::Oid, Tracked, String)>, VsetError> {
    as_vset(|| tracked_owner_of_unpinned(client, rel))
}

/// Catalog queries as the extension owner with a pinned search_path (names in the
/// statement were resolved before, with the caller's).
fn as_vset<R>(f: impl FnOnce() -> Result<R, VsetError>) -> Result<R, VsetError> {
    with_pinned_search_path(|| as_extension_owner(f))
}

fn tracked_owner_of_unpinned(
    client: &SpiClient<'_>,
    rel: pg_sys::Oid,
) -> Result<Option<(pg_sys::Oid, Tracked, String)>, VsetError> {
    let info = TableInfo::load(client, rel)?;
    let mut candidates = vec![rel];
    // SAFETY: catalog lookup by oid.
    if unsafe { pg_sys::get_rel_relispartition(rel) } {
        for row in client.select(
            "SELECT relid FROM pg_catalog.pg_partition_ancestors($1) WHERE relid <> $1",
            None,
            &[rel.into()],
        )? {
            candidates.extend(row.get::<pg_sys::Oid>(1)?);
        }
    }
    for candidate in candidates {
        if let Some(tracked) = Tracked::load(client, candidate)? {
            return Ok(Some((candidate, tracked, info.qualified)));
        }
    }
    Ok(None)
}

fn is_vset_trigger(name: &str) -> bool {
    name == CAPTURE_TRIGGER || name == TRUNCATE_TRIGGER
}

/// Decides, before anything runs, what each part of the statement needs.
unsafe fn plan(parsetree: *mut pg_sys::Node) -> Result<Vec<Action>, VsetError> {
    // Names in the statement resolve with the caller's search_path, as the statement
    // itself will; catalog queries then run pinned (tracked_owner_of).
    Spi::connect(|client| {
        // SAFETY: node types checked by tag before each cast.
        unsafe {
            match (*parsetree).type_ {
                pg_sys::NodeTag::T_AlterTableStmt => {
                    alter_table(client, parsetree as *mut pg_sys::AlterTableStmt)
                }
                pg_sys::NodeTag::T_RenameStmt => {
                    rename(client, parsetree as *mut pg_sys::RenameStmt)
                }
                pg_sys::NodeTag::T_DropStmt => drop(client, parsetree as *mut pg_sys::DropStmt),
                _ => Ok(Vec::new()),
            }
        }
    })
}

unsafe fn alter_table(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::AlterTableStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree.
    let (rel, cmds) = unsafe { (relid((*stmt).relation), (*stmt).cmds) };
    let Some(rel) = rel else {
        return Ok(Vec::new());
    };
    let Some((_, tracked, table)) = tracked_owner_of(client, rel)? else {
        return Ok(Vec::new());
    };
    let mut actions = Vec::new();
    // SAFETY: cmds is a List of AlterTableCmd.
    let cmds = unsafe { PgList::<pg_sys::AlterTableCmd>::from_pg(cmds) };
    let del_all = |what: &str| Action::DelEveryRow {
        lock_first: None,
        rows: rel,
        what: what.to_string(),
    };
    for cmd in cmds.iter_ptr() {
        // SAFETY: each element is an AlterTableCmd.
        let (subtype, name, def) = unsafe { ((*cmd).subtype, text((*cmd).name), (*cmd).def) };
        let bypass = |what: String| {
            Action::Refuse(VsetError::DdlBypassesCapture {
                table: table.clone(),
                what,
            })
        };
        match subtype {
            pg_sys::AlterTableType::AT_AddColumn if tracked.columns.is_none() => {
                actions.push(del_all("ADD COLUMN"))
            }
            pg_sys::AlterTableType::AT_DropColumn => {
                if let Some(role) = role_of_column(&tracked, &name) {
                    actions.push(Action::Refuse(VsetError::DdlBreaksTracking {
                        table: table.clone(),
                        column: name,
                        role,
                        what: "DROP COLUMN",
                    }));
                } else if tracked.columns.is_none() {
                    actions.push(del_all("DROP COLUMN"));
                }
            }
            pg_sys::AlterTableType::AT_AlterColumnType
                if role_of_column(&tracked, &name).is_some() || tracked.columns.is_none() =>
            {
                actions.push(del_all("ALTER COLUMN … TYPE"));
            }
            pg_sys::AlterTableType::AT_DetachPartition => {
                let part = def as *mut pg_sys::PartitionCmd;
                // SAFETY: the def of a DETACH is a PartitionCmd.
                let (child, concurrent) = unsafe { (relid((*part).name), (*part).concurrent) };
                let Some(child) = child else { continue };
                if concurrent {
                    actions.push(Action::Refuse(VsetError::DetachConcurrently {
                        table: table.clone(),
                    }));
                } else {
                    actions.push(Action::DelEveryRow {
                        lock_first: Some(rel),
                        rows: child,
                        what: "DETACH PARTITION".into(),
                    });
                }
            }
            pg_sys::AlterTableType::AT_DisableTrig if is_vset_trigger(&name) => {
                actions.push(bypass(format!("DISABLE TRIGGER {name}")));
            }
            pg_sys::AlterTableType::AT_EnableReplicaTrig if is_vset_trigger(&name) => {
                actions.push(bypass(format!("ENABLE REPLICA TRIGGER {name}")));
            }
            pg_sys::AlterTableType::AT_DisableTrigAll
            | pg_sys::AlterTableType::AT_DisableTrigUser => {
                actions.push(bypass("DISABLE TRIGGER ALL/USER".into()));
            }
            pg_sys::AlterTableType::AT_SetUnLogged => {
                actions.push(Action::Refuse(VsetError::NotDurable {
                    table: table.clone(),
                    kind: "unlogged",
                    remedy: "untrack it first",
                }))
            }
            _ => {}
        }
    }
    Ok(actions)
}

/// "key" or "payload" when the tracked settings name `column`.
fn role_of_column(tracked: &Tracked, column: &str) -> Option<&'static str> {
    if tracked.key_columns.iter().any(|c| c == column) {
        Some("key")
    } else if tracked
        .columns
        .as_ref()
        .is_some_and(|cols| cols.iter().any(|c| c == column))
    {
        Some("payload")
    } else {
        None
    }
}

unsafe fn rename(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::RenameStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree.
    let (kind, rel, subname) = unsafe {
        (
            (*stmt).renameType,
            relid((*stmt).relation),
            text((*stmt).subname),
        )
    };
    let Some(rel) = rel else {
        return Ok(Vec::new());
    };
    let Some((_, tracked, table)) = tracked_owner_of(client, rel)? else {
        return Ok(Vec::new());
    };
    Ok(match kind {
        pg_sys::ObjectType::OBJECT_COLUMN => match role_of_column(&tracked, &subname) {
            Some(role) => vec![Action::Refuse(VsetError::DdlBreaksTracking {
                table,
                column: subname,
                role,
                what: "RENAME COLUMN",
            })],
            None if tracked.columns.is_none() => vec![Action::DelEveryRow {
                lock_first: None,
                rows: rel,
                what: "RENAME COLUMN".into(),
            }],
            None => Vec::new(),
        },
        pg_sys::ObjectType::OBJECT_TRIGGER if is_vset_trigger(&subname) => {
            vec![Action::Refuse(VsetError::DdlBypassesCapture {
                table,
                what: format!("renaming trigger {subname}"),
            })]
        }
        _ => Vec::new(),
    })
}

unsafe fn drop(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::DropStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree.
    let (kind, objects) = unsafe { ((*stmt).removeType, (*stmt).objects) };
    let mut actions = Vec::new();
    // SAFETY: objects is a List of name Lists (String nodes).
    let objects = unsafe { PgList::<pg_sys::List>::from_pg(objects) };
    for names in objects.iter_ptr() {
        match kind {
            pg_sys::ObjectType::OBJECT_TABLE => {
                // SAFETY: a qualified name list.
                let Some(rel) = (unsafe { relid(pg_sys::makeRangeVarFromNameList(names)) }) else {
                    continue;
                };
                // A tracked table itself is refused by vset_refuse_dropping_tracked_tables.
                // SAFETY: catalog lookup by oid.
                if !unsafe { pg_sys::get_rel_relispartition(rel) } {
                    continue;
                }
                if tracked_owner_of(client, rel)?.is_some() {
                    // Its parent is locked first, as DROP does.
                    let parent = as_vset(|| {
                        Ok(client
                            .select(
                                "SELECT inhparent FROM pg_catalog.pg_inherits WHERE inhrelid = $1",
                                Some(1),
                                &[rel.into()],
                            )?
                            .first()
                            .get_one::<pg_sys::Oid>()?)
                    })?;
                    actions.push(Action::DelEveryRow {
                        lock_first: parent,
                        rows: rel,
                        what: "DROP TABLE of a partition".into(),
                    });
                }
            }
            pg_sys::ObjectType::OBJECT_TRIGGER => {
                // [schema.]table.trigger: the trigger is the last name.
                // SAFETY: a name list of String nodes, at least two long.
                let (table_rv, trigger) = unsafe {
                    let n = (*names).length;
                    let last = pg_sys::list_nth(names, n - 1) as *mut pg_sys::String;
                    let table_names = pg_sys::list_truncate(pg_sys::list_copy(names), n - 1);
                    (
                        pg_sys::makeRangeVarFromNameList(table_names),
                        text((*last).sval),
                    )
                };
                if !is_vset_trigger(&trigger) {
                    continue;
                }
                // SAFETY: a RangeVar built above.
                let Some(rel) = (unsafe { relid(table_rv) }) else {
                    continue;
                };
                if let Some((_, _, table)) = tracked_owner_of(client, rel)? {
                    actions.push(Action::Refuse(VsetError::DropVsetTrigger {
                        table,
                        trigger,
                    }));
                }
            }
            _ => {}
        }
    }
    Ok(actions)
}

/// Refusals first (nothing written), then the dels, each after its locks.
fn act(actions: Vec<Action>) -> Result<(), VsetError> {
    let (refusals, dels): (Vec<Action>, Vec<Action>) = actions
        .into_iter()
        .partition(|a| matches!(a, Action::Refuse(_)));
    if let Some(Action::Refuse(e)) = refusals.into_iter().next() {
        return Err(e);
    }
    for action in dels {
        let Action::DelEveryRow {
            lock_first,
            rows,
            what,
        } = action
        else {
            continue;
        };
        Spi::connect_mut(|client| {
            as_vset(|| {
                // Held until the transaction ends; LOCK TABLE takes the partitions too.
                for rel in lock_first.iter().chain(std::iter::once(&rows)) {
                    let info = TableInfo::load(client, *rel)?;
                    client.update(
                        &format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", info.qualified),
                        None,
                        &[],
                    )?;
                }
                Ok(())
            })
        })?;
        Spi::connect_mut(|client| {
            as_vset(|| {
                let Some((root, tracked, _)) = tracked_owner_of_unpinned(client, rows)? else {
                    return Ok(());
                };
                let info = TableInfo::load(client, rows)?;
                let retired = del_every_row(client, rows, root, &info.qualified, &tracked)?;
                report_retired(&info.qualified, &what, retired);
                Ok(())
            })
        })?;
    }
    Ok(())
}
