//! Writes one change record into `vset.outbox`, drawing its version.
//!
//! This is the per-row hot path, so it does not go through SPI (parse/plan/executor
//! startup per row): it forms the heap tuple itself, inserts it with
//! `simple_heap_insert` and maintains the outbox's indexes with `index_insert`, the
//! way PostgreSQL's own catalog code does. What does not change between rows (the
//! objects' oids, the sequence check, the index list and `IndexInfo`s, the shape
//! check) is cached per backend and dropped by invalidation callbacks. It also needs no privileges on the outbox
//! or the sequence: the application role that UPDATEs a tracked table must not need
//! (and does not get) access to the outbox.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::rc::Rc;

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

/// Oids of vset's schema objects.
#[derive(Debug, Clone, Copy)]
pub struct VsetObjects {
    pub outbox: pg_sys::Oid,
    pub version_seq: pg_sys::Oid,
}

/// The outbox's indexes with their `IndexInfo`, built once per backend in their own
/// memory context (deleted when the last user of a replaced cache lets go).
struct OutboxIndexes {
    context: pg_sys::MemoryContext,
    entries: Vec<(pg_sys::Oid, *mut pg_sys::IndexInfo)>,
}

impl Drop for OutboxIndexes {
    fn drop(&mut self) {
        // SAFETY: the context was created for this cache and nothing else uses it.
        unsafe { pg_sys::MemoryContextDelete(self.context) };
    }
}

// The per-row path looks nothing up by name and builds no index info: the objects,
// the sequence check and the index list are cached per backend and dropped by
// invalidation callbacks (relcache: the outbox or the sequence changed or was
// dropped, e.g. DROP/CREATE EXTENSION; syscache SEQRELID: ALTER SEQUENCE).
thread_local! {
    /// Bumped by every invalidation that drops the caches: a cache built while one
    /// arrived (index_open can process invalidations) is used once, not kept.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static OBJECTS: Cell<Option<VsetObjects>> = const { Cell::new(None) };
    static SEQUENCE_CHECKED: Cell<bool> = const { Cell::new(false) };
    static INDEXES: RefCell<Option<Rc<OutboxIndexes>>> = const { RefCell::new(None) };
}

unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let affected = OBJECTS.with(|o| {
        o.get().is_none_or(|o| {
            relid == pg_sys::InvalidOid || relid == o.outbox || relid == o.version_seq
        })
    }) || INDEXES.with(|i| {
        i.try_borrow().map_or(true, |i| {
            i.as_ref()
                .is_some_and(|i| i.entries.iter().any(|e| e.0 == relid))
        })
    });
    if affected {
        GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
        OBJECTS.with(|o| o.set(None));
        SEQUENCE_CHECKED.with(|c| c.set(false));
        // try_borrow: never panic inside a callback; a borrowed cache is in use and
        // stays valid for that use (it holds its own Rc).
        INDEXES.with(|i| {
            if let Ok(mut i) = i.try_borrow_mut() {
                *i = None;
            }
        });
    }
}

unsafe extern "C-unwind" fn on_sequence_change(
    _arg: pg_sys::Datum,
    _cache_id: std::ffi::c_int,
    _hash: u32,
) {
    SEQUENCE_CHECKED.with(|c| c.set(false));
}

/// Called once per backend from `_PG_init`.
pub fn register_invalidation() {
    // SAFETY: registering static callbacks once per backend.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0usize));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::SEQRELID as std::ffi::c_int,
            Some(on_sequence_change),
            pg_sys::Datum::from(0usize),
        );
    }
}

fn look_up_objects() -> Result<VsetObjects, VsetError> {
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
        Ok(VsetObjects {
            outbox,
            version_seq,
        })
    }
}

/// vset's objects, without the sequence check (for readers of the outbox, which
/// must keep working while a DBA fixes the sequence).
pub fn vset_objects_unchecked() -> Result<VsetObjects, VsetError> {
    match OBJECTS.with(Cell::get) {
        Some(o) => Ok(o),
        None => {
            let o = look_up_objects()?;
            OBJECTS.with(|c| c.set(Some(o)));
            Ok(o)
        }
    }
}

