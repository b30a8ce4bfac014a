//! `vset.capture()`: the AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW trigger that
//! `vset.track()` installs. Runs inside the writing transaction, so its records
//! commit or roll back (savepoints included) with the row change (invariant 1), and
//! draws each version after the row lock / unique-index wait that serialises writers
//! of the same key (invariant 2).
//!
//! - INSERT → `set` (payload = JSON of the payload columns)
//! - DELETE → `del`
//! - UPDATE → nothing when no payload or key column changed; `set` when the key is
//!   unchanged; `del` of the old key then `set` of the new one when it changed.
//! - mode `invalidate` (table) or `SET LOCAL vset.mode = 'invalidate'` (transaction):
//!   every `set` becomes a `del` without payload.
//! - a row this transaction already changed again (a nested statement ran first,
//!   see [`latest_in_this_transaction`]): the `set` carries the newest image, or is
//!   not written when the row was deleted or re-keyed meanwhile.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::canonical::CanonicalOutput;
use crate::catalog::tracked::Mode;
use crate::error::{OrRaise, VsetError};
use crate::guc;
use crate::trigger::outbox_write::{vset_objects, write_record, Op, VsetObjects};
use crate::trigger::plan::{plan_for, CapturePlan};
use crate::trigger::row::{latest_in_this_transaction, Latest, Row};
use crate::wakeup;

#[pg_trigger]
fn capture<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, VsetError> {
    capture_row(trigger).or_raise();
    Ok(None)
}

fn capture_row(trigger: &pgrx::PgTrigger<'_>) -> Result<(), VsetError> {
    let event = trigger.event();
    if !event.fired_after() || !event.fired_for_row() {
        return Err(VsetError::TriggerMisuse(
            "vset.capture() must be an AFTER ... FOR EACH ROW trigger; install it with vset.track()".into(),
        ));
    }
    let data = trigger.trigger_data();
    let tg = trigger.trigger();
    let rel = data.tg_relation;
    let plan = plan_for(tg.tgoid, rel, || {
        let args = trigger
            .extra_args()
            .map_err(|e| VsetError::TriggerMisuse(format!("unreadable trigger arguments: {e}")))?;
        // SAFETY: tgname is the NUL-terminated name of the firing trigger.
        let name = unsafe { std::ffi::CStr::from_ptr(tg.tgname) };
        Ok((name.to_string_lossy().into_owned(), args))
    })?;
    let objects = vset_objects()?;
    let invalidate = plan.mode == Mode::Invalidate || guc::invalidate_only();
    // SAFETY: tg_relation is open for the duration of the trigger call.
    let desc = unsafe { (*rel).rd_att };
    let _canonical = CanonicalOutput::enter();

    if event.fired_by_insert() {
        // SAFETY: for INSERT, tg_trigtuple is the new row.
        let new = unsafe { Row::deform(data.tg_trigtuple, desc) };
        let key = new.cache_key(&plan)?;
        // SAFETY: tg_trigtuple is the inserted row of the open relation.
        let latest = unsafe { latest_in_this_transaction(rel, data.tg_trigtuple) };
        emit_latest(&plan, &objects, new, &key, latest, desc, invalidate)?;
    } else if event.fired_by_delete() {
        // SAFETY: for DELETE, tg_trigtuple is the old row.
        let old = unsafe { Row::deform(data.tg_trigtuple, desc) };
        emit(&plan, &objects, &old.cache_key(&plan)?, Op::Del, None)?;
    } else if event.fired_by_update() {
        // SAFETY: for UPDATE, tg_trigtuple is the old row and tg_newtuple the new one.
        let (old, new) = unsafe {
            (
                Row::deform(data.tg_trigtuple, desc),
                Row::deform(data.tg_newtuple, desc),
            )
        };
        if !new.differs_from(&old, &plan) {
            return Ok(());
        }
        let old_key = old.cache_key(&plan)?;
        let new_key = new.cache_key(&plan)?;
        if old_key != new_key {
            emit(&plan, &objects, &old_key, Op::Del, None)?;
        }
        // SAFETY: tg_newtuple is the updated row of the open relation.
        let latest = unsafe { latest_in_this_transaction(rel, data.tg_newtuple) };
        emit_latest(&plan, &objects, new, &new_key, latest, desc, invalidate)?;
    }
    Ok(())
}

/// The record for the row an INSERT or UPDATE event produced, as this transaction
/// left it (see [`latest_in_this_transaction`]): the event's own image, the newest
/// one when a nested statement changed the row again under the same key, nothing
/// when it deleted the row or moved it to another key (that change was captured).
fn emit_latest(
    plan: &CapturePlan,
    objects: &VsetObjects,
    event_row: Row,
    key: &str,
    latest: Latest,
    desc: pg_sys::TupleDesc,
    invalidate: bool,
) -> Result<(), VsetError> {
    match latest {
        Latest::Current => emit_current(plan, objects, &event_row, key, invalidate),
        Latest::Gone => Ok(()),
        Latest::Newer(tuple) => {
            // SAFETY: a copy of a version of this relation's row.
            let newest = unsafe { Row::deform(tuple, desc) };
            if newest.cache_key(plan)? == key {
                emit_current(plan, objects, &newest, key, invalidate)
            } else {
                Ok(())
            }
        }
    }
}

/// The record for a row that exists now: `set` with payload, or `del` when invalidating.
fn emit_current(
    plan: &CapturePlan,
    objects: &VsetObjects,
    row: &Row,
    key: &str,
    invalidate: bool,
) -> Result<(), VsetError> {
    if invalidate {
        emit(plan, objects, key, Op::Del, None)
    } else {
        emit(plan, objects, key, Op::Set, Some(row.payload(plan)))
    }
}

fn emit(
    plan: &CapturePlan,
    objects: &VsetObjects,
    key: &str,
    op: Op,
    payload: Option<pg_sys::Datum>,
) -> Result<(), VsetError> {
    write_record(objects, plan.tracked, key, op, payload)?;
    wakeup::record_written(&plan.channel);
    Ok(())
}
