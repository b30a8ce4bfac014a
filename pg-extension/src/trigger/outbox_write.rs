//! Writes one change record into `vset.outbox`, drawing its version.
//!
//! This is the per-row hot path, so it does not go through SPI (parse/plan/executor
//! startup per row): it forms the heap tuple itself, inserts it with
//! `simple_heap_insert` and maintains the outbox's indexes with `index_insert`, the
//! way PostgreSQL's own catalog code does. It also needs no privileges on the outbox
//! or the sequence: the application role that UPDATEs a tracked table must not need
//! (and does not get) access to the outbox.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTupleDesc;

use crate::error::VsetError;
use crate::pg_internal::{nextval_internal, sequence_options};

/// What a record does to its cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Del,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Del => "del",
        }
    }
}

/// The outbox columns, in order (the contract relays rely on).
const OUTBOX_COLUMNS: [&str; 7] = [
    "id",
    "tbl",
    "cache_key",
    "op",
    "version",
    "payload",
    "created_at",
];

/// Oids of vset's schema objects, looked up per call (syscache hits, cheap) so a
/// dropped and re-created extension is picked up without any cache to invalidate.
pub struct VsetObjects {
    pub outbox: pg_sys::Oid,
    pub version_seq: pg_sys::Oid,
}

pub fn vset_objects() -> Result<VsetObjects, VsetError> {
    // SAFETY: syscache lookups by name; missing objects give InvalidOid.
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"vset".as_ptr(), true);
        if ns == pg_sys::InvalidOid {
            return Err(VsetError::Altered("schema vset"));
        }
        let outbox = pg_sys::get_relname_relid(c"outbox".as_ptr(), ns);
        let version_seq = pg_sys::get_relname_relid(c"version_seq".as_ptr(), ns);
        if outbox == pg_sys::InvalidOid {
            return Err(VsetError::Altered("table vset.outbox"));
        }
        if version_seq == pg_sys::InvalidOid {
            return Err(VsetError::Altered("sequence vset.version_seq"));
        }
        // Versions follow commit order only when every nextval goes to the shared
        // sequence (CACHE 1), grows, and never wraps (invariant 2). ALTER SEQUENCE
        // sends no invalidation to anything vset caches, so look (a syscache hit).
        match sequence_options(version_seq) {
            Some((increment, 1, false)) if increment > 0 => {}
            _ => return Err(VsetError::SequenceAltered),
        }
        Ok(VsetObjects {
            outbox,
            version_seq,
        })
    }
}

/// Draws the next version from `vset.version_seq` (no privilege check).
pub fn next_version(objects: &VsetObjects) -> i64 {
    // SAFETY: the oid names an existing sequence (checked by vset_objects).
    unsafe { nextval_internal(objects.version_seq) }
}

/// Inserts one record and returns its version. `payload` is a text (json) datum.
pub fn write_record(
    objects: &VsetObjects,
    table: pg_sys::Oid,
    cache_key: &str,
    op: Op,
    payload: Option<pg_sys::Datum>,
) -> Result<i64, VsetError> {
    let version = next_version(objects);
    // SAFETY: standard heap/index insertion on a relation we open and lock here;
    // every datum matches the column type checked against OUTBOX_COLUMNS.
    unsafe {
        let rel = pg_sys::table_open(objects.outbox, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        check_shape(desc)?;
        let key_datum = cache_key
            .into_datum()
            .ok_or(VsetError::Altered("cache key datum"))?;
        let op_datum = op
            .as_str()
            .into_datum()
            .ok_or(VsetError::Altered("op datum"))?;
        let mut values = [
            pg_sys::Datum::from(version),
            pg_sys::Datum::from(table.to_u32()),
            key_datum,
            op_datum,
            pg_sys::Datum::from(version),
            payload.unwrap_or(pg_sys::Datum::from(0usize)),
            pg_sys::Datum::from(pg_sys::GetCurrentTransactionStartTimestamp()),
        ];
        let mut nulls = [false, false, false, false, false, payload.is_none(), false];
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::simple_heap_insert(rel, tuple);
        insert_index_entries(rel, tuple, &mut values, &mut nulls)?;
        pg_sys::heap_freetuple(tuple);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
    Ok(version)
}

/// The outbox must still have exactly the contract's columns, in order.
unsafe fn check_shape(desc: pg_sys::TupleDesc) -> Result<(), VsetError> {
    // SAFETY: desc is the open relation's descriptor.
    let tupdesc = unsafe { PgTupleDesc::from_pg_unchecked(desc) };
    if tupdesc.len() != OUTBOX_COLUMNS.len() {
        return Err(VsetError::Altered("table vset.outbox"));
    }
    for (i, expected) in OUTBOX_COLUMNS.iter().enumerate() {
        let Some(att) = tupdesc.get(i) else {
            return Err(VsetError::Altered("table vset.outbox"));
        };
        // SAFETY: attname is a NUL-terminated NameData.
        let name = unsafe { CStr::from_ptr(att.attname.data.as_ptr()) };
        if att.attisdropped || name.to_bytes() != expected.as_bytes() {
            return Err(VsetError::Altered("table vset.outbox"));
        }
    }
    Ok(())
}

/// `index_insert` into every index of the outbox (normally just the primary key).
unsafe fn insert_index_entries(
    rel: pg_sys::Relation,
    tuple: pg_sys::HeapTuple,
    values: &mut [pg_sys::Datum; 7],
    nulls: &mut [bool; 7],
) -> Result<(), VsetError> {
    // SAFETY: rel is open with RowExclusiveLock; list and index structs come from
    // the relcache and are only read.
    unsafe {
        let list = pg_sys::RelationGetIndexList(rel);
        let n = if list.is_null() { 0 } else { (*list).length };
        for i in 0..n {
            let index_oid = pg_sys::list_nth_oid(list, i);
            let index = pg_sys::index_open(index_oid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
            let info = pg_sys::BuildIndexInfo(index);
            if !(*info).ii_Expressions.is_null() || !(*info).ii_Predicate.is_null() {
                return Err(VsetError::Altered(
                    "indexes of vset.outbox (expression or partial index)",
                ));
            }
            let natts = (*info).ii_NumIndexAttrs as usize;
            let mut ivalues = [pg_sys::Datum::from(0usize); pg_sys::INDEX_MAX_KEYS as usize];
            let mut inulls = [false; pg_sys::INDEX_MAX_KEYS as usize];
            for k in 0..natts.min(pg_sys::INDEX_MAX_KEYS as usize) {
                let attno = (*info).ii_IndexAttrNumbers[k] as usize;
                if attno == 0 || attno > values.len() {
                    return Err(VsetError::Altered("indexes of vset.outbox"));
                }
                ivalues[k] = values[attno - 1];
                inulls[k] = nulls[attno - 1];
            }
            let check = if (*info).ii_Unique {
                pg_sys::IndexUniqueCheck::UNIQUE_CHECK_YES
            } else {
                pg_sys::IndexUniqueCheck::UNIQUE_CHECK_NO
            };
            // PostgreSQL 14 added the `indexUnchanged` hint (false: a new tuple).
            #[cfg(not(feature = "pg13"))]
            pg_sys::index_insert(
                index,
                ivalues.as_mut_ptr(),
                inulls.as_mut_ptr(),
                &mut (*tuple).t_self,
                rel,
                check,
                false,
                info,
            );
            #[cfg(feature = "pg13")]
            pg_sys::index_insert(
                index,
                ivalues.as_mut_ptr(),
                inulls.as_mut_ptr(),
                &mut (*tuple).t_self,
                rel,
                check,
                info,
            );
            pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        }
    }
    Ok(())
}