pub fn vset_objects() -> Result<VsetObjects, VsetError> {
    let objects = vset_objects_unchecked()?;
    if !SEQUENCE_CHECKED.with(Cell::get) {
        // Versions follow commit order only when every nextval goes to the shared
        // sequence (CACHE 1), grows, and never wraps (invariant 2).
        // SAFETY: syscache lookup by oid.
        match unsafe { sequence_options(objects.version_seq) } {
            Some((increment, 1, false)) if increment > 0 => {}
            _ => return Err(VsetError::SequenceAltered),
        }
        SEQUENCE_CHECKED.with(|c| c.set(true));
    }
    Ok(objects)
}

/// The outbox's indexes, built on first use after an invalidation (`rel` is the
/// outbox, opened and locked by the caller, so its relcache entry is current).
///
/// # Safety
/// `rel` must be the open outbox relation.
unsafe fn outbox_indexes(rel: pg_sys::Relation) -> Result<Rc<OutboxIndexes>, VsetError> {
    if let Some(i) = INDEXES.with(|i| i.borrow().clone()) {
        return Ok(i);
    }
    let generation = GENERATION.with(Cell::get);
    // SAFETY: rel is open; the IndexInfos are allocated in a context of our own
    // under CacheMemoryContext, which the cache deletes when dropped.
    let built = unsafe {
        check_shape((*rel).rd_att)?;
        let context = pg_sys::AllocSetContextCreateExtended(
            pg_sys::CacheMemoryContext,
            c"vset outbox indexes".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let mut cache = OutboxIndexes {
            context,
            entries: Vec::new(),
        };
        let list = pg_sys::RelationGetIndexList(rel);
        let n = if list.is_null() { 0 } else { (*list).length };
        for k in 0..n {
            let index_oid = pg_sys::list_nth_oid(list, k);
            let index = pg_sys::index_open(index_oid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
            // Only btree: other access methods keep pointers into the index's
            // relcache entry in ii_AmCache, which would not outlive an invalidation.
            let btree = (*(*index).rd_rel).relam == pg_sys::BTREE_AM_OID;
            let old = pg_sys::MemoryContextSwitchTo(context);
            let info = pg_sys::BuildIndexInfo(index);
            pg_sys::MemoryContextSwitchTo(old);
            pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
            if !btree || !(*info).ii_Expressions.is_null() || !(*info).ii_Predicate.is_null() {
                return Err(VsetError::Altered(
                    "indexes of vset.outbox (only plain btree indexes are supported)",
                ));
            }
            // An index being built CONCURRENTLY takes no inserts yet (as
            // CatalogIndexInsert does); when it becomes ready, the relcache
            // invalidation of the outbox rebuilds this cache.
            if !(*info).ii_ReadyForInserts {
                continue;
            }
            cache.entries.push((index_oid, info));
        }
        pg_sys::list_free(list);
        Rc::new(cache)
    };
    if GENERATION.with(Cell::get) == generation {
        INDEXES.with(|i| {
            if let Ok(mut i) = i.try_borrow_mut() {
                *i = Some(built.clone());
            }
        });
    }
    Ok(built)
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
    // The claim's low-water mark (api/claim_low_water.rs) relies on this: whoever
    // draws an outbox id already has a transaction id, so a writer still able to
    // commit an id <= N has an xid below any xid read after N was handed out. A row
    // trigger's transaction has one already; untrack's del records may not.
    // SAFETY: assigns this transaction's id if it has none yet.
    unsafe { pg_sys::GetCurrentTransactionId() };
    let version = next_version(objects);
    // SAFETY: standard heap/index insertion on a relation we open and lock here;
    // every datum matches the column type checked against OUTBOX_COLUMNS.
    unsafe {
        let rel = pg_sys::table_open(objects.outbox, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        // After table_open: its lock processed any pending invalidation.
        let indexes = outbox_indexes(rel)?;
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
        insert_index_entries(rel, &indexes, tuple, &mut values, &mut nulls)?;
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
    indexes: &OutboxIndexes,
    tuple: pg_sys::HeapTuple,
    values: &mut [pg_sys::Datum; 7],
    nulls: &mut [bool; 7],
) -> Result<(), VsetError> {
    // SAFETY: rel is open with RowExclusiveLock; each IndexInfo was built for its
    // index (same relcache generation: an index change invalidates the cache).
    unsafe {
        for &(index_oid, info) in &indexes.entries {
            let index = pg_sys::index_open(index_oid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
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
