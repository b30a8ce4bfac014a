//! What can go wrong in the relay, typed, so the claim loop can decide what to
//! drop and reconnect (a broken PostgreSQL session vs. a broken Redis connection)
//! and what to simply retry.

/// One failure of a claim/apply/ack round or of a connection attempt.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A bad flag or URL: retrying cannot help, the relay exits.
    #[error("configuration: {0}")]
    Config(String),

    /// PostgreSQL refused a statement or the session broke. The claimed rows (if
    /// any) return to the queue when the transaction rolls back or the session ends.
    #[error("postgres: {}", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),

    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),

    /// Redis answered something this relay does not understand (e.g. the vset
    /// module is not loaded, or a key holds a non-vset value).
    #[error("redis reply to {command}: {detail}")]
    RedisReply { command: String, detail: String },

    /// The module still reported a cold start after VFLOOR was set.
    #[error("redis module stayed cold after VFLOOR {0}")]
    StillCold(u64),

    /// The metrics listener could not start.
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl RelayError {
    /// True when the PostgreSQL session can no longer be used and must be replaced.
    pub fn breaks_postgres(&self) -> bool {
        matches!(self, RelayError::Postgres(e) if e.is_closed())
    }

    /// True when the Redis connection should be dropped and made anew. Every Redis
    /// failure qualifies: reconnecting is cheap, and a fresh connection re-runs the
    /// cold-start check, which is exactly what is wanted after a Redis restart.
    pub fn breaks_redis(&self) -> bool {
        matches!(
            self,
            RelayError::Redis(_) | RelayError::RedisReply { .. } | RelayError::StillCold(_)
        )
    }

    /// Short label used in the `errors` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            RelayError::Config(_) => "config",
            RelayError::Postgres(_) => "postgres",
            RelayError::Redis(_) | RelayError::RedisReply { .. } => "redis",
            RelayError::StillCold(_) => "cold",
            RelayError::Metrics { .. } => "metrics",
        }
    }
}

/// The error and its causes on one line: tokio-postgres' own message ("error
/// connecting to server") hides the useful part (which host, refused or timed out).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

pub type Result<T, E = RelayError> = std::result::Result<T, E>;
