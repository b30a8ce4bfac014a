//! PostgreSQL side: one session per claim loop.
//!
//! The session claims rows with `vset.claim(max)` inside an explicit transaction
//! and acknowledges them with COMMIT. If the session dies, PostgreSQL rolls the
//! transaction back and the claimed rows become claimable again: nothing is lost,
//! the batch is simply replayed.
//!
//! Wake-ups only save the claim loop its poll interval (the outbox table is the
//! truth). `SELECT vset.wakeup()` says which the database offers: `shared_memory`
//! (vset preloaded: a second connection loops on `vset.wait_for_commit`, which
//! returns when a tracked transaction commits, without NOTIFY's commit lock),
//! `notify` (the session LISTENs on the channel), or `poll`. An extension without
//! `vset.wakeup()` gets LISTEN.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, Config, Statement};

use crate::change::{Change, Claimed};
use crate::error::{RelayError, Result};

/// Session settings applied right after connecting.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// NOTIFY channel to LISTEN on.
    pub channel: String,
    /// `idle_in_transaction_session_timeout`: a relay that hangs mid-batch loses its
    /// session, and with it its claim, instead of holding rows forever.
    pub idle_in_transaction_timeout: Duration,
}

/// The claim statement. Columns are named so the relay does not depend on their
/// order in `vset.outbox`.
const CLAIM_SQL: &str =
    "SELECT id, cache_key, op, version, payload, created_at FROM vset.claim($1)";

/// Parses and validates the connection string once, at start-up.
pub fn parse_config(url: &str) -> Result<Config> {
    url.parse::<Config>()
        .map_err(|e| RelayError::Config(format!("--postgres: {}", crate::error::with_causes(&e))))
}

/// Quotes an SQL identifier (the channel name is user-supplied).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How a claim loop is woken when changes commit (`vset.wakeup()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    SharedMemory,
    Notify,
    Poll,
}

/// How long one `vset.wait_for_commit` call may sleep. The call holds a snapshot
/// while it sleeps, so it is kept short; the loop simply calls again.
const WAIT_FOR_COMMIT_MS: i32 = 2_000;

pub struct PgSession {
    client: Client,
    claim: Statement,
    wakeup: Wakeup,
    /// The `vset.wait_for_commit` loop (shared-memory wake-up), stopped on drop.
    waiter: Option<JoinHandle<()>>,
}

impl Drop for PgSession {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            w.abort();
        }
    }
}

/// Connects (TLS as the URL asks) and hands every notification to `on_notify`.
async fn connect_client(config: &Config, on_notify: Option<Arc<Notify>>) -> Result<Client> {
    let tls = native_tls::TlsConnector::new()
        .map_err(|e| RelayError::Config(format!("TLS setup: {e}")))?;
    let tls = postgres_native_tls::MakeTlsConnector::new(tls);
    let (client, mut connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if let Some(w) = &on_notify {
                        w.notify_one();
                    }
                }
                Ok(AsyncMessage::Notice(n)) => {
                    tracing::debug!(notice = %n.message(), "postgres notice")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "postgres session ended");
                    break;
                }
            }
        }
        // Wake the loop so it notices the dead session right away.
        if let Some(w) = &on_notify {
            w.notify_one();
        }
    });
    Ok(client)
}

/// What `vset.wakeup()` says (an extension without it: NOTIFY).
async fn wakeup_of(client: &Client) -> Result<Wakeup> {
    match client.query_one("SELECT vset.wakeup()", &[]).await {
        Ok(row) => Ok(match row.try_get::<_, String>(0)?.as_str() {
            "shared_memory" => Wakeup::SharedMemory,
            "poll" => Wakeup::Poll,
            _ => Wakeup::Notify,
        }),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_FUNCTION) => {
            Ok(Wakeup::Notify)
        }
        Err(e) => Err(e.into()),
    }
}

