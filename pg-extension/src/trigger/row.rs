//! One row as the trigger sees it: deformed once, then rendered into a cache key,
//! a JSON payload, or compared with the other version of the row.

use std::ffi::CStr;

use pgrx::pg_sys;

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

    /// The cache key: each key column through its type's output function, into the template.
    pub fn cache_key(&self, plan: &CapturePlan) -> String {
        let mut parts: Vec<String> = Vec::with_capacity(plan.key.len());
        for k in &plan.key {
            if self.nulls.get(k.index).copied().unwrap_or(true) {
                // Impossible for a NOT NULL key; render nothing rather than crash.
                parts.push(String::new());
                continue;
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
        plan.template.render(&parts)
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
