//! `vset-lab`: replay one seeded workload and fault schedule against seven cache
//! strategies on a private PostgreSQL and redis-server, print the table and write
//! the chart; then replay a shorter schedule on the versioned strategies with
//! versions above 2^53. `make lab` runs it with the defaults.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use vset_lab::proxy::FaultProxy;
use vset_lab::run::{replay_all, Figures};
use vset_lab::schedule::{self, Fault};
use vset_lab::strategy::{self, Hardening};
use vset_lab::{chart, LabError};
use vset_tests::postgres::PgCluster;
use vset_tests::redis::{RedisOptions, RedisServer};

/// The strategy lab: same workload, same faults, six ways to keep a cache.
#[derive(Debug, Parser)]
#[command(name = "vset-lab", version, about, long_about)]
struct Cli {
    /// Seed of the workload and fault schedule (same seed, same schedule).
    #[arg(long, default_value_t = 5)]
    seed: u64,
    /// Episodes (two writes to one key each) per strategy.
    #[arg(long, default_value_t = 600)]
    episodes: usize,
    /// Distinct keys (the first tenth are hot).
    #[arg(long, default_value_t = 100)]
    keys: i32,
    /// Reads before each episode (the hit-rate workload).
    #[arg(long, default_value_t = 4)]
    reads: usize,
    /// Only these strategies (comma-separated names); default all seven.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// TTL (ms) on every cache write of the hand-written strategies (0: none).
    #[arg(long, default_value_t = 2000)]
    ttl_ms: u64,
    /// Retries (backoff 5 ms, doubling) of a failed application cache step.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// How long the relays stay down in a relay-outage episode (ms).
    #[arg(long, default_value_t = 100)]
    relay_outage_ms: u64,
    /// Episodes of the second replay, versions above 2^53 (0: skip it).
    #[arg(long, default_value_t = 200)]
    big_version_episodes: usize,
    /// Where to write the chart.
    #[arg(long, default_value = "docs/lab.png")]
    chart: PathBuf,
    /// Where to write the Markdown table (also printed).
    #[arg(long, default_value = "docs/lab.md")]
    table: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vset-lab: {e}");
            ExitCode::from(2)
        }
    }
}

/// The first version of the second replay: 2^53, where doubles stop holding every
/// integer.
const BIG_VERSION: i64 = 1 << 53;

fn run(cli: &Cli) -> Result<(), LabError> {
    let started = Instant::now();
    let load_before = vset_lab::load_average();
    let wanted = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
    let plan = schedule::build(cli.seed, cli.episodes, cli.keys, cli.reads);
    let mut counts = std::collections::HashMap::new();
    for e in &plan {
        *counts.entry(e.fault).or_insert(0u64) += 1;
    }
    let figures = replay(cli, &plan, &wanted, false)?;
    let date = vset_lab::utc_date();
    let faults: Vec<String> = Fault::ALL[1..]
        .iter()
        .map(|f| format!("{} x{}", f.name(), counts.get(f).copied().unwrap_or(0)))
        .collect();
    let header = format!(
        "vset-lab --seed {} --episodes {} --keys {} --reads {} --ttl-ms {} --retries {} --relay-outage-ms {} at commit {} (measured {date}, {:.0}s, load average {load_before} at start, {} at end): {} episodes of two writes each; faults: {}",
        cli.seed,
        cli.episodes,
        cli.keys,
        cli.reads,
        cli.ttl_ms,
        cli.retries,
        cli.relay_outage_ms,
        vset_lab::git_commit(),
        started.elapsed().as_secs_f64(),
        vset_lab::load_average(),
        plan.len(),
        faults.join(", ")
    );
    let mut md = markdown(&figures, &header);
    if cli.big_version_episodes > 0 {
        let versioned = |name: &str| {
            matches!(name, "outbox-lua-cas" | "vset")
                && (cli.only.is_empty() || cli.only.iter().any(|o| o == name))
        };
        let big_plan = schedule::build(cli.seed + 1, cli.big_version_episodes, cli.keys, cli.reads);
        let big = replay(cli, &big_plan, &versioned, true)?;
        md.push_str(&format!(
            "\n### Versions above 2^53\n\nThe same kind of schedule (`--seed {}`, {} episodes), replayed on the versioned strategies after both version sequences were moved to 2^53 (a long-lived database with a busy sequence, or one restored from a system that used wide ids). The Lua script compares `tonumber` doubles: two versions that round to the same double look equal, and the newer write is refused.\n\n",
            cli.seed + 1,
            big_plan.len()
        ));
        md.push_str(&table(&big));
    }
    println!("{md}");
    if let Some(dir) = cli.table.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.table, &md)?;
    if let Some(dir) = cli.chart.parent() {
        std::fs::create_dir_all(dir)?;
    }
    chart::draw(
        &cli.chart,
        &figures,
        &format!("seed {}, measured {date}", cli.seed),
    )?;
    eprintln!(
        "vset-lab: wrote {} and {}",
        cli.table.display(),
        cli.chart.display()
    );
    Ok(())
}

/// Replays `plan` on fresh private servers, on the strategies `wanted` accepts;
/// with `big_versions`, both version sequences start at 2^53.
fn replay(
    cli: &Cli,
    plan: &[schedule::Episode],
    wanted: &dyn Fn(&str) -> bool,
    big_versions: bool,
) -> Result<Vec<Figures>, LabError> {
    let pg = PgCluster::start()?;
    if wanted("vset") {
        pg.create_extension()?;
    }
    let redis = RedisServer::start(if wanted("vset") {
        RedisOptions::new()
    } else {
        RedisOptions::new().without_module()
    })?;
    let proxy = FaultProxy::start(redis.port())?;
    let hardening = Hardening {
        ttl_ms: cli.ttl_ms,
        retries: cli.retries,
    };
    let mut strategies = strategy::build(
        &pg.url(),
        &proxy,
        cli.keys,
        hardening,
        Duration::from_millis(cli.relay_outage_ms),
        wanted,
    )?;
    if big_versions {
        let mut c = pg.client()?;
        for seq in ["lab_cas_seq", "vset.version_seq"] {
            c.execute(
                "SELECT setval($1::text::regclass, $2)",
                &[&seq, &BIG_VERSION],
            )?;
        }
    }
    eprintln!(
        "vset-lab: replaying {} episodes on {} strategies, interleaved{}",
        plan.len(),
        strategies.len(),
        if big_versions {
            ", versions from 2^53"
        } else {
            ""
        }
    );
    replay_all(&mut strategies, plan, cli.keys)
}

fn markdown(figures: &[Figures], header: &str) -> String {
    format!("{header}\n\n{}", table(figures))
}

fn table(figures: &[Figures]) -> String {
    let mut s = String::new();
    s.push_str("| strategy | stale entries | ...after crash | ...after outage | ...after late retry | ...after fill race | ...after eviction + late retry | time stale | stale keys at end | lost writes | failed writes | write p99 | cache hit rate |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for f in figures {
        let by = |fault: Fault| f.stale_by_fault.get(&fault).copied().unwrap_or(0);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} | {} | {} | {:.2} ms | {:.1}% |\n",
            f.strategy,
            f.stale(),
            by(Fault::Crash),
            by(Fault::Outage),
            by(Fault::LateRetry),
            by(Fault::FillRace),
            by(Fault::EvictThenLate),
            f.time_stale.as_secs_f64(),
            f.stale_keys_at_end,
            f.lost_writes,
            f.failed_writes,
            f.write_p99_us as f64 / 1000.0,
            f.hit_rate() * 100.0
        ));
    }
    s
}
