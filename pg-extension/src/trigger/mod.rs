//! Capture: the row trigger and what it needs.
//!
//! | module | job |
//! | --- | --- |
//! | [`capture`] | the `#[pg_trigger]` `vset.capture()` |
//! | [`truncate_guard`] | `vset.refuse_truncate()`, the BEFORE TRUNCATE guard |
//! | [`key`] | cache-key templates: parse, validate, render with escaping |
//! | [`key_namespace`] | can two tables' templates render the same key (refused at track time) |
//! | [`plan`] | per-relation cached plan (attributes, output functions, payload record type) |
//! | [`row`] | one deformed row: its key, its JSON payload, UPDATE change detection |
//! | [`retire`] | a `del` for every row's key when a table leaves its template (untrack, re-track) |
//! | [`outbox_write`] | version draw + direct heap/index insert into `vset.outbox` |

pub mod capture;
pub mod key;
pub mod key_namespace;
pub mod outbox_write;
pub mod plan;
pub mod retire;
pub mod row;
pub mod truncate_guard;
