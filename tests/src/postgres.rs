//! Placeholder: the PostgreSQL harness (PgCluster) lands with the extension.
