//! The backlog gauge: rows waiting in `vset.outbox`, counted on a separate session
//! every `--backlog-interval` (only when metrics are served).

use std::time::Duration;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::transport::postgres::{PgSession, SessionSettings};

pub async fn watch_backlog(
    postgres: tokio_postgres::Config,
    settings: SessionSettings,
    every: Duration,
    metrics: Metrics,
    mut shutdown: Shutdown,
) {
    let mut session: Option<PgSession> = None;
    while !shutdown.requested() {
        if session.as_ref().is_none_or(PgSession::is_closed) {
            session = PgSession::connect(&postgres, &settings, None)
                .await
                .map_err(|e| tracing::debug!(error = %e, "backlog session not ready"))
                .ok();
        }
        if let Some(s) = &session {
            match s.backlog().await {
                Ok(n) => metrics.backlog.set(n),
                Err(e) => {
                    tracing::debug!(error = %e, "counting the backlog");
                    session = None;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait() => {}
        }
    }
}
