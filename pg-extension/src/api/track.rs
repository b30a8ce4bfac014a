//! `vset.track(tbl, key_template, columns, mode, channel, replace)`: start capturing
//! a table. Validates everything first (so a refusal changes nothing), then installs
//! the capture trigger and the TRUNCATE guard and records the table in `vset.tracked`.
//!
//! Partitioned tables: track the partitioned (root) table. Its row trigger is cloned
//! by PostgreSQL onto every partition, present and future, and records name the root
//! table. The TRUNCATE guard is put on the root and on the partitions that exist at
//! track time (re-run with `replace => true` after attaching partitions). Tracking a
//! partition itself is refused with a pointer to the root.

use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal, SpiClient};

use crate::catalog::keys::{describe, usable_keys};
use crate::catalog::owner::{as_extension_owner, caller};
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::{Mode, Tracked};
use crate::error::{OrRaise, VsetError};
use crate::trigger::key::KeyTemplate;
use crate::trigger::key_namespace::{can_overlap, ValueClass};

/// Name of the row trigger vset installs.
pub const CAPTURE_TRIGGER: &str = "vset_capture";
/// Name of the statement trigger that refuses TRUNCATE.
pub const TRUNCATE_TRIGGER: &str = "vset_no_truncate";

/// Internal entry point of `vset.track` (the SQL wrapper gives it `regclass` and defaults).
#[pg_extern(name = "_track")]
fn track_internal(
    tbl: Option<pg_sys::Oid>,
    key_template: Option<String>,
    columns: Option<Vec<Option<String>>>,
    mode: Option<String>,
    channel: Option<String>,
    replace: Option<bool>,
) -> String {
    Spi::connect_mut(|client| {
        track(
            client,
            tbl.ok_or(VsetError::NullArgument { what: "tbl" })?,
            key_template,
            columns,
            mode.as_deref().unwrap_or("set"),
            channel.as_deref().unwrap_or("vset"),
            replace.unwrap_or(false),
        )
    })
    .or_raise()
}

