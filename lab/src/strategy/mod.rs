//! The strategies the lab compares, all behind one interface: an *episode* is two
//! writes to one key under one fault (or none), after which the strategy settles
//! (delayed deletes run, relays drain) and the runner compares cache and database.
//!
//! | strategy | write path (what the caller waits for) | later |
//! | --- | --- | --- |
//! | `write-through` | UPDATE, COMMIT; SET key | |
//! | `write-behind` | SET key | UPDATE by a flusher |
//! | `cache-aside` | UPDATE, COMMIT; DEL key | |
//! | `double-delete` | DEL key; UPDATE, COMMIT | DEL key again after a delay |
//! | `outbox-set` | UPDATE + outbox row, COMMIT | relay: SET key |
//! | `outbox-lua-cas` | UPDATE + outbox row with a version, COMMIT | relay: Lua compare-and-set of `{version, value}` |
//! | `vset` | UPDATE (vset trigger writes the outbox), COMMIT | relay: VSET key version |

pub mod app;
pub mod relayed;

use crate::proxy::FaultProxy;
use crate::schedule::Fault;

/// How long the relays stay down in a relay-outage episode (default).
pub const RELAY_OUTAGE: std::time::Duration = std::time::Duration::from_millis(100);

/// What a competent engineer gives a hand-written strategy: every cache write
/// carries a TTL (so a stale entry heals by itself), and the application's cache
/// steps are retried with exponential backoff before being given up.
#[derive(Debug, Clone, Copy)]
pub struct Hardening {
    /// `PX` on every cache write of the hand-written strategies (0: none).
    pub ttl_ms: u64,
    /// Extra attempts of a failed application cache step (backoff 5 ms, doubling).
    pub retries: u32,
}

impl Default for Hardening {
    fn default() -> Self {
        Self {
            ttl_ms: 2_000,
            retries: 3,
        }
    }
}

/// Connects the strategies whose name `wanted` accepts, in the order of the table
/// above: the one list the lab binary and the lab test both compare.
pub fn build(
    pg_url: &str,
    proxy: &FaultProxy,
    keys: i32,
    hardening: Hardening,
    relay_outage: std::time::Duration,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Box<dyn Strategy>>, crate::LabError> {
    let mut strategies: Vec<Box<dyn Strategy>> = Vec::new();
    for kind in [
        app::AppKind::WriteThrough,
        app::AppKind::WriteBehind,
        app::AppKind::CacheAside,
        app::AppKind::DoubleDelete,
    ] {
        if wanted(kind.name()) {
            strategies.push(Box::new(app::AppStrategy::new(
                kind, pg_url, proxy, keys, hardening,
            )?));
        }
    }
    for kind in [
        relayed::RelayKind::OutboxSet,
        relayed::RelayKind::OutboxLuaCas,
        relayed::RelayKind::Vset,
    ] {
        if wanted(kind.name()) {
            strategies.push(Box::new(relayed::RelayedStrategy::new(
                kind,
                pg_url,
                proxy,
                keys,
                hardening,
                relay_outage,
            )?));
        }
    }
    Ok(strategies)
}

/// A write's value is `k<key>-w<ordinal>`; ordinals grow with every write, so the
/// database value tells which write won.
pub fn value_of(key: i32, ordinal: u64) -> String {
    format!("k{key}-w{ordinal}")
}

/// The ordinal of a value written by [`value_of`] (0 for the initial rows).
pub fn ordinal_of(value: &str) -> u64 {
    value
        .rsplit_once("-w")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// What the runner needs to know about one episode.
#[derive(Debug, Default, Clone)]
pub struct EpisodeResult {
    /// Ordinal of the last write whose caller got a success.
    pub last_acked: u64,
    /// Synchronous write-path durations (what the caller waited), in microseconds.
    pub write_us: Vec<u64>,
    /// Writes whose caller got an error (not acknowledged, so not "lost").
    pub failed_writes: u64,
    /// Time, inside the episode, during which a reader was served the older value
    /// after the caller had been told the write was done (a relay outage).
    pub stale_us: u64,
}

/// One strategy under test.
pub trait Strategy {
    fn name(&self) -> &'static str;
    /// Two writes (ordinals `w1`, `w2`) to `key` under `fault`, then settle.
    /// `fill_lands_early`: in a fill race, whether the reader's cache write lands
    /// before the strategy's delayed work (the second delete, the relay) or after.
    fn episode(
        &mut self,
        key: i32,
        w1: u64,
        w2: u64,
        fault: Fault,
        fill_lands_early: bool,
    ) -> Result<EpisodeResult, crate::LabError>;
    /// A reader: cache hit, or miss followed by a fill. Returns whether it hit.
    fn read(&mut self, key: i32) -> Result<bool, crate::LabError>;
    /// The value a reader would be served from the cache now (None: miss).
    fn cached(&mut self, key: i32) -> Result<Option<String>, crate::LabError>;
    /// The committed value in the database.
    fn stored(&mut self, key: i32) -> Result<Option<String>, crate::LabError>;
}

/// The committed value of `key` in a lab table: what every strategy's `stored` reads,
/// whatever the strategy does with the cache.
pub(crate) fn committed_value(
    pg: &mut postgres::Client,
    table: &str,
    key: i32,
) -> Result<Option<String>, crate::LabError> {
    let row = pg.query_opt(&format!("SELECT v FROM {table} WHERE id = $1"), &[&key])?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}
