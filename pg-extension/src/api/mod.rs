//! The SQL API.
//!
//! | module | functions |
//! | --- | --- |
//! | [`track`] | `vset.track`, `vset.untrack` (Rust: `vset._track`, `vset._untrack`) |
//! | [`fill`] | `vset.fill` (Rust: `vset._fill`) |
//! | [`relay`] | `vset.claim`, `vset.current_version` (SQL) |
//! | [`claim_low_water`] | where a claim starts its scan (Rust: `vset._claim_low_water`) |
//! | [`status`] | `vset.status` (Rust: `vset._status`, lists only what the caller may read) |
//! | [`wait`] | `vset.wait_for_commit`, `vset.wakeup` (how relays are woken) |
//! | [`wrappers`] | the user-facing SQL signatures over the Rust entry points |

pub mod claim_low_water;
pub mod fill;
pub mod relay;
pub mod status;
pub mod track;
pub mod wait;
pub mod wrappers;
