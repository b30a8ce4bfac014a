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

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::spi::{quote_identifier, SpiClient, SpiTupleTable};
use pgrx::PgOid;

use crate::canonical::CanonicalOutput;
use crate::catalog::owner::{as_extension_owner, with_pinned_search_path};
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::Tracked;
use crate::error::{OrRaise, VsetError};
use crate::trigger::key::KeyTemplate;
use crate::trigger::outbox_write::{next_version, vset_objects};

/// How often a fill retries when the row changes between its read and its lock.
const FILL_ATTEMPTS: usize = 20;

/// What a fill of one table needs, prepared once per backend: after a cold start
/// every read is a fill, so the per-call work is one execution of a saved plan and
/// a `nextval`. Used only for callers who may lock rows themselves (the read-only
/// path is built per call). Dropped when the table changes (a relcache invalidation:
/// `track`/`untrack` create or drop its trigger, DDL); the plan cache re-plans a
/// saved plan itself when `search_path` or the role it depends on changes.
struct FillPlan {
    qualified: String,
    template: KeyTemplate,
    key_columns: Vec<String>,
    read_and_lock: OwnedPreparedStatement,
}

thread_local! {
    static FILL_PLANS: RefCell<HashMap<u32, Rc<FillPlan>>> = RefCell::new(HashMap::new());
}

unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    FILL_PLANS.with(|p| {
        if let Ok(mut plans) = p.try_borrow_mut() {
            if relid == pg_sys::InvalidOid {
                plans.clear();
            } else {
                plans.remove(&relid.to_u32());
            }
        }
    });
}

/// Called once per backend from `_PG_init`.
pub fn register_invalidation() {
    // SAFETY: registering a static callback once per backend.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0usize))
    };
}

type Filled = (String, i64, Option<String>);

/// The key values given must be one non-NULL text per placeholder; as SQL arguments.
fn key_arguments<'a>(
    qualified: &str,
    key_columns: &[String],
    key: &'a [Option<String>],
) -> Result<Vec<pgrx::datum::DatumWithOid<'a>>, VsetError> {
    if key.len() != key_columns.len() {
        return Err(VsetError::KeyArity {
            table: qualified.to_string(),
            expected: key_columns.len(),
            got: key.len(),
            columns: key_columns.join(", "),
        });
    }
    key.iter()
        .map(|k| {
            k.clone().map(Into::into).ok_or(VsetError::NullArgument {
                what: "a key value",
            })
        })
        .collect()
}

/// The fill of a row read (columns: payload, ctid, the key columns' text, then its
/// xmin) whose version is locked: its key, a version drawn now (after the lock), its
/// payload. A row this transaction inserted or updated is refused: its value is not
/// committed (and may never be), yet the version drawn now would be newer than the
/// one its own capture draws at commit order, so a rollback would leave it cached.
fn filled(
    row: &SpiTupleTable<'_>,
    template: &KeyTemplate,
    qualified: &str,
) -> Result<Filled, VsetError> {
    let payload = row.get::<String>(1)?;
    let n = template.columns().len();
    let mut parts = Vec::with_capacity(n);
    for i in 0..n {
        parts.push(row.get::<String>(i + 3)?.unwrap_or_default());
    }
    let objects = vset_objects()?;
    let xmin = row
        .get::<String>(n + 3)?
        .and_then(|x| x.parse::<u32>().ok())
        .ok_or(VsetError::Altered("the row's xmin"))?;
    // SAFETY: a transaction id read from the row just locked.
    if unsafe { pg_sys::TransactionIdIsCurrentTransactionId(pg_sys::TransactionId::from(xmin)) } {
        return Err(VsetError::FillOfOwnChange {
            table: qualified.to_string(),
        });
    }
    let version = next_version(&objects);
    Ok((template.render(&parts), version, payload))
}

/// Runs a prepared fill: the caller may lock rows (checked per call).
fn fill_prepared(
    client: &mut SpiClient<'_>,
    plan: &FillPlan,
    key: &[Option<String>],
) -> Result<Option<Filled>, VsetError> {
    let args = key_arguments(&plan.qualified, &plan.key_columns, key)?;
    let _canonical = CanonicalOutput::enter();
    let table = client.update(&plan.read_and_lock, Some(1), &args)?;
    if table.is_empty() {
        return Ok(None);
    }
    filled(&table.first(), &plan.template, &plan.qualified).map(Some)
}

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
) -> Result<Option<Filled>, VsetError> {
    // SAFETY: reads the recovery flag.
    if unsafe { pg_sys::RecoveryInProgress() } {
        // Versions come from the primary's sequence, and the row lock that orders a
        // fill against writers exists only there.
        return Err(VsetError::FillOnStandby);
    }
    // SAFETY: an ACL check of the calling role.
    let may_lock = unsafe {
        pg_sys::pg_class_aclcheck(
            tbl,
            pg_sys::GetUserId(),
            pg_sys::ACL_UPDATE as pg_sys::AclMode,
        )
    } == pg_sys::AclResult::ACLCHECK_OK;
    if may_lock {
        if let Some(plan) = FILL_PLANS.with(|p| p.borrow().get(&tbl.to_u32()).cloned()) {
            return fill_prepared(client, &plan, &key);
        }
    }
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
    let args = key_arguments(&info.qualified, &tracked.key_columns, &key)?;
    let template =
        KeyTemplate::parse(&tracked.key_template).map_err(|source| VsetError::Template {
            template: tracked.key_template.clone(),
            source,
        })?;

    // Column types for the casts, from the catalog (names are quoted on output).
    let mut conditions = Vec::new();
    let mut key_exprs = Vec::new();
    for (i, col) in tracked.key_columns.iter().enumerate() {
        // (NULL key values were refused with the arity above.)
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
    // A caller without UPDATE privilege (a read-only API role): read as the caller
    // (its SELECT privilege and row-level security apply), lock the version it read
    // as the extension owner (FOR SHARE needs UPDATE privilege), then read it again
    // as the caller.
    let read = format!(
        "SELECT {}, t.ctid::text, {}, t.xmin::text FROM {} t WHERE {}",
        payload_expr,
        key_exprs.join(", "),
        info.rows_source(),
        conditions.join(" AND ")
    );
    let lock = format!(
        "SELECT 1 FROM {} t WHERE t.ctid OPERATOR(pg_catalog.=) $1::pg_catalog.tid FOR SHARE OF t",
        info.rows_source()
    );
    if may_lock {
        // The caller may lock rows itself: one statement reads and locks. Prepared
        // and kept for the next fills of this table.
        let text_args = vec![PgOid::from(pg_sys::TEXTOID); key.len()];
        let plan = Rc::new(FillPlan {
            qualified: info.qualified.clone(),
            template,
            key_columns: tracked.key_columns.clone(),
            read_and_lock: client
                .prepare_mut(format!("{read} FOR SHARE OF t").as_str(), &text_args)?
                .keep(),
        });
        FILL_PLANS.with(|p| {
            if let Ok(mut plans) = p.try_borrow_mut() {
                plans.insert(tbl.to_u32(), plan.clone());
            }
        });
        return fill_prepared(client, &plan, &key);
    }
    // Keys and payload in the same fixed settings the capture trigger renders in.
    let _canonical = CanonicalOutput::enter();
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
        return filled(&row, &template, &info.qualified).map(Some);
    }
    Err(VsetError::FillContended {
        table: info.qualified,
        attempts: FILL_ATTEMPTS,
    })
}
