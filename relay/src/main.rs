//! # vset-relay — moves committed changes from PostgreSQL into Redis, order-safely
//!
//! The PostgreSQL extension (`pg-extension/`) writes one versioned row into
//! `vset.outbox` per captured row change, inside the writing transaction. This
//! binary claims those rows (`vset.claim`, FOR UPDATE SKIP LOCKED), applies them to
//! Redis with the module's (`redis-module/`) order-safe `VSET key version payload`
//! and `VDEL key version`, and acknowledges them by committing. Delivery is
//! at-least-once; the module's version check makes replays and reordering harmless.
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | flags and env vars (`--help` is the manual) |
//! | [`pipeline`] | the claim → apply → ack loop, backoff, cold-start handshake |
//! | [`transport`] | PostgreSQL session; Redis standalone/cluster behind one trait |
//! | [`change`] | a claimed row and what it means for Redis |
//! | [`metrics`] | Prometheus text on `--metrics ADDR` |
//! | [`shutdown`] | SIGTERM/SIGINT: finish the batch in hand, exit 0 |
//! | [`error`] | typed errors |

mod change;
mod cli;
mod error;
mod metrics;
mod pipeline;
mod shutdown;
mod transport;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, LogFormat, RunArgs};
use error::{RelayError, Result};
use metrics::Metrics;
use pipeline::{LoopConfig, Worker};
use shutdown::Shutdown;
use transport::postgres::{self, SessionSettings};
use transport::redis::{CacheTarget, ClusterTarget, StandaloneTarget};

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let args = match cli.run_args() {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    // One runtime thread per claim loop: a loop and its connection drivers then
    // mostly stay on one thread instead of waking each other across threads on
    // every round trip.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.workers).clamp(1, 8))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vset-relay: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "vset-relay cannot run");
            eprintln!("vset-relay: {e}");
            ExitCode::from(2)
        }
    }
}

/// Validates everything that can be validated up front, then runs the workers
/// until a signal arrives.
async fn run(args: RunArgs) -> Result<()> {
    let postgres = postgres::parse_config(&args.postgres)?;
    let session = SessionSettings {
        channel: args.channel.clone(),
        idle_in_transaction_timeout: args.idle_in_transaction_timeout,
    };
    let config = Arc::new(LoopConfig {
        postgres: postgres.clone(),
        session: session.clone(),
        batch_size: args.batch_size,
        poll_interval: args.poll_interval,
        backoff_min: args.backoff_min,
        backoff_max: args.backoff_max,
    });

    let metrics = Metrics::new();
    let (trigger, shutdown) = shutdown::channel();
    trigger
        .on_signals()
        .map_err(|e| RelayError::Config(format!("cannot install signal handlers: {e}")))?;

    if let Some(addr) = args.metrics {
        let bound = metrics::serve(metrics.clone(), addr).await?;
        tracing::info!(%bound, "serving Prometheus metrics on /metrics");
        tokio::spawn(pipeline::watch_backlog(
            postgres,
            session,
            args.backlog_interval,
            metrics.clone(),
            shutdown.clone(),
        ));
    }

    match (&args.redis, &args.redis_cluster) {
        (Some(url), _) => {
            let timeout = args.redis_timeout;
            run_workers(&args, config, metrics, shutdown, || {
                StandaloneTarget::new(url, timeout)
            })
            .await
        }
        (None, Some(urls)) => {
            let timeout = args.redis_timeout;
            run_workers(&args, config, metrics, shutdown, || {
                ClusterTarget::new(urls, timeout)
            })
            .await
        }
        (None, None) => Err(RelayError::Config(
            "one of --redis or --redis-cluster is required".into(),
        )),
    }
}

async fn run_workers<T: CacheTarget + 'static>(
    args: &RunArgs,
    config: Arc<LoopConfig>,
    metrics: Metrics,
    shutdown: Shutdown,
    make_target: impl Fn() -> Result<T>,
) -> Result<()> {
    let mut handles = Vec::new();
    for id in 0..args.workers {
        let worker = Worker::new(
            id,
            config.clone(),
            make_target()?,
            metrics.clone(),
            shutdown.clone(),
        );
        handles.push(tokio::spawn(worker.run()));
    }
    for handle in handles {
        if let Err(e) = handle.await {
            tracing::error!(error = %e, "a claim loop panicked");
        }
    }
    tracing::info!("all claim loops stopped; bye");
    Ok(())
}
