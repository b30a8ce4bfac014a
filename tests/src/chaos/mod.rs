//! The chaos matrix (issue 5): each cell runs concurrent writers on hot keys of a
//! tracked table for a bounded time, injects its fault, lets the relays drain and
//! ends with `vset-verify`. A cell yields one [`CellRow`]: writes, faults injected,
//! stale keys after convergence (must be 0), worst staleness window observed and
//! time to converge.
//!
//! The same cells run short in `make test` (`tests/tests/chaos_*.rs`) and long in
//! `make chaos` (the `vset-chaos` binary of the `lab/` crate).
//!
//! | module | job |
//! | --- | --- |
//! | [`world`] | one cell's private PostgreSQL + redis-server + tracked table + relays |
//! | [`workload`] | writer threads (update / delete / re-insert on hot keys) and the staleness prober |
//! | [`cells`] | the faults, one function per cell |

pub mod cells;
pub mod workload;
pub mod world;

use std::time::Duration;

pub use cells::{run_cell, Cell};

/// How big and long a cell is.
#[derive(Debug, Clone)]
pub struct CellSize {
    /// How long writers run (faults are injected during this time).
    pub duration: Duration,
    pub writers: usize,
    /// Hot keys written (ids `1..=keys`).
    pub keys: i32,
    /// Seed of writers' and faults' random choices.
    pub seed: u64,
}

impl CellSize {
    /// A few seconds: what `make test` runs.
    pub fn short() -> Self {
        Self {
            duration: Duration::from_secs(4),
            writers: 4,
            keys: 20,
            seed: 1,
        }
    }

    /// What `make chaos` runs.
    pub fn long() -> Self {
        Self {
            duration: Duration::from_secs(45),
            writers: 8,
            keys: 50,
            seed: 1,
        }
    }
}

/// One line of the chaos table.
#[derive(Debug, Clone)]
pub struct CellRow {
    pub cell: &'static str,
    pub fault: &'static str,
    /// Committed writes (insert, update, delete statements that changed a row).
    pub writes: u64,
    pub faults: u64,
    /// Stale + orphaned keys `vset-verify` found after convergence (must be 0).
    pub stale: u64,
    /// vset-verify's counts, for the record.
    pub verify: vset_verify::Counts,
    /// Longest time the prober saw a key's cached value differ from its last
    /// committed value (faults such as a stopped relay make this long; it is a lag,
    /// not a stale entry, as long as convergence ends it).
    pub worst_window: Duration,
    /// From the writers' stop (faults cleared) until the outbox was empty.
    pub converge: Duration,
    /// Prober rounds behind `worst_window` (and failed rounds, e.g. Redis down).
    pub probes: u64,
    pub probe_errors: u64,
}

impl CellRow {
    pub fn markdown_header() -> &'static str {
        "| cell | fault | writes | faults injected | stale keys after convergence | worst staleness window | time to converge |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    }

    pub fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} ms | {} ms |",
            self.cell,
            self.fault,
            self.writes,
            self.faults,
            self.stale,
            self.worst_window.as_millis(),
            self.converge.as_millis()
        )
    }
}

/// Why a cell could not run to its verdict.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error(transparent)]
    Harness(#[from] crate::HarnessError),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("verify: {0}")]
    Verify(#[from] vset_verify::VerifyError),
    #[error("{0}")]
    Stuck(String),
}
