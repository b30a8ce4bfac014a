//! The module-wide state: configuration, floor table, cold flag and counters. One
//! instance, created when the module loads (the bucket count is a module argument)
//! and shared by commands, type callbacks, server events and INFO.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::config::ModuleConfig;
use crate::data::decision::Gates;
use crate::data::floors::FloorTable;

/// Counters shown by `INFO vset` (monotonic since the module loaded).
#[derive(Default)]
pub struct Counters {
    /// VSET values stored (clients, replication and AOF alike).
    pub stored: AtomicU64,
    /// Writes refused because the stored version was equal or newer.
    pub rejected_stale: AtomicU64,
    /// Writes refused because the version was at or below the bucket's floor.
    pub rejected_floor: AtomicU64,
    /// Writes refused because the module was cold.
    pub rejected_cold: AtomicU64,
    /// VDEL tombstones written.
    pub tombstones_written: AtomicU64,
    /// Bucket floors that rose (one forgotten key = at most 1; VFLOOR/FLUSH = up to all buckets).
    pub floors_raised: AtomicU64,
    /// Stored values removed because a newer write landed at or below the floor.
    pub removed_below_floor: AtomicU64,
}

impl Counters {
    /// Adds one. Counters only change on Redis' main thread (commands and the
    /// `unlink` callback), so a plain load and store is enough: a locked
    /// read-modify-write would cost every VSET a few nanoseconds for nothing. The
    /// atomics are there so INFO could read them from anywhere without a data race.
    pub fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

pub struct ModuleState {
    pub config: ModuleConfig,
    pub floors: FloorTable,
    pub counters: Counters,
    cold: AtomicBool,
    /// Highest version stored or loaded, tombstones and floors included: what a FLUSH
    /// must raise every floor to, since it forgets keys without naming them.
    max_seen: AtomicU64,
}

static STATE: OnceLock<ModuleState> = OnceLock::new();

impl ModuleState {
    pub fn new(config: ModuleConfig) -> Self {
        Self {
            floors: FloorTable::new(config.buckets),
            cold: AtomicBool::new(config.cold_start),
            config,
            counters: Counters::default(),
            max_seen: AtomicU64::new(0),
        }
    }

    /// The order checks in force: a constant in every production build, so the
    /// write path compiles exactly as if there were no switch.
    #[inline(always)]
    pub fn gates(&self) -> Gates {
        #[cfg(feature = "unsafe-test-gates")]
        return self.config.gates;
        #[cfg(not(feature = "unsafe-test-gates"))]
        Gates::ALL
    }

    pub fn is_cold(&self) -> bool {
        self.cold.load(Ordering::Relaxed)
    }

    /// Sets the cold flag; a module configured with `cold-start no` is never cold.
    pub fn set_cold(&self, cold: bool) {
        self.cold
            .store(cold && self.config.cold_start, Ordering::Relaxed);
    }

    /// Main thread only, like [`Counters::bump`] (and for the same reason).
    pub fn saw_version(&self, version: u64) {
        if version > self.max_seen.load(Ordering::Relaxed) {
            self.max_seen.store(version, Ordering::Relaxed);
        }
    }

    pub fn max_seen(&self) -> u64 {
        self.max_seen.load(Ordering::Relaxed)
    }

    /// Resets the max-seen version (when a saved state is adopted wholesale).
    pub fn reset_max_seen(&self, version: u64) {
        self.max_seen.store(version, Ordering::Relaxed);
    }

    /// Raises the floor of `key`'s bucket and counts it.
    pub fn forget(&self, key: &[u8], version: u64) {
        if self.floors.raise_for(key, version) {
            Counters::bump(&self.counters.floors_raised);
        }
    }

    /// Raises `bucket`'s floor and counts it (for a key whose name is gone, see
    /// [`crate::load_discard`]).
    pub fn forget_in(&self, bucket: usize, version: u64) {
        if self.floors.raise_at(bucket, version) {
            self.counters.floors_raised.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets every floor and version seen and goes cold, as a fresh module does
    /// (`VFLOOR RESET`): the next relay handshake sets the floors from PostgreSQL.
    pub fn reset_cold(&self) {
        self.floors.reset();
        self.reset_max_seen(0);
        self.set_cold(true);
    }

    /// Raises every floor to at least `version` and counts the buckets that rose.
    pub fn raise_all(&self, version: u64) {
        let risen = self.floors.raise_all(version);
        self.counters
            .floors_raised
            .fetch_add(risen, Ordering::Relaxed);
        self.saw_version(version);
    }
}

/// Installs the state at module load. A second load in the same process (module
/// unload is impossible while a data type is registered) keeps the first state.
pub fn install(config: ModuleConfig) -> &'static ModuleState {
    STATE.get_or_init(|| ModuleState::new(config))
}

/// The state, once the module is loaded.
pub fn get() -> Option<&'static ModuleState> {
    STATE.get()
}