/// Loops on `vset.wait_for_commit` on its own connection and wakes `wake` whenever
/// the commit counter moves. Reconnects after errors; ends when aborted.
fn spawn_waiter(config: Config, wake: Arc<Notify>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match connect_client(&config, None).await {
                Ok(client) => {
                    // No statement timeout: a role-level one shorter than a wait would
                    // turn every wait into an error and a reconnect.
                    let _ = client
                        .batch_execute(
                            "SET application_name = 'vset-relay-wait'; SET statement_timeout = 0",
                        )
                        .await;
                    // -1: a value the counter never holds, so the first call returns
                    // at once with the current count.
                    let mut seen: i64 = -1;
                    loop {
                        match client
                            .query_one(
                                "SELECT vset.wait_for_commit($1, $2)",
                                &[&seen, &WAIT_FOR_COMMIT_MS],
                            )
                            .await
                            .and_then(|row| row.try_get::<_, i64>(0))
                        {
                            Ok(now) => {
                                // The first reply on a connection wakes the loop too:
                                // a commit between the loop's last claim and this
                                // connection's first count would otherwise wait for
                                // the poll.
                                if now != seen {
                                    wake.notify_one();
                                }
                                seen = now;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "vset.wait_for_commit failed; reconnecting");
                                // Whatever committed meanwhile: look now.
                                wake.notify_one();
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "wake-up connection not ready"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

impl PgSession {
    /// Connects and applies the session settings. With `wake`, sets up the wake-up
    /// the database offers (see the module docs): each commit then wakes `wake` (a
    /// stored permit, so one arriving mid-batch is not lost).
    pub async fn connect(
        config: &Config,
        settings: &SessionSettings,
        wake: Option<Arc<Notify>>,
    ) -> Result<Self> {
        let client = connect_client(config, wake.clone()).await?;
        let timeout_ms = settings.idle_in_transaction_timeout.as_millis();
        // synchronous_commit = off for this session only: an ack (the COMMIT that
        // deletes claimed rows) need not wait for the WAL flush. If the server
        // crashes before flushing it, the rows come back and are applied again,
        // which the version check makes harmless; meanwhile the next batch is not
        // held up by an fsync.
        client
            .batch_execute(&format!(
                "SET application_name = 'vset-relay';
                 SET idle_in_transaction_session_timeout = {timeout_ms};
                 SET synchronous_commit = off;"
            ))
            .await?;
        let wakeup = wakeup_of(&client).await?;
        let mut waiter = None;
        if let Some(wake) = wake {
            match wakeup {
                Wakeup::SharedMemory => waiter = Some(spawn_waiter(config.clone(), wake)),
                Wakeup::Notify => {
                    client
                        .batch_execute(&format!("LISTEN {}", quote_ident(&settings.channel)))
                        .await?
                }
                Wakeup::Poll => {}
            }
        }
        let claim = client.prepare(CLAIM_SQL).await?;
        Ok(Self {
            client,
            claim,
            wakeup,
            waiter,
        })
    }

    /// The wake-up this session uses.
    pub fn wakeup(&self) -> Wakeup {
        self.wakeup
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// BEGIN and claim up to `max` rows. The transaction stays open: the caller
    /// must [`commit`](Self::commit) (ack) or [`rollback`](Self::rollback).
    pub async fn begin_claim(&self, max: u32) -> Result<Vec<Claimed>> {
        // Sequential on purpose: were BEGIN to fail while the claim ran, the claim
        // would auto-commit and delete rows that were never applied.
        self.client.batch_execute("BEGIN").await?;
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        let rows = self.client.query(&self.claim, &[&max]).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            claimed.push(Change::from_row(
                row.try_get::<_, i64>("id")?,
                row.try_get::<_, Option<String>>("cache_key")?,
                row.try_get::<_, Option<String>>("op")?,
                row.try_get::<_, Option<i64>>("version")?,
                row.try_get::<_, Option<String>>("payload")?,
                row.try_get::<_, Option<SystemTime>>("created_at")?,
            ));
        }
        Ok(claimed)
    }

    /// Acknowledges the claimed rows (they were deleted by the claim).
    pub async fn commit(&self) -> Result<()> {
        Ok(self.client.batch_execute("COMMIT").await?)
    }

    /// Gives the claimed rows back.
    pub async fn rollback(&self) -> Result<()> {
        Ok(self.client.batch_execute("ROLLBACK").await?)
    }

    /// The version sequence's last value: the floor to set after a cold start.
    pub async fn current_version(&self) -> Result<u64> {
        let row = self
            .client
            .query_one("SELECT vset.current_version()", &[])
            .await?;
        let v: Option<i64> = row.try_get(0)?;
        Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }

    /// Rows waiting in the outbox (for the backlog gauge).
    pub async fn backlog(&self) -> Result<i64> {
        let row = self
            .client
            .query_one("SELECT count(*) FROM vset.outbox", &[])
            .await?;
        Ok(row.try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_quoted_as_identifiers() {
        assert_eq!(quote_ident("vset"), "\"vset\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn bad_connection_strings_are_configuration_errors() {
        assert!(matches!(
            parse_config("postgres://h:notaport/db"),
            Err(RelayError::Config(_))
        ));
        assert!(parse_config("postgres://u@127.0.0.1:5432/db").is_ok());
    }
}
