//! The data layer: what vset stores and how it decides, with no Redis API in sight
//! (so all of it is unit-tested without a server).
//!
//! | module | job |
//! | --- | --- |
//! | [`version`] | parse versions exactly as unsigned 64-bit integers |
//! | [`value`] | the stored value: payload (or tombstone) and version together |
//! | [`decision`] | the order-safety rule: store, stale, below floor, cold |
//! | [`floors`] | the fixed table of per-bucket floors (highest forgotten version) |
//! | [`encoding`] | RDB/AOF payload format: format byte + bincode + checksum |

pub mod decision;
pub mod encoding;
pub mod floors;
pub mod value;
pub mod version;
