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
//! | [`cells`] | the faults, one function per cell, and each cell's control |
//! | [`staging`] | each cell's final round: its named interleaving, staged on purpose |
//! | [`stall`] | a proxy that holds a relay's writes in flight (late writes on demand) |
//! | [`oracle`] | the audit of every version drawn, the exact end state, module counters |
//!
//! Every cell runs twice: against the real module, where it must end exact, warm
//! and having counted its event, and as its **control**, against a module with
//! the protection its fault targets switched off, where it must find stale
//! entries. A cell whose control passes tests nothing.

pub mod cells;
pub mod oracle;
pub mod staging;
pub mod stall;
pub mod workload;
pub mod world;

use std::time::Duration;

pub use cells::{run_variant, Cell, Variant};
pub use oracle::ExactState;
pub use staging::Staged;

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
    pub variant: Variant,
    /// Committed writes (insert, update, delete statements that changed a row).
    pub writes: u64,
    pub faults: u64,
    /// Stale + orphaned keys `vset-verify` found after convergence (must be 0).
    pub stale: u64,
    /// vset-verify's counts, for the record.
    pub verify: vset_verify::Counts,
    /// Every key against its last audited change (payload and version).
    pub exact: ExactState,
    /// After the final touch of every live hot row (real runs only): all exact.
    pub warm: Option<ExactState>,
    /// Whether live rows may end uncached before the touch in this cell.
    pub misses_allowed: bool,
    /// The module refusals the cell is named for, over the whole run.
    pub events: u64,
    /// The final round: the named interleaving staged on purpose.
    pub staged: Staged,
    /// AOF cell: keys whose version went down or vanished across a restart, and
    /// keys that came back at their version.
    pub reload_lost: u64,
    pub reloaded: u64,
    /// Two-relays cell: rows each relay stored.
    pub per_relay_stored: Vec<u64>,
    /// Prober: keys seen at a lower version than they had shown (stale served),
    /// and for how long in all.
    pub regressions: u64,
    pub time_stale: Duration,
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
    /// Stale entries this run found by any means: vset-verify, the exact end
    /// state, the prober's regressions, the staged late writes stored, keys the
    /// AOF did not give back.
    pub fn stale_found(&self) -> u64 {
        self.stale + self.exact.wrong + self.regressions + self.staged.stored + self.reload_lost
    }

    /// Why this run fails its cell (empty: it passes). A real run must be exact,
    /// warm and have met its event; a control must have found stale entries, among
    /// them a late write of its final round stored.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.variant == Variant::Control {
            if self.stale_found() == 0 {
                p.push(format!(
                    "control found nothing stale: the cell does not test what it is named for ({:?})",
                    self
                ));
            }
            if self.staged.stored == 0 {
                // The writers' random faults may find stale values by luck; the staged
                // round is the race itself, and a broken gate must let it through.
                p.push(format!(
                    "control: the final round stored no late write ({:?}): it does not reach the race it stages",
                    self.staged
                ));
            }
            return p;
        }
        let mut need = |ok: bool, what: String| {
            if !ok {
                p.push(what);
            }
        };
        need(self.writes > 0, "no writes happened".into());
        need(self.faults > 0, "no fault was injected".into());
        need(
            self.stale == 0,
            format!(
                "vset-verify: {} stale/orphaned keys ({:?})",
                self.stale, self.verify
            ),
        );
        need(
            self.exact.wrong == 0,
            format!(
                "{} keys not at their last change: {:?}",
                self.exact.wrong, self.exact.examples
            ),
        );
        need(
            self.misses_allowed || self.exact.missing == 0,
            format!(
                "{} live rows uncached where no fault forgets keys",
                self.exact.missing
            ),
        );
        need(
            self.regressions == 0,
            format!("the prober saw {} regressed values", self.regressions),
        );
        need(
            self.events > 0,
            "the event the cell is named for never happened".into(),
        );
        need(
            self.staged.keys > 0,
            "the final round staged nothing".into(),
        );
        need(
            self.staged.refused > 0 && self.staged.stored == 0,
            format!(
                "final round: {} late writes refused, {} stored",
                self.staged.refused, self.staged.stored
            ),
        );
        need(
            self.staged.broken.is_empty(),
            format!("{:?}", self.staged.broken),
        );
        need(
            self.reload_lost == 0,
            format!(
                "{} keys lost or older after an AOF restart",
                self.reload_lost
            ),
        );
        if self.cell == "redis-aof-restart" {
            need(self.reloaded > 0, "no key came back from the AOF".into());
            if let Some((kept, of)) = self.staged.reloaded {
                need(
                    kept == of,
                    format!("final AOF restart gave back {kept} of {of} keys"),
                );
            }
        }
        if !self.per_relay_stored.is_empty() {
            need(
                self.per_relay_stored.iter().all(|n| *n > 0),
                format!("a relay stored nothing: {:?}", self.per_relay_stored),
            );
        }
        match &self.warm {
            Some(w) => need(
                w.wrong == 0 && w.missing == 0 && w.exact > 0,
                format!("not warm after the final touch: {w:?}"),
            ),
            None => need(false, "warm check missing".into()),
        }
        p
    }

    pub fn markdown_header() -> &'static str {
        "| cell | fault | writes | faults injected | named event (count) | final round: staged / refused / stored | stale after convergence | exact / missing / deleted keys | prober regressions | worst lag | control: what it breaks → stale found |\n\
         | --- | --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | --- |"
    }

    /// The row of a real run, with its control's finding.
    pub fn markdown(&self, event: &str, control: Option<(&str, &CellRow)>) -> String {
        let control = match control {
            Some((what, c)) => format!(
                "{what} → {} (verify {}, wrong keys {}, regressions {}, late stored {}, lost on reload {})",
                c.stale_found(),
                c.stale,
                c.exact.wrong,
                c.regressions,
                c.staged.stored,
                c.reload_lost
            ),
            None => "not run".into(),
        };
        let mut staged = format!(
            "{} / {} / {}",
            self.staged.keys, self.staged.refused, self.staged.stored
        );
        for n in &self.staged.notes {
            staged.push_str(&format!("; {n}"));
        }
        if let Some((kept, of)) = self.staged.reloaded {
            staged.push_str(&format!("; {kept} of {of} reloaded"));
        }
        format!(
            "| {} | {} | {} | {} | {}: {} | {} | {} | {} / {} / {} | {} | {} ms | {} |",
            self.cell,
            self.fault,
            self.writes,
            self.faults,
            event,
            self.events,
            staged,
            self.stale,
            self.exact.exact,
            self.exact.missing,
            self.exact.deleted,
            self.regressions,
            self.worst_window.as_millis(),
            control
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
