//! `INFO vset`: the module state and its counters. Redis prefixes module INFO
//! fields with the module name, so the lines read `vset_cold:0`, `vset_stored:12`...

use std::sync::atomic::Ordering;

use redis_module::{raw, InfoContext, Status};

use crate::state;

/// Registered as the module's INFO callback (section `vset`).
pub fn add_info(ctx: &InfoContext, _for_crash_report: bool) {
    let Some(state) = state::get() else { return };
    if raw::add_info_section(ctx.ctx, None) != Status::Ok {
        return;
    }
    let c = &state.counters;
    let fields: [(&str, u64); 13] = [
        ("cold", u64::from(state.is_cold())),
        ("highest_floor", state.floors.highest()),
        ("buckets", state.floors.buckets() as u64),
        ("tombstone_ttl_ms", state.config.tombstone_ttl_ms),
        ("cold_start", u64::from(state.config.cold_start)),
        ("max_version_seen", state.max_seen()),
        ("stored", c.stored.load(Ordering::Relaxed)),
        ("rejected_stale", c.rejected_stale.load(Ordering::Relaxed)),
        ("rejected_floor", c.rejected_floor.load(Ordering::Relaxed)),
        ("rejected_cold", c.rejected_cold.load(Ordering::Relaxed)),
        (
            "tombstones_written",
            c.tombstones_written.load(Ordering::Relaxed),
        ),
        ("floors_raised", c.floors_raised.load(Ordering::Relaxed)),
        (
            "removed_below_floor",
            c.removed_below_floor.load(Ordering::Relaxed),
        ),
    ];
    for (name, value) in fields {
        // Unsigned: versions and floors may exceed i64::MAX.
        raw::add_info_field_unsigned_long_long(ctx.ctx, name, value);
    }
}
