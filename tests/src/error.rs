//! Errors of the harness itself (a server that would not start, a missing binary):
//! tests fail with these messages, so they say what to install or look at.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("could not start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not become ready within {secs}s; its log ({log}) ends with:\n{tail}")]
    NotReady {
        what: String,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error(
        "artifact not found: {0} (run `make build` first, or set the env var named in the message)"
    )]
    MissingArtifact(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
