//! `vset-verify`: the command-line face of the checker (see the library docs).
//! Exit status: 0 consistent, 1 stale or orphaned entries found, 2 could not check.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vset_verify::cache::{CacheTarget, DEFAULT_MODULE_TYPE};
use vset_verify::{run, Options};

/// Compare every vset-tracked PostgreSQL table with Redis.
///
/// For each table in vset.tracked, every row's cache key must hold exactly the
/// row's current payload (MATCHED) or nothing (MISSING: a reader misses and fills,
/// which is safe). A key holding anything else is STALE; a key holding a value for
/// a row that does not exist is ORPHANED. Mismatches are re-checked after --grace
/// (changes may still be in flight) before they count. Exits 1 if any stale or
/// orphaned entry remains, 2 if the check could not run.
///
/// Rows are streamed from a server-side portal --fetch-size at a time; orphans
/// are found by SCANning the module's keys under each table's key prefix and
/// anti-joining them with the table inside PostgreSQL, so neither side is ever
/// loaded into memory whole.
#[derive(Debug, Parser)]
#[command(name = "vset-verify", version, about, long_about)]
struct Cli {
    /// PostgreSQL connection URL or key=value string (same as vset-relay).
    #[arg(long, env = "VSET_POSTGRES_URL", value_name = "URL")]
    postgres: String,

    /// Redis URL: redis://[user:password@]host:port[/db] or rediss://... (same as vset-relay).
    #[arg(
        long,
        env = "VSET_REDIS_URL",
        value_name = "URL",
        conflicts_with = "redis_cluster",
        required_unless_present = "redis_cluster"
    )]
    redis: Option<String>,

    /// Redis Cluster seed URLs, comma-separated (same as vset-relay).
    #[arg(
        long,
        env = "VSET_REDIS_CLUSTER",
        value_name = "URLS",
        value_delimiter = ','
    )]
    redis_cluster: Option<Vec<String>>,

    /// Check a random sample of N rows per table (plus N random cached keys for
    /// orphans) and print "X nines consistent after M seconds".
    #[arg(long, env = "VSET_VERIFY_SAMPLE", value_name = "N")]
    sample: Option<u64>,

    /// How long a mismatch may take to settle before it counts (e.g. 2s, 500ms).
    #[arg(long, env = "VSET_VERIFY_GRACE", default_value = "2s", value_parser = humantime::parse_duration)]
    grace: Duration,

    /// Rows fetched from the portal (and keys pipelined to Redis) per round trip.
    #[arg(long, env = "VSET_VERIFY_FETCH_SIZE", default_value_t = 1000)]
    fetch_size: i32,

    /// At most this many mismatches are remembered for the re-check; any beyond
    /// count as stale/orphaned without one.
    #[arg(long, default_value_t = 100_000)]
    max_recheck: usize,

    /// Do not search Redis for orphaned keys (that scans every module key).
    #[arg(long)]
    skip_orphans: bool,

    /// TYPE name of the module's values, used by SCAN ... TYPE.
    #[arg(long, default_value = DEFAULT_MODULE_TYPE)]
    module_type: String,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cache = match (cli.redis, cli.redis_cluster) {
        (Some(url), _) => CacheTarget::Single(url),
        (None, Some(urls)) => CacheTarget::Cluster(urls),
        (None, None) => {
            eprintln!("vset-verify: give --redis URL or --redis-cluster URLS");
            return ExitCode::from(2);
        }
    };
    let opts = Options {
        postgres: cli.postgres,
        cache,
        sample: cli.sample,
        grace: cli.grace,
        fetch_size: cli.fetch_size,
        module_type: cli.module_type,
        max_recheck: cli.max_recheck,
        skip_orphans: cli.skip_orphans,
    };
    match run(&opts) {
        Ok(report) => {
            if cli.json {
                println!("{}", report.render_json());
            } else {
                print!("{}", report.render_text());
            }
            if report.consistent() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("vset-verify: {e}");
            ExitCode::from(2)
        }
    }
}
