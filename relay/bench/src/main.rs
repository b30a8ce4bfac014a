//! # vset-relay-bench — what `make bench-e2e` prints
//!
//! Measures the whole pipeline on private servers started by the shared harness
//! (`vset-tests`): a PostgreSQL 15 cluster with the extension (fsync on for the
//! drain, off for the latency run by default), a redis-server with the module
//! (release build), and the real `vset-relay` binary (release build):
//!
//! 1. [`drain`]: a backlog of N changes (default 200,000) is written first, then one
//!    relay, then two relays, drain it; changes/s = N / time until every change is
//!    acknowledged (read from the relays' `vset_relay_acked_total`).
//! 2. [`latency`]: paced writers commit single-row updates at R/s (default 1,000)
//!    while one relay runs; an observer subscribed to the module's keyspace
//!    notifications stamps the moment each key changes in Redis. Latency = that
//!    moment − the moment the writer's COMMIT returned. p50/p99/p99.9 and a PNG
//!    ([`plot`]).
//!
//! Settings come from env vars: `BENCH_BACKLOG`, `BENCH_RATE`, `BENCH_SECONDS`,
//! `BENCH_LATENCY_FSYNC` (`on`/`off`, default on: see [`latency`]),
//! `BENCH_RATES` (the write rates of the latency curve, default `1000 2000 5000 10000 15000`;
//! `BENCH_RATE` alone: that one rate),
//! `BENCH_PNG` (plot path), `BENCH_RELAY_ARGS` (extra relay flags, space separated).

mod cpu;
mod drain;
mod latency;
mod plot;
mod stack;

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Harness(#[from] vset_tests::HarnessError),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Run(String),
}

fn env_num(name: &str, default: u64) -> Result<u64, BenchError> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| BenchError::Run(format!("{name}={v:?} is not a number"))),
        Err(_) => Ok(default),
    }
}

fn run() -> Result<(), BenchError> {
    let backlog = env_num("BENCH_BACKLOG", 200_000)?;
    let rate = env_num("BENCH_RATE", 1_000)?;
    let seconds = env_num("BENCH_SECONDS", 15)?;
    let png = std::env::var("BENCH_PNG").unwrap_or_else(|_| "relay/bench/latency.png".into());
    let extra: Vec<String> = std::env::var("BENCH_RELAY_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();

    println!(
        "vset end-to-end benchmark (nproc = {}, load average at start {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu::load_average()
    );
    println!("relay: {}", vset_tests::paths::relay_binary()?.display());
    println!("module: {}", vset_tests::paths::redis_module()?.display());
    println!();

    let mut drains = Vec::new();
    for relays in [1usize, 2] {
        let r = drain::run(backlog, relays, &extra)?;
        println!(
            "drain: {relays} relay(s): {} changes in {:.2} s = {:.0} changes/s (stored {}, rejected {}); CPU seconds: relays {:.2}, postgres {:.2}, redis {:.2}",
            r.changes, r.seconds, r.rate(), r.stored, r.rejected, r.cpu_relays, r.cpu_postgres, r.cpu_redis
        );
        drains.push(r);
    }
    println!();

    // Durable commits unless asked otherwise: the figure users get in production.
    let fsync = std::env::var("BENCH_LATENCY_FSYNC").map_or(true, |v| v != "off");
    let rates: Vec<u64> = match std::env::var("BENCH_RATES") {
        Ok(list) => list
            .split_whitespace()
            .map(|r| {
                r.parse()
                    .map_err(|_| BenchError::Run(format!("BENCH_RATES: {r:?} is not a number")))
            })
            .collect::<Result<_, _>>()?,
        Err(_) if std::env::var("BENCH_RATE").is_ok() => vec![rate],
        Err(_) => vec![1_000, 2_000, 5_000, 10_000, 15_000],
    };
    let mut curve = Vec::new();
    for (i, &asked) in rates.iter().enumerate() {
        let lat = latency::run(asked, seconds, fsync, &extra)?;
        let p = lat.percentiles();
        println!(
            "latency (PostgreSQL fsync {}) asked {asked} writes/s, reached {:.0} ({} writes measured after 1 s warm-up, {} never seen): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            if fsync { "on" } else { "off" }, lat.achieved_rate, lat.samples.len(), lat.unseen, p.p50, p.p99, p.p999, p.max
        );
        if i == 0 {
            plot::draw(std::path::Path::new(&png), &lat, asked)?;
            println!("plot ({asked} writes/s): {png}");
        }
        curve.push((asked, lat.achieved_rate, p, lat.unseen));
    }
    println!("load average at the end: {}", cpu::load_average());
    println!();
    println!(
        "| writes/s asked | reached | commit → visible p50 | p99 | p99.9 | never seen | (fsync {}, 16 writers) |",
        if fsync { "on" } else { "off" }
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (asked, reached, p, unseen) in &curve {
        println!(
            "| {asked} | {reached:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {unseen} | |",
            p.p50, p.p99, p.p999
        );
    }
    println!();

    println!("| measurement | result | goal |");
    println!("| --- | --- | --- |");
    for r in &drains {
        let goal = if r.relays == 1 {
            "≥ 50,000 changes/s"
        } else {
            ""
        };
        println!(
            "| drain {} changes, {} relay(s) | {:.0} changes/s | {goal} |",
            r.changes,
            r.relays,
            r.rate()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-e2e: {e}");
            ExitCode::FAILURE
        }
    }
}
