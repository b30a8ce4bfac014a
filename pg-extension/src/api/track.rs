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

use crate::catalog::ddl_guard::own_ddl;
use crate::catalog::keys::{describe, usable_keys};
use crate::catalog::namespaces::{check_key_types, refuse_overlapping_keys};
use crate::catalog::owner::{as_extension_owner, caller, with_pinned_search_path};
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::{Mode, Tracked};
use crate::error::{OrRaise, VsetError};
use crate::trigger::key::KeyTemplate;
use crate::trigger::retire::{del_every_row, report_retired};

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
        with_pinned_search_path(|| {
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
    match info.persistence.as_str() {
        // A temporary table vanishes with its session (no sql_drop event, so its
        // catalog row would stay); an unlogged one is emptied by crash recovery
        // without a record, leaving every cached row stale.
        "t" => {
            return Err(VsetError::NotDurable {
                table: info.qualified,
                kind: "temporary",
                remedy: "use an ordinary table",
            })
        }
        "u" => {
            return Err(VsetError::NotDurable {
                table: info.qualified,
                kind: "unlogged",
                remedy: "ALTER TABLE … SET LOGGED first",
            })
        }
        _ => {}
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

    // Serialises tracks, so two of them cannot both pass the check below.
    client.update(
        "LOCK TABLE vset.tracked IN SHARE ROW EXCLUSIVE MODE",
        None,
        &[],
    )?;
    check_key_types(client, info.oid, &info.qualified, template.columns())?;
    refuse_overlapping_keys(client, info.oid, &info.qualified, &template, caller)?;

    let tracked = Tracked {
        key_template: template.to_string(),
        key_columns: template.columns().to_vec(),
        columns: payload_columns,
        mode,
        channel: channel.to_string(),
    };
    let partitions = info.partitions(client)?;

    if let Some(old) = &existing {
        // Entries cached under the old template or payload columns would never be
        // touched again: delete them (a re-track that keeps both writes nothing).
        if !old.same_cache_entries(&tracked) {
            report_retired(
                &info.qualified,
                "changed how it is tracked",
                del_every_row(client, info, tbl, old)?,
            );
        }
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
    // PostgreSQL checks EXECUTE on a row trigger's function when it clones the
    // trigger onto a new partition (CREATE TABLE … PARTITION OF, ATTACH PARTITION),
    // as the role doing it: the table's owner must keep being able to add partitions.
    // (capture() itself refuses any trigger track did not install.)
    // Granted only when missing: a GRANT rewrites the function's catalog row, which
    // concurrent tracks would then queue on.
    let lacking = client.select(
        "SELECT pg_catalog.pg_get_userbyid(relowner)::text FROM pg_catalog.pg_class
          WHERE oid OPERATOR(pg_catalog.=) $1
            AND NOT pg_catalog.has_function_privilege(relowner, 'vset.capture()', 'EXECUTE')",
        Some(1),
        &[tbl.into()],
    )?;
    if let Some(owner) = lacking
        .into_iter()
        .next()
        .map(|r| r.get::<String>(1))
        .transpose()?
        .flatten()
    {
        client.update(
            &format!(
                "GRANT EXECUTE ON FUNCTION vset.capture() TO {}",
                quote_identifier(&owner)
            ),
            None,
            &[],
        )?;
    }
    Ok(tracked.key_template)
}

/// Drops vset's triggers from a table and the given partitions (quoted names); the
/// DDL guard lets this through (it refuses anyone else's DROP TRIGGER of them).
pub fn drop_triggers(
    client: &mut SpiClient<'_>,
    qualified: &str,
    partitions: &[String],
) -> Result<(), VsetError> {
    own_ddl(|| drop_triggers_unguarded(client, qualified, partitions))
}

fn drop_triggers_unguarded(
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
        with_pinned_search_path(|| {
            let tbl = tbl.ok_or(VsetError::NullArgument { what: "tbl" })?;
            let info = TableInfo::load(client, tbl)?;
            if !info.owned {
                return Err(VsetError::NotOwner {
                    table: info.qualified,
                });
            }
            as_extension_owner(|| {
                let Some(tracked) = Tracked::load(client, tbl)? else {
                    return Err(VsetError::NotTracked {
                        table: info.qualified.clone(),
                    });
                };
                // Nothing maintains its keys from now on: delete them from the cache.
                report_retired(
                    &info.qualified,
                    "untracked",
                    del_every_row(client, &info, tbl, &tracked)?,
                );
                let partitions = info.partitions(client)?;
                drop_triggers(client, &info.qualified, &partitions)?;
                Tracked::delete(client, tbl)
            })
        })
    })
    .or_raise()
}
