//! Drain rate: write a backlog with no relay running, then time relays draining it.

use std::time::{Duration, Instant};

use crate::stack::BenchStack;
use crate::BenchError;

pub struct Drain {
    pub relays: usize,
    pub changes: u64,
    pub seconds: f64,
    pub stored: f64,
    pub rejected: f64,
    pub cpu_relays: f64,
    pub cpu_postgres: f64,
    pub cpu_redis: f64,
}

impl Drain {
    pub fn rate(&self) -> f64 {
        self.changes as f64 / self.seconds
    }
}

pub fn run(backlog: u64, relays: usize, extra: &[String]) -> Result<Drain, BenchError> {
    let mut stack = BenchStack::start(&[], true)?;
    // End the module's cold start first (a relay does it on connect), so the
    // backlog is *stored*, not rejected below a floor: the expensive path.
    stack.spawn_relay(extra)?;
    stack.wait_warm()?;
    stack.stop_relays();

    let n = i32::try_from(backlog).map_err(|_| BenchError::Run("backlog too large".into()))?;
    stack.insert_users(n)?;
    let mut c = stack.pg.client()?;
    c.batch_execute("VACUUM ANALYZE vset.outbox")?;
    let waiting: i64 = c.query_one("SELECT count(*) FROM vset.outbox", &[])?.get(0);
    if waiting != i64::from(n) {
        return Err(BenchError::Run(format!(
            "expected {n} outbox rows, found {waiting}"
        )));
    }

    let pg_pgid = stack
        .pg
        .pid()
        .ok_or_else(|| BenchError::Run("postgres is not running".into()))?;
    let pg_cpu_before = crate::cpu::tree(pg_pgid);
    let redis_cpu_before = stack.redis_cpu()?;
    let started = Instant::now();
    for _ in 0..relays {
        stack.spawn_relay(extra)?;
    }
    // Acknowledged rows, read from the relays' own counters (a count(*) on the
    // outbox every few ms would compete with the relays for the two cores).
    loop {
        let acked = stack.relay_counter("vset_relay_acked_total")?;
        if acked >= backlog as f64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(BenchError::Run(format!(
                "only {acked} of {backlog} acked in 600 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    let stored = stack.relay_counter("vset_relay_applied_total")?;
    let rejected = stack.relay_counter("vset_relay_rejected_total")?;
    let cpu_relays = stack
        .relays
        .iter()
        .filter_map(|(r, _)| r.pid())
        .map(crate::cpu::process)
        .sum();
    let cpu_postgres = crate::cpu::tree(pg_pgid) - pg_cpu_before;
    let cpu_redis = stack.redis_cpu()? - redis_cpu_before;
    stack.stop_relays();
    Ok(Drain {
        relays,
        changes: backlog,
        seconds,
        stored,
        rejected,
        cpu_relays,
        cpu_postgres,
        cpu_redis,
    })
}
