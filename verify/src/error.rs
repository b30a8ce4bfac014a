//! Everything that can stop a verification run. A run that *finds* stale or
//! orphaned entries is not an error: that is a [`crate::report::Report`] with a
//! failing verdict. These are the cases where no verdict can be given at all.

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("TLS setup for PostgreSQL: {0}")]
    Tls(#[from] native_tls::Error),
    #[error("bad option: {0}")]
    Usage(String),
    #[error("vset.tracked row for {table} cannot be checked: {reason}")]
    Catalog { table: String, reason: String },
    #[error("unexpected reply from Redis for {what}: {detail}")]
    Reply { what: String, detail: String },
}

pub type Result<T> = std::result::Result<T, VerifyError>;
