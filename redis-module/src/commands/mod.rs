//! The command layer: argument parsing, replies, replication and keyspace side
//! effects. Decisions come from [`crate::data::decision`]; storage is the
//! `vsetvalue` type of [`crate::data_type`].
//!
//! | command | file |
//! | --- | --- |
//! | `VSET key version value [EX s \| PX ms \| EXAT s \| PXAT ms]` | [`vset`] |
//! | `VDEL key version [EX s \| PX ms \| EXAT s \| PXAT ms]` | [`vdel`] |
//! | `VGET key [WITHVERSION]` | [`vget`] |
//! | `VFLOOR [version]` | [`vfloor`] |

pub mod args;
pub mod error;
pub mod expiry;
pub mod key;
pub mod origin;
pub mod register;
pub mod reply;
pub mod vdel;
pub mod vfloor;
pub mod vget;
pub mod vset;
pub mod write;
