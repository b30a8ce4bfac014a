//! # vset — the PostgreSQL half of a Redis cache that cannot go stale
//!
//! `CREATE EXTENSION vset;` gives a schema `vset` with a versioned outbox
//! (`vset.outbox`), the one version source (`vset.version_seq`), the catalog of tracked
//! tables (`vset.tracked`) and functions to track tables, fill the cache on a read
//! miss and let relays claim captured changes. A relay (the `vset-relay` crate, or
//! any program speaking SQL) moves claimed records into Redis with `VSET key version
//! value`, which the `vset` Redis module applies only when the version is newer.
//! See `docs/design.md` for the invariants and `pg-extension/README.md` for the
//! SQL reference.
//!
//! | folder | job |
//! | --- | --- |
//! | [`trigger`] | the Rust row trigger `vset.capture()`: key rendering, JSON payload, outbox insert |
//! | [`wakeup`] | waking relays at commit: shared-memory counter + condition variable (preloaded), or NOTIFY |
//! | [`api`] | `vset.track/untrack/fill/claim/status/current_version` |
//! | [`catalog`] | the extension's tables and sequence, `vset.tracked` rows, key discovery from `pg_index` |
//! | [`canonical`] | the fixed output settings keys and payloads are rendered in |
//! | [`guc`] | the `vset.mode` setting |
//! | [`error`] | typed refusals with SQLSTATEs |

use pgrx::prelude::*;

pub mod api;
pub mod canonical;
pub mod catalog;
pub mod error;
pub mod guc;
pub mod pg_internal;
pub mod trigger;
pub mod wakeup;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
    // SAFETY: reads a flag PostgreSQL sets while loading shared_preload_libraries.
    wakeup::init(unsafe { pg_sys::process_shared_preload_libraries_in_progress });
    trigger::plan::register_invalidation();
    trigger::outbox_write::register_invalidation();
    api::fill::register_invalidation();
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;
#[cfg(any(test, feature = "pg_test"))]
mod tests_integrity;
#[cfg(any(test, feature = "pg_test"))]
mod tests_security;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
