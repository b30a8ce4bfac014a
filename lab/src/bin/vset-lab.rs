//! `vset-lab`: replay one seeded workload and fault schedule against six cache
//! strategies on a private PostgreSQL and redis-server, print the table and write
//! the chart. `make lab` runs it with the defaults.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use vset_lab::proxy::FaultProxy;
use vset_lab::run::{replay_all, Figures};
use vset_lab::schedule::{self, Fault};
use vset_lab::strategy;
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
    /// Only these strategies (comma-separated names); default all six.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
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

fn run(cli: &Cli) -> Result<(), LabError> {
    let started = Instant::now();
    let load_before = vset_lab::load_average();
    let wanted = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
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
    let plan = schedule::build(cli.seed, cli.episodes, cli.keys, cli.reads);
    let mut counts = std::collections::HashMap::new();
    for e in &plan {
        *counts.entry(e.fault).or_insert(0u64) += 1;
    }
    let mut strategies = strategy::build(&pg.url(), &proxy, cli.keys, wanted)?;

    eprintln!(
        "vset-lab: replaying {} episodes on {} strategies, interleaved",
        plan.len(),
        strategies.len()
    );
    let figures = replay_all(&mut strategies, &plan, cli.keys)?;
    let date = vset_lab::utc_date();
    let faults: Vec<String> = Fault::ALL[1..]
        .iter()
        .map(|f| format!("{} x{}", f.name(), counts.get(f).copied().unwrap_or(0)))
        .collect();
    let header = format!(
        "vset-lab --seed {} --episodes {} --keys {} --reads {} (measured {date}, {:.0}s, load average {load_before} at start, {} at end): {} episodes of two writes each; faults: {}",
        cli.seed,
        cli.episodes,
        cli.keys,
        cli.reads,
        started.elapsed().as_secs_f64(),
        vset_lab::load_average(),
        plan.len(),
        faults.join(", ")
    );
    let md = markdown(&figures, &header);
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

fn markdown(figures: &[Figures], header: &str) -> String {
    let mut s = format!("{header}\n\n");
    s.push_str("| strategy | stale entries | ...after crash | ...after outage | ...after late retry | ...after fill race | ...after eviction + late retry | stale keys at end | lost writes | failed writes | write p99 | cache hit rate |\n");
    s.push_str(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for f in figures {
        let by = |fault: Fault| f.stale_by_fault.get(&fault).copied().unwrap_or(0);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} ms | {:.1}% |\n",
            f.strategy,
            f.stale(),
            by(Fault::Crash),
            by(Fault::Outage),
            by(Fault::LateRetry),
            by(Fault::FillRace),
            by(Fault::EvictThenLate),
            f.stale_keys_at_end,
            f.lost_writes,
            f.failed_writes,
            f.write_p99_us as f64 / 1000.0,
            f.hit_rate() * 100.0
        ));
    }
    s
}
