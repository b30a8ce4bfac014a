//! `vset.refuse_truncate()`: BEFORE TRUNCATE trigger on tracked tables (and their
//! partitions). TRUNCATE fires no row triggers, so it would leave every cached row
//! of the table stale; it is refused with an error naming the alternatives.

use pgrx::prelude::*;

use crate::error::{OrRaise, VsetError};

#[pg_trigger]
fn refuse_truncate<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, VsetError> {
    let table = trigger
        .relation()
        .map(|r| format!("{}.{}", r.namespace(), r.name()))
        .unwrap_or_else(|_| "this table".into());
    Err::<(), _>(VsetError::Truncate { table }).or_raise();
    Ok(None)
}
