//! `vset.fill(tbl, VARIADIC key)`: the read-miss path. Returns the current row's
//! cache key, a fresh version and the payload, or no row when the row does not exist.
//!
//! The row is read by the caller (its SELECT privilege and row-level security
//! apply), the version it read is locked `FOR SHARE` by the extension owner (so a
//! role with SELECT only can fill), read again by the caller, and the version is
//! drawn *after* the lock is held (invariant 6): a writer that committed earlier drew a smaller version, and a
//! writer that commits later must wait for this lock (until the caller's transaction
//! ends) before it can draw its own, larger one. So `VSET key version payload` with
//! the result can never overwrite a newer committed change.
//!
//! Key values are given as text in the order of the key template's placeholders
//! (for the default template: the primary key columns in index order) and are cast
//! to the column types (without typmod, so nothing is silently truncated).

use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, SpiClient};

use crate::canonical::CanonicalOutput;
use crate::catalog::owner::{as_extension_owner, with_pinned_search_path};
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::Tracked;
use crate::error::{OrRaise, VsetError};
use crate::trigger::key::KeyTemplate;
use crate::trigger::outbox_write::{next_version, vset_objects};

/// How often a fill retries when the row changes between its read and its lock.
const FILL_ATTEMPTS: usize = 20;

#[pg_extern(name = "_fill")]
fn fill_internal(
    tbl: Option<pg_sys::Oid>,
    key: Option<Vec<Option<String>>>,
) -> TableIterator<
    'static,
    (
        name!(cache_key, String),
        name!(version, i64),
        name!(payload, Option<String>),
    ),
> {
    let row = Spi::connect_mut(|client| {
        fill(
            client,
            tbl.ok_or(VsetError::NullArgument { what: "tbl" })?,
            key.unwrap_or_default(),
        )
    })
    .or_raise();
    TableIterator::new(row)
}

fn fill(
    client: &mut SpiClient<'_>,
    tbl: pg_sys::Oid,
    key: Vec<Option<String>>,
) -> Result<Option<(String, i64, Option<String>)>, VsetError> {
    // What vset reads about the table is read under a pinned search_path; the row
    // query below runs under the caller's (its key type's operators may live in
    // the caller's schemas, e.g. citext).
    let (info, tracked) = with_pinned_search_path(|| {
        let info = TableInfo::load(client, tbl)?;
        let tracked = Tracked::load(client, tbl)?.ok_or_else(|| VsetError::NotTracked {
            table: info.qualified.clone(),
        })?;
        Ok::<_, VsetError>((info, tracked))
    })?;
    if key.len() != tracked.key_columns.len() {
        return Err(VsetError::KeyArity {
            table: info.qualified,
            expected: tracked.key_columns.len(),
            got: key.len(),
            columns: tracked.key_columns.join(", "),
        });
    }
    let template =
        KeyTemplate::parse(&tracked.key_template).map_err(|source| VsetError::Template {
            template: tracked.key_template.clone(),
            source,
        })?;

    // Column types for the casts, from the catalog (names are quoted on output).
    let mut conditions = Vec::new();
    let mut key_exprs = Vec::new();
    for (i, col) in tracked.key_columns.iter().enumerate() {
        // format_type under the pinned path qualifies every type not in pg_catalog.
        let ty = with_pinned_search_path(|| {
            client
                .select(
                    "SELECT pg_catalog.format_type(atttypid, NULL) FROM pg_catalog.pg_attribute
                      WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attname OPERATOR(pg_catalog.=) $2
                        AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped",
                    Some(1),
                    &[tbl.into(), col.clone().into()],
                )?
                .first()
                .get_one::<String>()
        })?
        .ok_or_else(|| VsetError::UnknownColumn {
            table: info.qualified.clone(),
            column: col.clone(),
        })?;
        if key[i].is_none() {
            return Err(VsetError::NullArgument {
                what: "a key value",
            });
        }
        conditions.push(format!("t.{} = ${}::{}", quote_identifier(col), i + 1, ty));
        key_exprs.push(format!(
            "pg_catalog.format('%s', t.{})",
            quote_identifier(col)
        ));
    }
    let payload_expr = match &tracked.columns {
        None => "pg_catalog.row_to_json(t)::text".to_string(),
        Some(cols) => format!(
            "(SELECT pg_catalog.row_to_json(p)::text FROM (SELECT {}) p)",
            cols.iter()
                .map(|c| format!("t.{}", quote_identifier(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // Read as the caller (its SELECT privilege and row-level security apply), lock
    // the version it read as the extension owner (FOR SHARE needs UPDATE privilege,
    // which a read-only API role does not have), then read it again as the caller.
    let read = format!(
        "SELECT {}, t.ctid::text, {} FROM {} t WHERE {}",
        payload_expr,
        key_exprs.join(", "),
        info.qualified,
        conditions.join(" AND ")
    );
    let lock = format!(
        "SELECT 1 FROM {} t WHERE t.ctid OPERATOR(pg_catalog.=) $1::pg_catalog.tid FOR SHARE OF t",
        info.qualified
    );
    let args: Vec<pgrx::datum::DatumWithOid> = key
        .iter()
        .map(|k| k.clone().unwrap_or_default().into())
        .collect();
    // Keys and payload in the same fixed settings the capture trigger renders in.
    let canonical = CanonicalOutput::enter();
    for _ in 0..FILL_ATTEMPTS {
        // `update`, not `select`: a read-write SPI call takes a fresh snapshot in READ
        // COMMITTED, so the second read sees the version the lock holds.
        let first = client.update(&read, Some(1), &args)?;
        if first.is_empty() {
            return Ok(None);
        }
        let seen: Option<String> = first.first().get::<String>(2)?;
        let Some(seen) = seen else {
            return Ok(None);
        };
        let locked = as_extension_owner(|| {
            Ok::<_, VsetError>(
                !client
                    .update(&lock, Some(1), &[seen.clone().into()])?
                    .is_empty(),
            )
        })?;
        if !locked {
            // Changed between the read and the lock (or deleted): read it again.
            continue;
        }
        // Nobody can change that version until this transaction ends.
        let row = client.update(&read, Some(1), &args)?;
        if row.is_empty() {
            return Ok(None);
        }
        let row = row.first();
        if row.get::<String>(2)?.as_deref() != Some(seen.as_str()) {
            continue;
        }
        let payload = row.get::<String>(1)?;
        let mut parts = Vec::with_capacity(key_exprs.len());
        for i in 0..key_exprs.len() {
            parts.push(row.get::<String>(i + 3)?.unwrap_or_default());
        }
        drop(canonical);
        // The row lock is held now: only now draw the version.
        let version = next_version(&vset_objects()?);
        return Ok(Some((template.render(&parts), version, payload)));
    }
    Err(VsetError::FillContended {
        table: info.qualified,
        attempts: FILL_ATTEMPTS,
    })
}
