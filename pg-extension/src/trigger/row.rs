//! One row as the trigger sees it: deformed once, then rendered into a cache key,
//! a JSON payload, or compared with the other version of the row.

use std::ffi::CStr;

use pgrx::pg_sys;

use crate::error::VsetError;
use crate::pg_internal::{datum_is_equal, row_to_json};
use crate::trigger::plan::CapturePlan;

pub struct Row {
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl Row {
    /// Deforms `tuple` of a relation with descriptor `desc`.
    ///
    /// # Safety
    /// `tuple` must be a valid heap tuple of `desc`.
    pub unsafe fn deform(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> Row {
        // SAFETY: caller guarantees tuple/desc; natts sized buffers.
        unsafe {
            let natts = (*desc).natts as usize;
            let mut values = vec![pg_sys::Datum::from(0usize); natts];
            let mut nulls = vec![true; natts];
            pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            Row { values, nulls }
        }
    }

    /// The cache key: each key column through its type's output function, into the
    /// template. A NULL key column (its NOT NULL constraint was dropped after `track`)
    /// is an error: there is no key to render, and `""` would collide.
    pub fn cache_key(&self, plan: &CapturePlan) -> Result<String, VsetError> {
        let mut parts: Vec<String> = Vec::with_capacity(plan.key.len());
        for k in &plan.key {
            if self.nulls.get(k.index).copied().unwrap_or(true) {
                return Err(VsetError::NullKey {
                    table: plan.table.clone(),
                    column: k.name.clone(),
                });
            }
            // SAFETY: typoutput is the output function of this attribute's type.
            let text = unsafe {
                let cstr = pg_sys::OidOutputFunctionCall(k.typoutput, self.values[k.index]);
                let s = CStr::from_ptr(cstr).to_string_lossy().into_owned();
                pg_sys::pfree(cstr.cast());
                s
            };
            parts.push(text);
        }
        Ok(plan.template.render(&parts))
    }

    /// `row_to_json` of the payload columns (a json datum, in the current memory context).
    pub fn payload(&self, plan: &CapturePlan) -> pg_sys::Datum {
        let mut values: Vec<pg_sys::Datum> = plan.payload.iter().map(|&i| self.values[i]).collect();
        let mut nulls: Vec<bool> = plan.payload.iter().map(|&i| self.nulls[i]).collect();
        // SAFETY: payload_desc describes exactly these values; row_to_json reads a
        // composite datum and does not use flinfo.
        unsafe {
            let tuple =
                pg_sys::heap_form_tuple(plan.payload_desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            let composite = pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data);
            row_to_json(composite)
        }
    }

    /// True when any payload or key column differs (binary comparison: a value
    /// rewritten to an equal one may count as a change, which only costs an extra
    /// identical `set`).
    pub fn differs_from(&self, other: &Row, plan: &CapturePlan) -> bool {
        plan.compared.iter().any(|c| {
            let (a_null, b_null) = (self.nulls[c.index], other.nulls[c.index]);
            if a_null || b_null {
                return a_null != b_null;
            }
            // SAFETY: both non-null datums of the same attribute.
            !unsafe { datum_is_equal(self.values[c.index], other.values[c.index], c.by_val, c.len) }
        })
    }
}

/// True when this transaction already updated or deleted `tuple` again.
///
/// # Safety
/// `tuple` must be a valid heap tuple with a header.
unsafe fn superseded_in_this_transaction(tuple: pg_sys::HeapTuple) -> bool {
    // SAFETY: caller guarantees a valid heap tuple with a header.
    unsafe {
        let header = (*tuple).t_data;
        let infomask = u32::from((*header).t_infomask);
        if infomask & pg_sys::HEAP_XMAX_INVALID != 0 {
            return false;
        }
        // HEAP_XMAX_IS_LOCKED_ONLY: a row lock (FOR SHARE, a foreign-key check) is no change.
        let locked_only = infomask & pg_sys::HEAP_XMAX_LOCK_ONLY != 0
            || infomask & (pg_sys::HEAP_XMAX_IS_MULTI | pg_sys::HEAP_LOCK_MASK)
                == pg_sys::HEAP_XMAX_EXCL_LOCK;
        if locked_only {
            return false;
        }
        let updater = if infomask & pg_sys::HEAP_XMAX_IS_MULTI != 0 {
            pg_sys::HeapTupleGetUpdateXid(header)
        } else {
            (*header).t_choice.t_heap.t_xmax
        };
        pg_sys::TransactionIdIsCurrentTransactionId(updater)
    }
}

/// The row an AFTER ROW event's tuple became, by the time the event fires.
pub enum Latest {
    /// Not changed again: capture the event's tuple.
    Current,
    /// Deleted (or moved to another partition) later in this transaction: its own
    /// capture wrote the `del`; write no `set`.
    Gone,
    /// Updated again later in this transaction: the newest version (a palloc'd copy).
    Newer(pg_sys::HeapTuple),
}

/// Follows `tuple`'s update chain to the version this transaction left.
///
/// AFTER ROW events run at the end of their statement, but a nested statement (an
/// AFTER trigger that sorts before `vset_capture` and updates the same row, a
/// cascade) may change the row again first. Its capture draws the smaller version,
/// and possibly writes nothing at all (it changed no captured column); this event
/// draws the larger one. Capturing the event's own (older) image would leave Redis
/// on a row that no longer exists; capturing the newest image keeps the highest
/// version equal to the row. The trigger's tuple is read from the heap when the
/// event fires, so its xmax and t_ctid show the later change.
///
/// # Safety
/// `rel` must be the open relation of `tuple`, the tuple an AFTER ROW trigger got.
pub unsafe fn latest_in_this_transaction(
    rel: pg_sys::Relation,
    tuple: pg_sys::HeapTuple,
) -> Latest {
    /// Far more than any trigger nesting; a longer chain is treated as gone.
    const MAX_HOPS: usize = 1000;
    // SAFETY: heap_fetch with SnapshotAny on the relation the trigger holds open;
    // each version is copied before its buffer is released.
    unsafe {
        if !superseded_in_this_transaction(tuple) {
            return Latest::Current;
        }
        let mut current = tuple;
        for _ in 0..MAX_HOPS {
            let next = (*(*current).t_data).t_ctid;
            let this = (*current).t_self;
            let same_place = next.ip_posid == this.ip_posid
                && next.ip_blkid.bi_hi == this.ip_blkid.bi_hi
                && next.ip_blkid.bi_lo == this.ip_blkid.bi_lo;
            if same_place || u32::from(next.ip_posid) == pg_sys::MovedPartitionsOffsetNumber {
                return Latest::Gone;
            }
            let mut fetched: pg_sys::HeapTupleData = std::mem::zeroed();
            fetched.t_self = next;
            let mut buffer: pg_sys::Buffer = 0;
            if !pg_sys::heap_fetch(
                rel,
                &raw mut pg_sys::SnapshotAnyData,
                &mut fetched,
                &mut buffer,
                false,
            ) {
                return Latest::Gone;
            }
            let copy = pg_sys::heap_copytuple(&mut fetched);
            pg_sys::ReleaseBuffer(buffer);
            if !superseded_in_this_transaction(copy) {
                return Latest::Newer(copy);
            }
            current = copy;
        }
        Latest::Gone
    }
}
