//! One claim → apply → ack round, and the cold-start handshake with the module.

use std::time::{Instant, SystemTime};

use super::Worker;
use crate::change::Claimed;
use crate::error::{RelayError, Result};
use crate::transport::postgres::PgSession;
use crate::transport::redis::{Applied, CacheTarget, Outcome};

impl<T: CacheTarget> Worker<T> {
    /// Makes sure a live PostgreSQL session exists.
    async fn session(&mut self) -> Result<&PgSession> {
        if self.pg.as_ref().is_none_or(PgSession::is_closed) {
            self.pg = None;
            let session = PgSession::connect(
                &self.config.postgres,
                &self.config.session,
                Some(self.wake.clone()),
            )
            .await?;
            tracing::info!(
                worker = self.id,
                wakeup = ?session.wakeup(),
                channel = %self.config.session.channel,
                "postgres session ready"
            );
            self.pg = Some(session);
        }
        self.pg
            .as_ref()
            .ok_or_else(|| RelayError::Config("postgres session vanished".into()))
    }

    /// The cold-start handshake: if the module (on any node) started without its
    /// saved state, set its floor to the version sequence's current value before
    /// anything is applied. Every change already committed then has a version at or
    /// below the floor and becomes a cache miss, never a stale value.
    async fn end_cold_start(&mut self) -> Result<()> {
        let version = {
            let pg = self.session().await?;
            pg.current_version().await?
        };
        self.target.set_floor(version).await?;
        self.metrics.cold_starts.inc();
        tracing::warn!(
            worker = self.id,
            floor = version,
            redis = %self.target.describe(),
            "redis module was cold (restarted without its data): set VFLOOR; older changes are now cache misses"
        );
        Ok(())
    }

    /// Claims, applies and acknowledges one batch. Returns how many rows it held.
    pub(super) async fn round(&mut self) -> Result<usize> {
        self.session().await?;
        if !self.cold_checked {
            if self.target.check_cold().await? {
                self.end_cold_start().await?;
            }
            self.cold_checked = true;
        }

        let started = Instant::now();
        let max = self.config.batch_size;
        let batch = self.session().await?.begin_claim(max).await?;
        if batch.is_empty() {
            self.session().await?.commit().await?;
            return Ok(0);
        }

        let outcomes = self.apply(&batch).await?;
        let outcomes = self.clear_refused_keys(&batch, outcomes).await?;
        let applied_at = SystemTime::now();
        // Only now, with an answer for every row, are the rows acknowledged.
        self.session().await?.commit().await?;

        self.record(&batch, &outcomes, applied_at);
        self.metrics.acked.inc_by(batch.len() as u64);
        self.metrics.batch_size.observe(batch.len() as f64);
        self.metrics
            .batch_duration
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(worker = self.id, rows = batch.len(), "batch acknowledged");
        Ok(batch.len())
    }

    /// Applies a batch; if the module turns out to be cold, ends the cold start
    /// and applies it again (its rows are then normally rejected: a miss, safe).
    async fn apply(&mut self, batch: &[Claimed]) -> Result<Vec<Outcome>> {
        match self.target.apply(batch).await? {
            Applied::Outcomes(outcomes) => Ok(outcomes),
            Applied::Cold => {
                self.end_cold_start().await?;
                match self.target.apply(batch).await? {
                    Applied::Outcomes(outcomes) => Ok(outcomes),
                    Applied::Cold => Err(RelayError::StillCold(
                        self.session().await?.current_version().await?,
                    )),
                }
            }
        }
    }

    /// Rows whose key alone refused them (invariant 11: one bad key delays only
    /// itself, and never keeps an older value): `WRONGTYPE`, the key holds a value
    /// of another type, typically a plain `SET` from the cache vset replaced, which
    /// is older than any committed change. A tracked key belongs to vset: the key
    /// is deleted and the row sent again; counted and logged with row id and key.
    /// (`OOM` is not one of these: it fails the batch, see the Redis transport.)
    async fn clear_refused_keys(
        &mut self,
        batch: &[Claimed],
        mut outcomes: Vec<Outcome>,
    ) -> Result<Vec<Outcome>> {
        for (row, outcome) in batch.iter().zip(outcomes.iter_mut()) {
            if *outcome != Outcome::Foreign {
                continue;
            }
            let (id, key) = match row {
                Claimed::Change(c) => (c.id, c.cache_key.as_str()),
                Claimed::Unversioned(u) => (u.id, u.cache_key.as_str()),
                Claimed::Keyless { id } => (*id, ""),
            };
            let after = self.target.replace_foreign(row).await?;
            self.metrics.foreign_replaced.inc();
            tracing::warn!(id, key, outcome = ?after,
                "key held a value of another type (WRONGTYPE): deleted it and applied the change");
            // Still refused after the DEL: someone wrote the key again in between (an
            // application still writing plain values under a tracked prefix). The
            // key holds no vset value, so nothing older is served by vset; the row
            // is acknowledged and the operator told.
            *outcome = match after {
                Outcome::Foreign => {
                    tracing::error!(id, key,
                        "key refused the change again right after DEL: another writer uses this tracked key");
                    Outcome::Forgotten
                }
                other => other,
            };
        }
        Ok(outcomes)
    }

    fn record(&self, batch: &[Claimed], outcomes: &[Outcome], applied_at: SystemTime) {
        for (row, outcome) in batch.iter().zip(outcomes) {
            match (row, outcome) {
                (Claimed::Change(c), Outcome::Stored | Outcome::Rejected) => {
                    if matches!(outcome, Outcome::Stored) {
                        self.metrics.applied.inc();
                    } else {
                        self.metrics.rejected.inc();
                    }
                    if let Some(created_at) = c.created_at {
                        self.metrics.observe_lag(created_at, applied_at);
                    }
                    if let crate::change::Action::TombstoneMalformed { reason } = &c.action {
                        self.metrics.invalid_rows.inc();
                        tracing::error!(id = c.id, key = %c.cache_key, version = c.version, %reason,
                            "malformed outbox row: wrote a tombstone at its version instead");
                    }
                }
                (Claimed::Unversioned(u), _) => {
                    self.metrics.invalid_rows.inc();
                    tracing::error!(id = u.id, key = %u.cache_key, reason = %u.reason,
                        "outbox row without a usable version: deleted the key instead");
                }
                (Claimed::Keyless { id }, _) => {
                    self.metrics.invalid_rows.inc();
                    tracing::error!(id, "outbox row without a cache key: skipped");
                }
                // Replaced after WRONGTYPE and refused again: counted and logged there.
                (Claimed::Change(_), Outcome::Forgotten) => {}
                (Claimed::Change(c), other) => {
                    tracing::error!(id = c.id, outcome = ?other, "unexpected outcome for a change");
                }
            }
        }
    }
}
