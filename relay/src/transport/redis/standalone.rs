//! A standalone Redis (or a primary), over one multiplexed connection.
//!
//! A batch is one pipeline: `VFLOOR` first (the cheap per-batch cold-start check:
//! Redis can restart under a live connection), then one `VSET`/`VDEL` per row.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};

use super::{commands, floor, Applied, CacheTarget, Outcome};
use crate::change::Claimed;
use crate::error::{RelayError, Result};

pub struct StandaloneTarget {
    client: Client,
    config: AsyncConnectionConfig,
    conn: Option<MultiplexedConnection>,
    described: String,
}

impl StandaloneTarget {
    /// Validates the URL now (a bad URL is a configuration error); connects later.
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let client = Client::open(url)
            .map_err(|e| RelayError::Config(format!("--redis {}: {e}", redact(url))))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Ok(Self {
            described: redact(url),
            client,
            config,
            conn: None,
        })
    }

    async fn conn(&mut self) -> Result<&mut MultiplexedConnection> {
        if self.conn.is_none() {
            let conn = self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            self.conn = Some(conn);
        }
        // Just filled above when it was empty.
        self.conn
            .as_mut()
            .ok_or_else(|| RelayError::Config("redis connection vanished".into()))
    }
}

impl CacheTarget for StandaloneTarget {
    async fn apply(&mut self, batch: &[Claimed]) -> Result<Applied> {
        let mut pipe = redis::pipe();
        // Server errors come back as values so that we can name the failing command.
        pipe.ignore_errors();
        pipe.cmd("VFLOOR");
        let mut sent = Vec::with_capacity(batch.len());
        for row in batch {
            if let Some(cmd) = commands::command_for(row) {
                pipe.add_command(cmd);
                sent.push(true);
            } else {
                sent.push(false);
            }
        }
        let replies: Vec<Value> = pipe.query_async(self.conn().await?).await?;
        let mut replies = replies.into_iter();
        let state = floor::parse(&replies.next().unwrap_or(Value::Nil))?;
        if state.cold {
            return Ok(Applied::Cold);
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for (row, was_sent) in batch.iter().zip(sent) {
            if !was_sent {
                outcomes.push(Outcome::Skipped);
                continue;
            }
            let reply = replies.next().ok_or_else(|| RelayError::RedisReply {
                command: "pipeline".into(),
                detail: "fewer replies than commands".into(),
            })?;
            outcomes.push(commands::outcome_of(row, &reply)?);
        }
        Ok(Applied::Outcomes(outcomes))
    }

    async fn replace_foreign(&mut self, row: &Claimed) -> Result<Outcome> {
        let Some(key) = commands::key_of(row) else {
            return Ok(Outcome::Skipped);
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("DEL").arg(key);
        let command = commands::command_for(row);
        if let Some(cmd) = &command {
            pipe.add_command(cmd.clone());
        }
        let replies: Vec<Value> = pipe.query_async(self.conn().await?).await?;
        if let Some(Value::ServerError(e)) = replies.first() {
            return Err(RelayError::RedisReply {
                command: "DEL".into(),
                detail: format!("{e:?}"),
            });
        }
        match (command, replies.get(1)) {
            (Some(_), Some(reply)) => commands::outcome_of(row, reply),
            _ => Ok(Outcome::Forgotten),
        }
    }

    async fn check_cold(&mut self) -> Result<bool> {
        let reply: Value = redis::cmd("VFLOOR").query_async(self.conn().await?).await?;
        Ok(floor::parse(&reply)?.cold)
    }

    async fn set_floor(&mut self, version: u64) -> Result<()> {
        let reply: Value = redis::cmd("VFLOOR")
            .arg(version)
            .query_async(self.conn().await?)
            .await?;
        match reply {
            Value::Okay => Ok(()),
            Value::SimpleString(s) if s == "OK" => Ok(()),
            other => Err(RelayError::RedisReply {
                command: format!("VFLOOR {version}"),
                detail: format!("{other:?}"),
            }),
        }
    }

    fn reset(&mut self) {
        self.conn = None;
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("redis://relay:s3cret@10.0.0.1:6379/0"),
            "redis://relay:***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("rediss://:pw@h:1"), "rediss://:***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
