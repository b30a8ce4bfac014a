//! # vset-tests — the harness every vset test stands on
//!
//! vset's promise ("no stale cache entry survives") is only worth something when it
//! is checked against the real thing, so every integration test in this workspace
//! starts its own **real** `redis-server` (with the vset module loaded) and its own
//! **real** PostgreSQL cluster, on free loopback ports, in private temporary
//! folders, and tears them down when the guard is dropped. Nothing here talks to a
//! server someone else started, and nothing is mocked.
//!
//! | module | job |
//! | --- | --- |
//! | [`ports`] | pick free loopback TCP ports |
//! | [`process`] | a child process that is killed (and reaped) when dropped |
//! | [`paths`] | where the workspace, the build output and the built artifacts are |
//! | [`redis`] | start `redis-server` with the vset module: standalone, replica, cluster |
//! | [`postgres`] | start a private PostgreSQL cluster as an unprivileged user |
//! | [`stack`] | the whole system in one fixture: Postgres + Redis + relay processes |
//! | [`relay`] | spawn a relay (the Rust binary or any other command line) against a stack |
//! | [`workload`] | concurrent writers on hot keys |
//! | [`convergence`] | the checker: Redis holds exactly each row's payload, nothing for deleted rows |
//! | [`tls`] | throwaway CAs and server certificates (`openssl` CLI) for TLS tests |
//! | [`chaos`] | the chaos matrix cells (faults + workload + verify), short in tests, long in `make chaos` |
//!
//! The end-to-end tests of the whole system (relay included) live in `tests/tests/`.

pub mod chaos;
pub mod convergence;
pub mod error;
pub mod paths;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod relay;
pub mod stack;
pub mod tls;
pub mod workload;

pub use error::HarnessError;
