//! Redis side: apply a batch of changes with the vset module's commands and report
//! what happened to each row.
//!
//! Both deployments (a standalone server, a Redis Cluster) implement
//! [`CacheTarget`]; the claim loop is generic over it.

mod cluster;
mod commands;
mod floor;
mod standalone;

pub use cluster::ClusterTarget;
pub use standalone::StandaloneTarget;

use std::future::Future;

use crate::change::Claimed;
use crate::error::Result;

/// What Redis did with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `VSET`/`VDEL` answered 1: the value or tombstone is now stored.
    Stored,
    /// `VSET`/`VDEL` answered 0: stale, at or below the floor, or the module was
    /// cold. A rejection is a cache miss, which is safe, so the row is still acked.
    Rejected,
    /// A row without a usable version was handled with a plain `DEL`.
    Forgotten,
    /// A row without a cache key: nothing could be sent.
    Skipped,
    /// The key holds a value of another type (`WRONGTYPE`), e.g. a plain `SET` left
    /// by the cache vset replaced. Only this row failed; see
    /// [`CacheTarget::replace_foreign`].
    Foreign,
}

/// The answer to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Every row got an answer, in batch order.
    Outcomes(Vec<Outcome>),
    /// The module (on at least one node) reported a cold start before the batch
    /// was applied: the caller must set a floor ([`CacheTarget::set_floor`]) and
    /// apply the batch again. Nothing in the batch was stored.
    Cold,
}

/// A Redis deployment the relay can write to. Implementations connect lazily and
/// reconnect after [`CacheTarget::reset`]. (Methods return `Send` futures so a
/// claim loop can run on any runtime thread; implementations write `async fn`.)
pub trait CacheTarget: Send {
    /// Applies the batch in one round trip (per node), checking first that no node
    /// is cold. A reply that concerns one key only (`WRONGTYPE`) becomes that row's
    /// outcome; any other error reply (`OOM` included) or transport error fails the
    /// batch.
    fn apply(&mut self, batch: &[Claimed]) -> impl Future<Output = Result<Applied>> + Send;

    /// One key refused its row because it holds another type's value
    /// ([`Outcome::Foreign`]): `DEL` the key, then send the row's command again and
    /// return its outcome. One bad key must never hold back the others (invariant
    /// 11), and must never keep an older value either.
    fn replace_foreign(&mut self, row: &Claimed) -> impl Future<Output = Result<Outcome>> + Send;

    /// Asks every node whether it is cold, and remembers which ones are.
    /// Returns true when at least one is.
    fn check_cold(&mut self) -> impl Future<Output = Result<bool>> + Send;

    /// Ends the cold state (`VFLOOR version`) of the node(s) last seen cold.
    fn set_floor(&mut self, version: u64) -> impl Future<Output = Result<()>> + Send;

    /// Drops the connection; the next call reconnects.
    fn reset(&mut self);

    /// Where this target points, for logs (no credentials).
    fn describe(&self) -> String;
}
