//! Reads the parse tree of the statement about to run and decides what each part of
//! it needs ([`Action`]s). Names resolve with the caller's search_path, as the
//! statement itself will resolve them; nothing is locked or written here.

use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgList;

use super::lookup::{
    caller_owns, caller_owns_type, tracked_owner_of, tracked_reached_from,
    tracked_table_using_type, TrackedOwner,
};
use super::{as_vset, Action};
use crate::api::track::{CAPTURE_TRIGGER, TRUNCATE_TRIGGER};
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::Tracked;
use crate::error::VsetError;

/// Decides what the statement needs.
///
/// # Safety
/// `parsetree` is the statement's parse tree, as handed to an event trigger.
pub unsafe fn plan(parsetree: *mut pg_sys::Node) -> Result<Vec<Action>, VsetError> {
    // SAFETY: node types checked by tag before each cast.
    unsafe {
        let tag = (*parsetree).type_;
        if tag == pg_sys::NodeTag::T_CreateStmt {
            let stmt = parsetree as *mut pg_sys::CreateStmt;
            // Only `CREATE UNLOGGED TABLE … PARTITION OF` matters; skip the rest
            // without touching SPI.
            if (*stmt).partbound.is_null()
                || (*stmt).relation.is_null()
                || (*(*stmt).relation).relpersistence
                    != pg_sys::RELPERSISTENCE_UNLOGGED as std::ffi::c_char
            {
                return Ok(Vec::new());
            }
        }
        Spi::connect(|client| match tag {
            pg_sys::NodeTag::T_AlterTableStmt => {
                alter_table(client, parsetree as *mut pg_sys::AlterTableStmt)
            }
            pg_sys::NodeTag::T_RenameStmt => rename(client, parsetree as *mut pg_sys::RenameStmt),
            pg_sys::NodeTag::T_DropStmt => drop(client, parsetree as *mut pg_sys::DropStmt),
            pg_sys::NodeTag::T_CreateTrigStmt => {
                create_trigger(client, parsetree as *mut pg_sys::CreateTrigStmt)
            }
            pg_sys::NodeTag::T_AlterObjectDependsStmt => {
                depends(client, parsetree as *mut pg_sys::AlterObjectDependsStmt)
            }
            pg_sys::NodeTag::T_AlterEnumStmt => {
                alter_enum(client, parsetree as *mut pg_sys::AlterEnumStmt)
            }
            pg_sys::NodeTag::T_CreateStmt => {
                unlogged_partition(client, parsetree as *mut pg_sys::CreateStmt)
            }
            _ => Ok(Vec::new()),
        })
    }
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

/// A relation named in the statement that the caller owns (or whose schema it
/// owns); None otherwise, so PostgreSQL raises its own error first.
unsafe fn owned_relid(
    client: &SpiClient<'_>,
    rv: *mut pg_sys::RangeVar,
) -> Result<Option<pg_sys::Oid>, VsetError> {
    // SAFETY: as relid.
    match unsafe { relid(rv) } {
        Some(rel) if caller_owns(client, rel)? => Ok(Some(rel)),
        _ => Ok(None),
    }
}

unsafe fn text(s: *const std::ffi::c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string of the parse tree.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

fn is_vset_trigger(name: &str) -> bool {
    name == CAPTURE_TRIGGER || name == TRUNCATE_TRIGGER
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

/// A del for every row of a tracked table reached by a statement on `rel`: `rel` and
/// everything below it is locked first (what the statement locks), then the rows of
/// the tracked table are read.
fn del_all(rel: pg_sys::Oid, owner: &TrackedOwner, what: &str) -> Action {
    Action::DelEveryRow {
        locks: vec![(rel, false)],
        rows: owner.root,
        root: owner.root,
        what: what.to_string(),
    }
}

fn bypass(owner: &TrackedOwner, what: String) -> Action {
    Action::Refuse(VsetError::DdlBypassesCapture {
        table: owner.name.clone(),
        what,
    })
}

/// What happens to a column the statement names.
#[derive(Clone, Copy)]
enum ColumnChange {
    Drop,
    Rename,
    Retype,
}

impl ColumnChange {
    fn what(self) -> &'static str {
        match self {
            ColumnChange::Drop => "DROP COLUMN",
            ColumnChange::Rename => "RENAME COLUMN",
            ColumnChange::Retype => "ALTER COLUMN … TYPE",
        }
    }
}

/// What a change of column `name` needs for one tracked table it reaches: a retyped
/// key or payload column changes what is cached (dels); a dropped or renamed one
/// would break every later write (refused); any change of an all-columns payload
/// changes its shape (dels).
fn column_change(
    rel: pg_sys::Oid,
    owner: &TrackedOwner,
    name: &str,
    change: ColumnChange,
) -> Option<Action> {
    let what = change.what();
    match (role_of_column(&owner.tracked, name), change) {
        (Some(_), ColumnChange::Retype) => Some(del_all(rel, owner, what)),
        (Some(role), _) => Some(Action::Refuse(VsetError::DdlBreaksTracking {
            table: owner.name.clone(),
            column: name.to_string(),
            role,
            what,
        })),
        (None, _) if owner.tracked.columns.is_none() => Some(del_all(rel, owner, what)),
        (None, _) => None,
    }
}

/// Refuses the statement (`what`) when `rel` belongs to a tracked table: for
/// statements on vset's own triggers.
fn bypass_if_tracked(
    client: &SpiClient<'_>,
    rel: Option<pg_sys::Oid>,
    what: String,
) -> Result<Vec<Action>, VsetError> {
    let Some(rel) = rel else {
        return Ok(Vec::new());
    };
    Ok(match tracked_owner_of(client, rel)? {
        Some(owner) => vec![bypass(&owner, what)],
        None => Vec::new(),
    })
}

unsafe fn alter_table(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::AlterTableStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree.
    let (rv, cmds, objtype) = unsafe { ((*stmt).relation, (*stmt).cmds, (*stmt).objtype) };
    if objtype == pg_sys::ObjectType::OBJECT_TYPE {
        // ALTER TYPE of a composite type: ADD/DROP/ALTER/RENAME ATTRIBUTE.
        // SAFETY: as relid.
        return unsafe { composite_type_change(client, rv) };
    }
    // SAFETY: a RangeVar of the parse tree.
    let Some(rel) = (unsafe { owned_relid(client, rv)? }) else {
        return Ok(Vec::new());
    };
    let reached = tracked_reached_from(client, rel)?;
    if reached.is_empty() {
        return Ok(Vec::new());
    }
    let mut actions = Vec::new();
    // SAFETY: cmds is a List of AlterTableCmd.
    let cmds = unsafe { PgList::<pg_sys::AlterTableCmd>::from_pg(cmds) };
    for cmd in cmds.iter_ptr() {
        // SAFETY: each element is an AlterTableCmd.
        let (subtype, name, def) = unsafe { ((*cmd).subtype, text((*cmd).name), (*cmd).def) };
        use pg_sys::AlterTableType as At;
        for owner in &reached {
            match subtype {
                At::AT_AddColumn if owner.tracked.columns.is_none() => {
                    actions.push(del_all(rel, owner, "ADD COLUMN"));
                }
                At::AT_DropColumn => {
                    actions.extend(column_change(rel, owner, &name, ColumnChange::Drop));
                }
                At::AT_AlterColumnType => {
                    actions.extend(column_change(rel, owner, &name, ColumnChange::Retype));
                }
                At::AT_DisableTrig if is_vset_trigger(&name) => {
                    actions.push(bypass(owner, format!("DISABLE TRIGGER {name}")));
                }
                At::AT_EnableReplicaTrig if is_vset_trigger(&name) => {
                    actions.push(bypass(owner, format!("ENABLE REPLICA TRIGGER {name}")));
                }
                At::AT_DisableTrigAll | At::AT_DisableTrigUser => {
                    actions.push(bypass(owner, "DISABLE TRIGGER ALL/USER".into()));
                }
                At::AT_SetUnLogged => actions.push(Action::Refuse(VsetError::NotDurable {
                    table: owner.name.clone(),
                    kind: "unlogged",
                    remedy: "untrack it first",
                })),
                _ => {}
            }
        }
        match subtype {
            At::AT_DetachPartition => {
                let part = def as *mut pg_sys::PartitionCmd;
                // SAFETY: the def of a DETACH is a PartitionCmd.
                let (child, concurrent) = unsafe { (relid((*part).name), (*part).concurrent) };
                let Some(child) = child else { continue };
                let Some(owner) = tracked_owner_of(client, child)? else {
                    continue;
                };
                if concurrent {
                    actions.push(Action::Refuse(VsetError::DetachConcurrently {
                        table: owner.name,
                    }));
                } else {
                    actions.push(Action::DelEveryRow {
                        locks: vec![(rel, true), (child, false)],
                        rows: child,
                        root: owner.root,
                        what: "DETACH PARTITION".into(),
                    });
                }
            }
            At::AT_AttachPartition => {
                let part = def as *mut pg_sys::PartitionCmd;
                // SAFETY: the def of an ATTACH is a PartitionCmd.
                let Some(child) = (unsafe { relid((*part).name) }) else {
                    continue;
                };
                if let Some(owner) = tracked_owner_of(client, rel)? {
                    if is_unlogged(client, child)? {
                        actions.push(unlogged_refusal(&owner));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(actions)
}

fn is_unlogged(client: &SpiClient<'_>, rel: pg_sys::Oid) -> Result<bool, VsetError> {
    as_vset(|| Ok(TableInfo::load(client, rel)?.persistence == "u"))
}

fn unlogged_refusal(owner: &TrackedOwner) -> Action {
    Action::Refuse(VsetError::NotDurable {
        table: format!("a partition of {}", owner.name),
        kind: "unlogged",
        remedy: "make it a logged table",
    })
}

unsafe fn unlogged_partition(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::CreateStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: a CREATE TABLE … PARTITION OF names exactly one parent.
    let parent = unsafe {
        let parents = PgList::<pg_sys::RangeVar>::from_pg((*stmt).inhRelations);
        parents.get_ptr(0).and_then(|rv| relid(rv))
    };
    let Some(parent) = parent else {
        return Ok(Vec::new());
    };
    Ok(match tracked_owner_of(client, parent)? {
        Some(owner) if caller_owns(client, parent)? => vec![unlogged_refusal(&owner)],
        _ => Vec::new(),
    })
}

/// ALTER TYPE of a composite type (attributes), named by `rv`.
unsafe fn composite_type_change(
    client: &SpiClient<'_>,
    rv: *mut pg_sys::RangeVar,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: as relid.
    let Some(rel) = (unsafe { relid(rv) }) else {
        return Ok(Vec::new());
    };
    // SAFETY: catalog lookup by oid.
    let ty = unsafe { pg_sys::get_rel_type_id(rel) };
    type_change(client, ty)
}

fn type_change(client: &SpiClient<'_>, ty: pg_sys::Oid) -> Result<Vec<Action>, VsetError> {
    if ty == pg_sys::InvalidOid || !caller_owns_type(client, ty)? {
        return Ok(Vec::new());
    }
    Ok(match tracked_table_using_type(client, ty)? {
        Some(table) => vec![Action::Refuse(VsetError::TypeInUse { table })],
        None => Vec::new(),
    })
}

unsafe fn alter_enum(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::AlterEnumStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree; ADD VALUE changes no existing row.
    unsafe {
        if (*stmt).oldVal.is_null() {
            return Ok(Vec::new());
        }
        let name = pg_sys::makeTypeNameFromNameList((*stmt).typeName);
        let ty = pg_sys::LookupTypeNameOid(std::ptr::null_mut(), name, true);
        type_change(client, ty)
    }
}

unsafe fn rename(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::RenameStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree.
    let (kind, rv, subname) =
        unsafe { ((*stmt).renameType, (*stmt).relation, text((*stmt).subname)) };
    if kind == pg_sys::ObjectType::OBJECT_ATTRIBUTE {
        // SAFETY: the composite type's RangeVar.
        return unsafe { composite_type_change(client, rv) };
    }
    // SAFETY: a RangeVar of the parse tree.
    let Some(rel) = (unsafe { owned_relid(client, rv)? }) else {
        return Ok(Vec::new());
    };
    Ok(match kind {
        // Whatever the statement's name (ALTER TABLE, VIEW, FOREIGN TABLE …).
        pg_sys::ObjectType::OBJECT_COLUMN => tracked_reached_from(client, rel)?
            .iter()
            .filter_map(|owner| column_change(rel, owner, &subname, ColumnChange::Rename))
            .collect(),
        pg_sys::ObjectType::OBJECT_TRIGGER if is_vset_trigger(&subname) => {
            bypass_if_tracked(client, Some(rel), format!("renaming trigger {subname}"))?
        }
        _ => Vec::new(),
    })
}

unsafe fn create_trigger(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::CreateTrigStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree.
    let (replace, name, rv) =
        unsafe { ((*stmt).replace, text((*stmt).trigname), (*stmt).relation) };
    if !replace || !is_vset_trigger(&name) {
        return Ok(Vec::new());
    }
    // SAFETY: a RangeVar of the parse tree.
    let rel = unsafe { relid(rv) };
    bypass_if_tracked(client, rel, format!("CREATE OR REPLACE TRIGGER {name}"))
}

unsafe fn depends(
    client: &SpiClient<'_>,
    stmt: *mut pg_sys::AlterObjectDependsStmt,
) -> Result<Vec<Action>, VsetError> {
    // SAFETY: fields of the statement's parse tree; for a trigger, `object` is a
    // one-element list with its name and `relation` its table.
    let (trigger, rv) = unsafe {
        if (*stmt).objectType != pg_sys::ObjectType::OBJECT_TRIGGER || (*stmt).remove {
            return Ok(Vec::new());
        }
        let names = PgList::<pg_sys::String>::from_pg((*stmt).object as *mut pg_sys::List);
        let Some(last) = names.get_ptr(names.len().saturating_sub(1)) else {
            return Ok(Vec::new());
        };
        (text((*last).sval), (*stmt).relation)
    };
    if !is_vset_trigger(&trigger) {
        return Ok(Vec::new());
    }
    // Dropping that extension would drop vset's trigger with it.
    // SAFETY: a RangeVar of the parse tree.
    let rel = unsafe { relid(rv) };
    bypass_if_tracked(
        client,
        rel,
        format!("ALTER TRIGGER {trigger} … DEPENDS ON EXTENSION"),
    )
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
                let rv = unsafe { pg_sys::makeRangeVarFromNameList(names) };
                // SAFETY: a RangeVar built above.
                let Some(rel) = (unsafe { owned_relid(client, rv)? }) else {
                    continue;
                };
                // A tracked table itself is refused by vset_refuse_dropping_tracked_tables.
                // SAFETY: catalog lookup by oid.
                if !unsafe { pg_sys::get_rel_relispartition(rel) } {
                    continue;
                }
                if let Some(owner) = tracked_owner_of(client, rel)? {
                    if owner.root == rel {
                        continue;
                    }
                    // Its parent is locked first (alone), as DROP does.
                    let parent = as_vset(|| {
                        Ok(client
                            .select(
                                "SELECT inhparent FROM pg_catalog.pg_inherits WHERE inhrelid OPERATOR(pg_catalog.=) $1",
                                Some(1),
                                &[rel.into()],
                            )?
                            .first()
                            .get_one::<pg_sys::Oid>()?)
                    })?;
                    let mut locks: Vec<(pg_sys::Oid, bool)> =
                        parent.into_iter().map(|p| (p, true)).collect();
                    locks.push((rel, false));
                    actions.push(Action::DelEveryRow {
                        locks,
                        rows: rel,
                        root: owner.root,
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
                let Some(rel) = (unsafe { owned_relid(client, table_rv)? }) else {
                    continue;
                };
                if let Some(owner) = tracked_owner_of(client, rel)? {
                    actions.push(Action::Refuse(VsetError::DropVsetTrigger {
                        table: owner.name,
                        trigger,
                    }));
                }
            }
            _ => {}
        }
    }
    Ok(actions)
}
