//! `del` records for every row of a table under a template it is leaving: when
//! `vset.untrack` stops maintaining its keys, or `vset.track(…, replace => true)`
//! changes its template or payload columns. Without them, every key cached under
//! the old template (or with the old payload shape) would stay as it was, and be
//! served stale for as long as Redis keeps it; with them, the relay deletes each
//! (raising its floor) and the next read fills it the new way.
//!
//! The table is locked `SHARE ROW EXCLUSIVE` first (writers wait until the
//! transaction ends, readers do not): a write committed during the scan would
//! otherwise be missed, and its key left cached after the trigger is gone. The lock
//! only helps if the scan's snapshot is taken after it, so this refuses to run in a
//! REPEATABLE READ or SERIALIZABLE transaction.
//!
//! One record per row, written with the capture trigger's own writer and rendering
//! settings; rows are read through a cursor in batches, each batch's tuples freed
//! and each row's allocations made in a context reset per batch, so a large table
//! costs time and outbox space (one `del` per row), not memory.

use std::ffi::CString;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, SpiClient};
use pgrx::PgMemoryContexts;

use crate::canonical::CanonicalOutput;
use crate::catalog::namespaces::column_types;
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::Tracked;
use crate::error::VsetError;
use crate::trigger::key::KeyTemplate;
use crate::trigger::outbox_write::{vset_objects, write_record, Op};
use crate::wakeup;

/// Rows read per cursor fetch.
const BATCH: i64 = 10_000;

/// What [`del_every_row`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retired {
    /// This many `del` records were written.
    Deleted(u64),
    /// The template names a column the table no longer has (renamed or dropped
    /// after `track`): no key can be rendered; the caller warns.
    Unrenderable { column: String },
}

/// Writes a `del` for the key of every row of `table` under `tracked`'s template, as
/// records of `record_table` (the tracked table: `table` itself, or the root when
/// `table` is one of its partitions). Run as the extension owner, so row-level
/// security hides no row.
pub fn del_every_row(
    client: &mut SpiClient<'_>,
    table: &TableInfo,
    record_table: pg_sys::Oid,
    tracked: &Tracked,
) -> Result<Retired, VsetError> {
    let (tbl, qualified) = (table.oid, table.qualified.as_str());
    // SAFETY: reads the backend's isolation level.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        return Err(VsetError::NeedsReadCommitted {
            table: qualified.to_string(),
        });
    }
    let template =
        KeyTemplate::parse(&tracked.key_template).map_err(|source| VsetError::Template {
            template: tracked.key_template.clone(),
            source,
        })?;
    let types = column_types(client, tbl, template.columns())?;
    if let Some((column, _)) = template
        .columns()
        .iter()
        .zip(types)
        .find(|(_, ty)| *ty == pg_sys::InvalidOid)
    {
        return Ok(Retired::Unrenderable {
            column: column.clone(),
        });
    }
    client.update(
        &format!("LOCK TABLE {qualified} IN SHARE ROW EXCLUSIVE MODE"),
        None,
        &[],
    )?;
    let columns: Vec<String> = template
        .columns()
        .iter()
        .map(|c| {
            let c = quote_identifier(c);
            format!("CASE WHEN t.{c} IS NULL THEN NULL ELSE pg_catalog.format('%s', t.{c}) END")
        })
        .collect();
    let query = format!(
        "SELECT {} FROM {} t",
        columns.join(", "),
        table.rows_source()
    );
    let channel = CString::new(tracked.channel.clone())
        .map_err(|_| VsetError::BadChannel(tracked.channel.clone()))?;
    let objects = vset_objects()?;
    let _canonical = CanonicalOutput::enter();
    let mut per_batch = PgMemoryContexts::new("vset retire");
    let mut cursor = client.try_open_cursor(query.as_str(), &[])?;
    let mut written = 0u64;
    loop {
        let batch = cursor.fetch(BATCH)?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            let mut parts = Vec::with_capacity(columns.len());
            for i in 1..=columns.len() {
                parts.push(row.get::<String>(i)?);
            }
            // A NULL key column never had a key (capture refuses to render one).
            let Some(parts) = parts.into_iter().collect::<Option<Vec<String>>>() else {
                continue;
            };
            let key = template.render(&parts);
            // SAFETY: the record's datums live only for the insert.
            unsafe {
                per_batch
                    .switch_to(|_| write_record(&objects, record_table, &key, Op::Del, None))?;
            }
            written += 1;
        }
        // SAFETY: the batch (and every row read from it) is gone; SPI_tuptable is the
        // table that fetch returned (nothing above runs SPI). Without this, SPI keeps
        // every batch until the function returns.
        unsafe {
            pg_sys::SPI_freetuptable(pg_sys::SPI_tuptable);
            pg_sys::SPI_tuptable = std::ptr::null_mut();
            per_batch.reset();
        }
    }
    if written > 0 {
        wakeup::record_written(&channel);
    }
    Ok(Retired::Deleted(written))
}

/// NOTICE (keys deleted) or WARNING (none could be rendered) after [`del_every_row`].
pub fn report_retired(table: &str, what: &str, retired: Retired) {
    match retired {
        Retired::Deleted(n) => notice!(
            "vset: {table} {what}: {n} del record(s) written for the keys cached the old way"
        ),
        Retired::Unrenderable { column } => warning!(
            "vset: {table} {what}, but its key column {column:?} no longer exists, so its cached keys could not be deleted: delete them in Redis yourself (they will not change again)"
        ),
    }
}
