//! Command line: every flag is also an environment variable, so the relay runs the
//! same way from a shell, a systemd unit or a container. `vset-relay --help` is the
//! manual; keep the doc comments below readable as such.
//!
//! The binary is organised around subcommands (`run` today, room for e.g. `verify`
//! later). `run` is also the default: `vset-relay --postgres … --redis …` works
//! without naming it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// vset-relay moves committed changes from PostgreSQL's `vset.outbox` into Redis.
///
/// Each batch is one PostgreSQL transaction: BEGIN; `SELECT … FROM vset.claim(N)`
/// (rows locked with FOR UPDATE SKIP LOCKED and deleted); one pipelined round trip
/// of `VSET key version payload` / `VDEL key version` to Redis; COMMIT. The rows are
/// acknowledged only when every command got an answer from Redis; on any Redis
/// error the transaction is rolled back (the rows come back for the next try) and
/// the relay backs off with jitter. A crash anywhere therefore replays the batch,
/// which is harmless: VSET stores only versions newer than the one it holds.
///
/// The relay LISTENs on the extension's channel to wake up as soon as something
/// commits, and also polls, because the table, not the notification, is the truth.
/// Several relays on one database share the work through SKIP LOCKED alone.
///
/// When the Redis module reports a cold start (it restarted without its saved
/// state and knows no version floors), the relay sets `VFLOOR` to the current
/// value of the version sequence (`vset.current_version()`) before applying
/// anything, so every older change becomes a cache miss, never a stale value.
///
/// SIGTERM and SIGINT finish the batch in hand, then exit with status 0.
/// Logs go to stderr; `RUST_LOG` filters them (default `info`).
#[derive(Debug, Parser)]
#[command(name = "vset-relay", version, propagate_version = true)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Flags of `run`, accepted without the subcommand name.
    #[command(flatten)]
    pub run: Option<RunArgs>,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "VSET_LOG_FORMAT", global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drain vset.outbox into Redis until SIGTERM/SIGINT (the default).
    Run(RunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Where the changes come from and go to, and how the claim loop behaves.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["redis", "redis_cluster"])))]
pub struct RunArgs {
    /// PostgreSQL connection string (URL `postgres://user:pass@host:port/db?sslmode=…`
    /// or key=value form). The database must have `CREATE EXTENSION vset`.
    #[arg(long = "postgres", value_name = "URL", env = "VSET_POSTGRES_URL")]
    pub postgres: String,

    /// A standalone Redis (or a primary): `redis://[user:password@]host:port[/db]`,
    /// or `rediss://…` for TLS. ACL users go in the user part of the URL.
    #[arg(long, value_name = "URL", env = "VSET_REDIS_URL")]
    pub redis: Option<String>,

