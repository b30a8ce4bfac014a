//! `vset.wait_for_commit(seen, timeout_ms)` and `vset.wakeup()`: how a relay in any
//! language waits for new records without LISTEN (see [`crate::wakeup`]).

use std::time::Duration;

use pgrx::prelude::*;

use crate::error::{OrRaise, VsetError};
use crate::wakeup::{notify_enabled, shared};

/// Longest single wait (a relay loops anyway).
const MAX_TIMEOUT_MS: i32 = 3_600_000;

/// Returns the shared commit counter once it differs from `seen` (a tracked commit
/// since, or a server restart), or after `timeout_ms`. Start with `seen => 0`… or
/// any value: a differing counter returns at once. Needs `vset` in
/// `shared_preload_libraries` (`55000` otherwise: LISTEN instead).
#[pg_extern(volatile, parallel_unsafe)]
fn wait_for_commit(seen: Option<i64>, timeout_ms: Option<i32>) -> i64 {
    let seen = seen
        .ok_or(VsetError::NullArgument { what: "seen" })
        .or_raise();
    let timeout_ms = match timeout_ms {
        Some(t) if (0..=MAX_TIMEOUT_MS).contains(&t) => t,
        other => VsetError::BadTimeout {
            given: other.map_or("NULL".into(), |t| t.to_string()),
            max: MAX_TIMEOUT_MS,
        }
        .raise(),
    };
    let now = shared::wait_for_commit(seen as u64, Duration::from_millis(timeout_ms as u64))
        .ok_or(VsetError::NotPreloaded)
        .or_raise();
    now as i64
}

/// How relays are woken in this database: `shared_memory` (call
/// `vset.wait_for_commit`; NOTIFY is also sent when `vset.notify = on`), `notify`
/// (LISTEN on the table's channel) or `poll` (neither: `vset.notify = off` without
/// preload).
#[pg_extern(stable, parallel_safe)]
fn wakeup() -> &'static str {
    if shared::available() {
        "shared_memory"
    } else if notify_enabled() {
        "notify"
    } else {
        "poll"
    }
}
