//! The claim's low-water mark: where `vset.claim` starts its index scan.
//!
//! A claim deletes what it returns. While something holds the xmin horizon back (a
//! long query, `pg_dump`, a replication slot), those deleted rows cannot be pruned,
//! and their index entries are not marked dead either, so a claim that scans the
//! primary key from the left edge visits every record ever claimed since the
//! horizon stopped: claims slow down without bound. The claim instead starts at a
//! mark below which no record can ever be claimable again.
//!
//! Skipping from a mark is dangerous because ids are drawn before commit: a writer
//! can hold a small id and commit after larger ids were claimed. The mark moves in
//! two steps, per backend (a relay keeps its connection; a new one starts at 0):
//!
//! 1. **Candidate.** Read the last id handed out, `last`, then the next transaction
//!    id, `x`. Every writer of an id `<= last` drew it after its transaction got an
//!    id (the outbox writer makes sure of that, see `write_record`), so all of them
//!    have transaction ids `< x`. Writers that draw later get ids `> last`.
//! 2. **Ready.** In a later statement whose snapshot's `xmin >= x`, every one of
//!    those writers has committed (and is visible to the snapshot) or aborted. The
//!    smallest visible id `>= mark` in that same snapshot, `m` (rows deleted by a
//!    claim that has not committed are still visible, locked ones too), gives the
//!    new mark `min(last + 1, m)`: below it every record was deleted by a committed
//!    claim or never existed, and nothing can add one.
//!
//! Only a transaction that has not written anything yet moves the mark: its own
//! deletions are invisible to it but would come back if it rolled back. Any
//! transaction with an xid, in any database of the cluster (a forgotten prepared
//! transaction too), holds `xmin`, so the mark waits for it (the claim then scans
//! from the older mark); read-only snapshots, `pg_dump` and replication slots do not.
//!
//! Step 1 relies on every outbox row being written by `write_record`. Rows that
//! arrive otherwise (a `pg_restore` or a hand-written INSERT while a relay is
//! connected) can carry ids below the mark, and so can a sequence moved backwards
//! (`setval`). Two backstops: the mark drops to 0 when the last id handed out is
//! lower than one seen before, and at least every [`RESCAN_EVERY`] whatever happened,
//! so such rows wait at most that long. A hot standby never moves the mark (its
//! sequence runs ahead of what was handed out, its xids behind the primary's).

use std::cell::Cell;
use std::time::{Duration, Instant};

use pgrx::prelude::*;

use crate::error::{OrRaise, VsetError};
use crate::trigger::outbox_write::vset_objects_unchecked;

/// How long a mark is trusted before a claim starts from the left edge again.
pub const RESCAN_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
struct LowWater {
    /// The outbox this applies to (DROP/CREATE EXTENSION makes a new one).
    outbox: pg_sys::Oid,
    /// No claimable record has an id below this, now or later.
    mark: i64,
    /// `(last + 1, x)` of step 1, waiting for `xmin >= x`.
    candidate: Option<(i64, u64)>,
    /// The highest `last` read: a lower one means the sequence went backwards.
    highest_last: i64,
    /// When the mark was last 0 (the backstop rescan).
    since: Instant,
}

impl LowWater {
    fn fresh(outbox: pg_sys::Oid) -> Self {
        LowWater {
            outbox,
            mark: 0,
            candidate: None,
            highest_last: 0,
            since: Instant::now(),
        }
    }
}

thread_local! {
    static LOW_WATER: Cell<Option<LowWater>> = const { Cell::new(None) };
}

/// Returns the id `vset.claim` starts from, moving it up when it safely can.
#[pg_extern(name = "_claim_low_water", volatile, parallel_unsafe)]
pub fn claim_low_water() -> i64 {
    advance().or_raise()
}

fn advance() -> Result<i64, VsetError> {
    // SAFETY: processes pending invalidations (a DROP/CREATE EXTENSION committed since
    // this transaction last took a lock) before the cached outbox oid is trusted.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let outbox = vset_objects_unchecked()?.outbox;
    let mut state = match LOW_WATER.with(Cell::get) {
        Some(s) if s.outbox == outbox && s.since.elapsed() < RESCAN_EVERY => s,
        _ => LowWater::fresh(outbox),
    };
    // SAFETY: reads this backend's transaction state and the recovery flag.
    let (wrote_nothing, in_recovery) = unsafe {
        (
            pg_sys::GetTopTransactionIdIfAny() == pg_sys::InvalidTransactionId,
            pg_sys::RecoveryInProgress(),
        )
    };
    if in_recovery {
        // Nothing can be claimed on a standby; after a promotion, start over.
        LOW_WATER.with(|l| l.set(None));
        return Ok(0);
    }
    if wrote_nothing {
        Spi::connect(|client| -> Result<(), VsetError> {
            let ready = match state.candidate {
                None => true,
                Some((next, x)) => {
                    // One statement, one snapshot: the xmin test and the scan.
                    let smallest: Option<i64> = client
                        .select(
                            "SELECT CASE WHEN pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) >= $1::text::pg_catalog.xid8
                                         THEN coalesce((SELECT min(o.id) FROM vset.outbox o WHERE o.id >= $2), $3) END",
                            Some(1),
                            &[
                                x.to_string().into(),
                                state.mark.into(),
                                next.into(),
                            ],
                        )?
                        .first()
                        .get_one()?;
                    match smallest {
                        Some(m) => {
                            state.mark = state.mark.max(next.min(m));
                            true
                        }
                        None => false,
                    }
                }
            };
            if ready {
                let last: i64 = client
                    .select("SELECT vset.current_version()", Some(1), &[])?
                    .first()
                    .get_one()?
                    .unwrap_or(0);
                if last < state.highest_last {
                    // The sequence went backwards (setval, a restore): start over.
                    state = LowWater::fresh(outbox);
                }
                state.highest_last = last;
                // After reading `last`: every writer of an id <= last has a smaller xid.
                // SAFETY: reads the shared next-xid counter.
                let x = unsafe { pg_sys::ReadNextFullTransactionId() }.value;
                state.candidate = Some((last.saturating_add(1), x));
            }
            Ok(())
        })?;
    }
    LOW_WATER.with(|l| l.set(Some(state)));
    Ok(state.mark)
}