fn track(
    client: &mut SpiClient<'_>,
    tbl: pg_sys::Oid,
    key_template: Option<String>,
    columns: Option<Vec<Option<String>>>,
    mode: &str,
    channel: &str,
    replace: bool,
) -> Result<String, VsetError> {
    let mode = Mode::parse(mode)?;
    if channel.is_empty() || channel.len() > 63 || channel.contains('\0') {
        return Err(VsetError::BadChannel(channel.to_string()));
    }
    let info = TableInfo::load(client, tbl)?;
    if info.is_reserved() {
        return Err(VsetError::ReservedTable {
            table: info.qualified,
        });
    }
    if let Some(root) = info.partition_root.clone() {
        return Err(VsetError::IsPartition {
            table: info.qualified,
            root,
        });
    }
    if !info.is_trackable_kind() {
        return Err(VsetError::NotATable {
            kind: info.kind_name(),
            table: info.qualified,
        });
    }
    if !info.owned {
        return Err(VsetError::NotOwner {
            table: info.qualified,
        });
    }
    // The caller owns the table: the rest (trigger, catalog row) is the extension's.
    let caller = caller();
    as_extension_owner(|| {
        track_owned(
            client,
            &info,
            key_template,
            columns,
            mode,
            channel,
            replace,
            caller,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn track_owned(
    client: &mut SpiClient<'_>,
    info: &TableInfo,
    key_template: Option<String>,
    columns: Option<Vec<Option<String>>>,
    mode: Mode,
    channel: &str,
    replace: bool,
    caller: pg_sys::Oid,
) -> Result<String, VsetError> {
    let tbl = info.oid;
    let existing = Tracked::load(client, tbl)?;
    if existing.is_some() && !replace {
        return Err(VsetError::AlreadyTracked {
            table: info.qualified.clone(),
        });
    }

    let table_columns = info.columns(client)?;
    let keys = usable_keys(client, tbl)?;
    let template_text = match key_template {
        Some(t) => t,
        None => {
            let key = keys.first().ok_or_else(|| VsetError::NoUniqueKey {
                table: info.qualified.clone(),
            })?;
            KeyTemplate::default_for(&info.schema, &info.name, &key.columns)
        }
    };
    let template = KeyTemplate::parse(&template_text).map_err(|source| VsetError::Template {
        template: template_text.clone(),
        source,
    })?;
    for c in template.columns() {
        if !table_columns.contains(c) {
            return Err(VsetError::UnknownColumn {
                table: info.qualified.clone(),
                column: c.clone(),
            });
        }
    }
    if !keys.iter().any(|k| k.same_columns(template.columns())) {
        if keys.is_empty() {
            return Err(VsetError::NoUniqueKey {
                table: info.qualified.clone(),
            });
        }
        return Err(VsetError::KeyNotUnique {
            table: info.qualified.clone(),
            used: template.columns().join(", "),
            candidates: describe(&keys),
        });
    }

    let payload_columns = match columns {
        None => None,
        Some(list) => {
            if list.is_empty() {
                return Err(VsetError::EmptyColumns);
            }
            let mut out: Vec<String> = Vec::with_capacity(list.len());
            for c in list {
                let c = c.ok_or(VsetError::NullArgument {
                    what: "a column name",
                })?;
                if !table_columns.contains(&c) {
                    return Err(VsetError::UnknownColumn {
                        table: info.qualified.clone(),
                        column: c,
                    });
                }
                if out.contains(&c) {
                    return Err(VsetError::DuplicateColumn { column: c });
                }
                out.push(c);
            }
            Some(out)
        }
    };

    refuse_overlapping_keys(client, info, &template, caller)?;

    let tracked = Tracked {
        key_template: template.to_string(),
        key_columns: template.columns().to_vec(),
        columns: payload_columns,
        mode,
        channel: channel.to_string(),
    };
    let partitions = info.partitions(client)?;

    if existing.is_some() {
        drop_triggers(client, &info.qualified, &partitions)?;
        Tracked::delete(client, tbl)?;
    }
    let args = tracked
        .trigger_args()
        .iter()
        .map(quote_literal)
        .collect::<Vec<_>>()
        .join(", ");
    client.update(
        &format!(
            "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION vset.capture({})",
            quote_identifier(CAPTURE_TRIGGER),
            info.qualified,
            args
        ),
        None,
        &[],
    )?;
    for target in std::iter::once(&info.qualified).chain(partitions.iter()) {
        client.update(
            &format!(
                "CREATE TRIGGER {} BEFORE TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION vset.refuse_truncate()",
                quote_identifier(TRUNCATE_TRIGGER),
                target
            ),
            None,
            &[],
        )?;
    }
    tracked.insert(client, tbl)?;
    Ok(tracked.key_template)
}

/// Value classes of `columns` of table `tbl`, in that order.
fn value_classes(
    client: &SpiClient<'_>,
    tbl: pg_sys::Oid,
    columns: &[String],
) -> Result<Vec<ValueClass>, VsetError> {
    let mut out = Vec::with_capacity(columns.len());
    for c in columns {
        let ty = client
            .select(
                "SELECT ty.typname::text FROM pg_catalog.pg_attribute a
                   JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                  WHERE a.attrelid = $1 AND a.attname = $2 AND NOT a.attisdropped",
                Some(1),
                &[tbl.into(), c.clone().into()],
            )?
            .first()
            .get_one::<String>()?;
        out.push(ValueClass::of_type(ty.as_deref().unwrap_or("")));
    }
    Ok(out)
}

/// Refuses `template` for `info` when another tracked table's template can render
/// one of its keys (see [`crate::trigger::key_namespace`]). Runs as the extension
/// owner, so it sees every tracked table; it names the other table only to a caller
/// who may read it.
fn refuse_overlapping_keys(
    client: &SpiClient<'_>,
    info: &TableInfo,
    template: &KeyTemplate,
    caller: pg_sys::Oid,
) -> Result<(), VsetError> {
    let ours = value_classes(client, info.oid, template.columns())?;
    let others = client.select(
        "SELECT t.tbl::oid, t.tbl::text, t.key_template, t.key_columns,
                pg_catalog.has_table_privilege($2, t.tbl::oid, 'SELECT') IS TRUE
           FROM vset.tracked t WHERE t.tbl::oid <> $1",
        None,
        &[info.oid.into(), caller.into()],
    )?;
    let mut rows = Vec::new();
    for row in others {
        rows.push((
            row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
            row.get::<String>(2)?.unwrap_or_default(),
            row.get::<String>(3)?.unwrap_or_default(),
            row.get::<Vec<String>>(4)?.unwrap_or_default(),
            row.get::<bool>(5)?.unwrap_or(false),
        ));
    }
    for (oid, name, other_text, other_columns, visible) in rows {
        // A template that no longer parses cannot capture either; nothing to guard.
        let Ok(other) = KeyTemplate::parse(&other_text) else {
            continue;
        };
        let theirs = value_classes(client, oid, &other_columns)?;
        if can_overlap(template, &ours, &other, &theirs) {
            return Err(VsetError::KeyOverlap {
                table: info.qualified.clone(),
                template: template.to_string(),
                other: if visible {
                    format!("{name} (template {other_text:?})")
                } else {
                    "that of a tracked table you may not read".into()
                },
            });
        }
    }
    Ok(())
}

/// Drops vset's triggers from a table and the given partitions (quoted names).
pub fn drop_triggers(
    client: &mut SpiClient<'_>,
    qualified: &str,
    partitions: &[String],
) -> Result<(), VsetError> {
    client.update(
        &format!(
            "DROP TRIGGER IF EXISTS {} ON {}",
            quote_identifier(CAPTURE_TRIGGER),
            qualified
        ),
        None,
        &[],
    )?;
    for target in std::iter::once(&qualified.to_string()).chain(partitions.iter()) {
        client.update(
            &format!(
                "DROP TRIGGER IF EXISTS {} ON {}",
                quote_identifier(TRUNCATE_TRIGGER),
                target
            ),
            None,
            &[],
        )?;
    }
    Ok(())
}

/// Internal entry point of `vset.untrack`.
#[pg_extern(name = "_untrack")]
fn untrack_internal(tbl: Option<pg_sys::Oid>) {
    Spi::connect_mut(|client| {
        let tbl = tbl.ok_or(VsetError::NullArgument { what: "tbl" })?;
        let info = TableInfo::load(client, tbl)?;
        if !info.owned {
            return Err(VsetError::NotOwner {
                table: info.qualified,
            });
        }
        as_extension_owner(|| {
            if Tracked::load(client, tbl)?.is_none() {
                return Err(VsetError::NotTracked {
                    table: info.qualified.clone(),
                });
            }
            let partitions = info.partitions(client)?;
            drop_triggers(client, &info.qualified, &partitions)?;
            Tracked::delete(client, tbl)
        })
    })
    .or_raise()
}
