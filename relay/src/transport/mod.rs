//! The two ends the relay talks to. Nothing in here decides *when* to claim,
//! apply or acknowledge; that is [`crate::pipeline`]'s job.
//!
//! - [`postgres`]: one PostgreSQL session per claim loop (LISTEN, claim, ack).
//! - [`redis`]: the cache, standalone or cluster, behind one small trait
//!   ([`redis::CacheTarget`]) that applies a batch and returns per-row outcomes.

pub mod postgres;
pub mod redis;
