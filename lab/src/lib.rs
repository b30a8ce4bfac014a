//! # vset-lab — the evidence: the strategy lab and the long chaos matrix
//!
//! Two binaries stand on this library:
//! - `vset-lab` replays one seeded workload and fault schedule (process crash
//!   between the two writes, cache outage, retry landing late, read-miss fill
//!   race) against six cache-update strategies on a real PostgreSQL and a real
//!   redis-server (started with the shared harness in `vset-tests`), and prints
//!   stale entries, lost writes, write latency p99 and cache hit rate per strategy,
//!   plus a PNG chart. See [`strategy`] for what each fault does to each strategy.
//! - `vset-chaos` runs the fault matrix of issue 5 (cells in
//!   `vset_tests::chaos`, the same code the short `tests/tests/chaos_*.rs` run)
//!   with longer durations and prints one row per cell.
//!
//! | module | job |
//! | --- | --- |
//! | [`schedule`] | the seeded episodes (key, fault, reads) every strategy replays |
//! | [`strategy`] | the six strategies behind one interface |
//! | [`proxy`] | the cache outage: a TCP proxy with an off switch |
//! | [`cache_conn`] | a Redis connection that reconnects after errors |
//! | [`run`] | replay the schedule on one strategy, collect the figures |
//! | [`chart`] | the PNG chart |

pub mod cache_conn;
pub mod chart;
pub mod proxy;
pub mod run;
pub mod schedule;
pub mod strategy;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("test servers: {0}")]
    Harness(#[from] vset_tests::HarnessError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("chart: {0}")]
    Chart(String),
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

/// The 1-minute load average (`/proc/loadavg`), printed with every measurement:
/// on a shared 2-core machine, latencies mean little without it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The commit a table was measured at (`git rev-parse --short HEAD`), with
/// "+changes" when tracked files differ from it.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match run(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if !s.is_empty() => format!("{head}+changes"),
        _ => head,
    }
}
