//! # vset-verify — proves (or disproves) that Redis agrees with PostgreSQL
//!
//! vset's promise is invariant 7 of the design: once writers stop and the relays
//! drain, every tracked row's cache key holds exactly the row's payload, or
//! nothing, and no key holds a value for a row that does not exist. This crate
//! checks that from the outside, using only what any user has: SQL on the
//! database (`vset.tracked` says which tables and how keys and payloads are
//! rendered) and `VGET key WITHVERSION` / `SCAN` on Redis (the module's commands).
//!
//! | module | job |
//! | --- | --- |
//! | [`template`] | key templates → SQL key expression, SCAN glob, ownership regex |
//! | [`catalog`] | read `vset.tracked` into checkable tables |
//! | [`cache`] | Redis reads: pipelined VGET, SCAN TYPE, RANDOMKEY (standalone or cluster) |
//! | [`compare`] | one key's verdict: matched, missing, stale, orphaned |
//! | [`check`] | a run: stream rows, search orphans, re-check after the grace period |
//! | [`report`] | counts, verdict, "N nines consistent after M seconds" |
//!
//! The binary `vset-verify` (src/main.rs) is a thin CLI over [`check::run`]; the
//! chaos matrix and the tests call [`check::run`] directly.

pub mod cache;
pub mod catalog;
pub mod check;
pub mod compare;
pub mod error;
pub mod report;
pub mod template;

pub use check::{run, Options};
pub use error::VerifyError;
pub use report::{Counts, Report};
