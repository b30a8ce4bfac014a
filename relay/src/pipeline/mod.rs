//! The claim → apply → ack loop.
//!
//! One [`Worker`] owns one PostgreSQL session and one Redis connection and repeats:
//!
//! 1. BEGIN; claim up to `--batch-size` rows (`vset.claim`, SKIP LOCKED, deleted);
//! 2. apply them to Redis in one pipelined round trip, checking the module's cold
//!    state first ([`round`]);
//! 3. COMMIT when every row got an answer (stored or rejected, both final), else
//!    ROLLBACK and back off with jitter ([`backoff`]). Rows whose apply failed are
//!    never acknowledged.
//!
//! When the outbox is empty the worker sleeps until a NOTIFY or `--poll-interval`,
//! whichever comes first. Connections that break are dropped and made anew on the
//! next round; the PostgreSQL server gives back whatever a dead session had claimed.

mod backlog;
mod backoff;
mod round;

pub use backlog::watch_backlog;
pub use backoff::Backoff;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::RelayError;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::transport::postgres::{PgSession, SessionSettings};
use crate::transport::redis::CacheTarget;

/// Settings shared by every worker of the process.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    pub postgres: tokio_postgres::Config,
    pub session: SessionSettings,
    pub batch_size: u32,
    pub poll_interval: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

/// One claim loop.
pub struct Worker<T: CacheTarget> {
    id: u16,
    config: Arc<LoopConfig>,
    target: T,
    pg: Option<PgSession>,
    /// False until the cold-start check ran on the current Redis connection (and
    /// again after every idle poll, since Redis may restart while we are idle).
    cold_checked: bool,
    wake: Arc<Notify>,
    metrics: Metrics,
    shutdown: Shutdown,
    backoff: Backoff,
}

impl<T: CacheTarget> Worker<T> {
    pub fn new(
        id: u16,
        config: Arc<LoopConfig>,
        target: T,
        metrics: Metrics,
        shutdown: Shutdown,
    ) -> Self {
        let backoff = Backoff::new(config.backoff_min, config.backoff_max);
        Self {
            id,
            config,
            target,
            pg: None,
            cold_checked: false,
            wake: Arc::new(Notify::new()),
            metrics,
            shutdown,
            backoff,
        }
    }

    /// Runs until shutdown is requested; the batch in hand is always finished
    /// (committed or rolled back) first.
    pub async fn run(mut self) {
        tracing::info!(worker = self.id, redis = %self.target.describe(), "claim loop started");
        while !self.shutdown.requested() {
            match self.round().await {
                Ok(n) => {
                    if self.backoff.failures() > 0 {
                        tracing::info!(worker = self.id, "recovered");
                    }
                    self.backoff.reset();
                    // A full batch means more is probably waiting: go again at once.
                    if n < self.config.batch_size as usize {
                        self.wait_for_work().await;
                    }
                }
                Err(e) => self.recover(e).await,
            }
        }
        if let Some(pg) = self.pg.take() {
            // Nothing is in flight here; this only ends the session politely.
            let _ = pg.rollback().await;
        }
        tracing::info!(worker = self.id, "claim loop stopped");
    }

    async fn wait_for_work(&mut self) {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(self.config.poll_interval) => {
                // Idle: re-check Redis for a cold start on the next round, so read-miss
                // fills are not refused for long after a Redis restart.
                self.cold_checked = false;
            }
            _ = shutdown.wait() => {}
        }
    }

    /// Drops what the error broke, counts it, and waits (with jitter) before the
    /// next try.
    async fn recover(&mut self, error: RelayError) {
        self.metrics.errors.with_label_values(&[error.kind()]).inc();
        if error.breaks_redis() {
            self.target.reset();
            self.cold_checked = false;
        }
        if let Some(pg) = self.pg.take() {
            // Give back anything claimed; an aborted transaction needs it anyway.
            // If the session is dead, PostgreSQL already did.
            if !error.breaks_postgres() && !pg.is_closed() && pg.rollback().await.is_ok() {
                self.pg = Some(pg);
            }
        }
        let delay = self.backoff.next_delay();
        tracing::warn!(
            worker = self.id,
            error = %error,
            failures = self.backoff.failures(),
            retry_in_ms = delay.as_millis() as u64,
            "round failed (nothing acknowledged); retrying"
        );
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait() => {}
        }
    }
}