    /// A Redis Cluster: one or more seed node URLs, comma separated
    /// (`redis://127.0.0.1:7000,redis://127.0.0.1:7001`). The relay discovers the
    /// rest of the cluster and routes each key to its slot's primary.
    #[arg(
        long,
        value_name = "URL[,URL…]",
        env = "VSET_REDIS_CLUSTER",
        value_delimiter = ','
    )]
    pub redis_cluster: Option<Vec<String>>,

    /// Largest number of changes claimed and applied in one transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000), env = "VSET_BATCH_SIZE")]
    pub batch_size: u32,

    /// Claim loops run side by side in this process (each with its own PostgreSQL
    /// session). More than one overlaps PostgreSQL and Redis round trips; they share
    /// work through SKIP LOCKED exactly like separate relay processes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), env = "VSET_WORKERS")]
    pub workers: u16,

    /// NOTIFY channel the extension signals on.
    #[arg(long, default_value = "vset", env = "VSET_CHANNEL")]
    pub channel: String,

    /// Look at the outbox at least this often even without a notification
    /// (notifications can be lost; the table is the truth). Also how often an idle
    /// relay re-checks Redis for a cold start.
    #[arg(long, default_value = "1s", value_parser = parse_duration, env = "VSET_POLL_INTERVAL")]
    pub poll_interval: Duration,

    /// PostgreSQL ends a session that sits inside a transaction longer than this
    /// (`idle_in_transaction_session_timeout`), so a hung relay cannot hold claimed
    /// rows forever: they return to the queue for another relay.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "VSET_IDLE_IN_TRANSACTION_TIMEOUT")]
    pub idle_in_transaction_timeout: Duration,

    /// How long to wait for Redis to answer a batch (or to connect) before treating
    /// it as failed (the batch is rolled back and retried).
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "VSET_REDIS_TIMEOUT")]
    pub redis_timeout: Duration,

    /// First retry delay after an error; doubles on each further error, with full
    /// jitter, up to --backoff-max.
    #[arg(long, default_value = "50ms", value_parser = parse_duration, env = "VSET_BACKOFF_MIN")]
    pub backoff_min: Duration,

    /// Longest retry delay.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "VSET_BACKOFF_MAX")]
    pub backoff_max: Duration,

    /// Serve Prometheus metrics as text on http://ADDR/metrics (e.g. 127.0.0.1:9187).
    #[arg(long, value_name = "ADDR", env = "VSET_METRICS_ADDR")]
    pub metrics: Option<SocketAddr>,

    /// How often the backlog gauge (rows waiting in vset.outbox) is refreshed when
    /// --metrics is on. It costs one `count(*)` on the outbox.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "VSET_BACKLOG_INTERVAL")]
    pub backlog_interval: Duration,
}

/// Durations like `250ms`, `1s`, `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 250ms, 1s, 2m)"))
}

impl Cli {
    /// The `run` arguments, whether given with or without the subcommand name.
    pub fn run_args(self) -> Result<RunArgs, clap::Error> {
        match (self.command, self.run) {
            (Some(Command::Run(args)), _) | (None, Some(args)) => Ok(args),
            // Unreachable through clap (the flags are required without a
            // subcommand), kept as an error rather than a panic.
            (None, None) => Err(<Self as clap::CommandFactory>::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--postgres and --redis (or --redis-cluster) are required",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_is_the_default_subcommand() {
        let cli = Cli::try_parse_from([
            "vset-relay",
            "--postgres",
            "host=x",
            "--redis",
            "redis://127.0.0.1:1",
            "--poll-interval",
            "250ms",
        ])
        .expect("valid flags parse");
        let args = cli.run_args().expect("run args");
        assert_eq!(args.poll_interval, Duration::from_millis(250));
        assert_eq!(args.batch_size, 1000);
    }

    #[test]
    fn explicit_run_subcommand_parses_the_same_flags() {
        let cli = Cli::try_parse_from([
            "vset-relay",
            "run",
            "--postgres",
            "host=x",
            "--redis-cluster",
            "redis://a:1,redis://b:2",
        ])
        .expect("valid flags parse");
        let args = cli.run_args().expect("run args");
        assert_eq!(
            args.redis_cluster,
            Some(vec!["redis://a:1".to_string(), "redis://b:2".to_string()])
        );
        assert!(args.redis.is_none());
    }

    #[test]
    fn a_redis_target_is_required_and_only_one() {
        assert!(Cli::try_parse_from(["vset-relay", "--postgres", "host=x"]).is_err());
        assert!(Cli::try_parse_from([
            "vset-relay",
            "--postgres",
            "host=x",
            "--redis",
            "redis://a:1",
            "--redis-cluster",
            "redis://b:2",
        ])
        .is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let base = ["vset-relay", "--postgres", "h", "--redis", "redis://a:1"];
        for extra in [
            ["--batch-size", "0"],
            ["--poll-interval", "soon"],
            ["--metrics", "not-an-address"],
            ["--workers", "0"],
        ] {
            let argv: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
            assert!(
                Cli::try_parse_from(&argv).is_err(),
                "{argv:?} must be refused"
            );
        }
    }
}
