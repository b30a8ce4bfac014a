//! Commit-to-visible latency at a fixed write rate.
//!
//! Writers commit single-row `UPDATE`s on an open-loop schedule (write *i* is due
//! at `start + i / rate`, whatever happened to earlier writes), each on a key of
//! its own, and note when their COMMIT returned. An observer subscribed to the
//! module's keyspace notifications (`notify-keyspace-events Kd`: the module emits
//! an event when VSET stores) notes when each key changed in Redis. Both clocks are
//! this process's monotonic clock.
//!
//! PostgreSQL runs with fsync **on** and vset preloaded by default (relays wait on
//! `vset.wait_for_commit`; no NOTIFY, whose commit lock would serialise every
//! writer behind one fsync each). `BENCH_LATENCY_FSYNC=off` is the named extra for a
//! machine whose disk should not set the number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stack::BenchStack;
use crate::BenchError;

/// Enough connections that the open-loop schedule holds while each commit waits
/// for its WAL flush (fsync is on).
const WRITERS: usize = 16;
const WARMUP: Duration = Duration::from_secs(1);

pub struct Latency {
    /// (seconds since the first write, latency in ms), warm-up excluded.
    pub samples: Vec<(f64, f64)>,
    pub achieved_rate: f64,
    /// Writes whose change never showed up in Redis (must be 0).
    pub unseen: usize,
}

pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn percentiles(&self) -> Percentiles {
        let mut v: Vec<f64> = self.samples.iter().map(|s| s.1).collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| -> f64 {
            if v.is_empty() {
                return f64::NAN;
            }
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

pub fn run(rate: u64, seconds: u64, fsync: bool, extra: &[String]) -> Result<Latency, BenchError> {
    let total = (rate * seconds) as usize;
    let rows = total.max(20_000) as i32;
    let mut stack = BenchStack::start(&[("notify-keyspace-events", "Kd")], fsync)?;
    stack.spawn_relay(extra)?;
    stack.wait_warm()?;
    stack.insert_users(rows)?;
    let mut c = stack.pg.client()?;
    for _ in 0..600 {
        let n: i64 = c.query_one("SELECT count(*) FROM vset.outbox", &[])?.get(0);
        if n == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Observer.
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let observer = {
        let stop = stop.clone();
        let url = stack.redis.url();
        std::thread::spawn(move || -> Result<HashMap<i32, Instant>, BenchError> {
            let client = redis::Client::open(url)?;
            let mut con = client.get_connection()?;
            let mut pubsub = con.as_pubsub();
            pubsub.psubscribe("__keyspace@0__:public.users:*")?;
            pubsub.set_read_timeout(Some(Duration::from_millis(100)))?;
            let _ = ready_tx.send(());
            let mut seen = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                match pubsub.get_message() {
                    Ok(msg) => {
                        let at = Instant::now();
                        let channel = msg.get_channel_name();
                        if let Some(id) = channel.rsplit(':').next().and_then(|s| s.parse().ok()) {
                            seen.entry(id).or_insert(at);
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(seen)
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| BenchError::Run("keyspace observer did not start".into()))?;

    // Writers, open loop.
    let start = Instant::now() + Duration::from_millis(200);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let conninfo = stack.pg.conninfo();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let conninfo = conninfo.clone();
            std::thread::spawn(move || -> Result<Vec<(usize, Instant)>, BenchError> {
                let mut c = postgres::Client::connect(&conninfo, postgres::NoTls)?;
                let update =
                    c.prepare("UPDATE public.users SET rev = rev + 1, name = $2 WHERE id = $1")?;
                let mut done = Vec::with_capacity(total / WRITERS + 1);
                for i in (w..total).step_by(WRITERS) {
                    let due = start + interval * i as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let id = (i as i32) + 1;
                    c.execute(&update, &[&id, &format!("write {i}")])?;
                    done.push((i, Instant::now()));
                }
                Ok(done)
            })
        })
        .collect();
    let mut commits = Vec::with_capacity(total);
    for w in writers {
        let part = w
            .join()
            .map_err(|_| BenchError::Run("writer thread panicked".into()))??;
        commits.extend(part);
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let seen = observer
        .join()
        .map_err(|_| BenchError::Run("observer thread panicked".into()))??;
    stack.stop_relays();

    commits.sort_by_key(|(i, _)| *i);
    let first = commits.first().map(|c| c.1).unwrap_or(start);
    let last = commits.last().map(|c| c.1).unwrap_or(start);
    let achieved_rate = commits.len() as f64 / last.duration_since(first).as_secs_f64().max(1e-9);
    let mut samples = Vec::with_capacity(commits.len());
    let mut unseen = 0;
    for (i, committed) in &commits {
        let id = (*i as i32) + 1;
        match seen.get(&id) {
            Some(visible) => {
                let t = committed.duration_since(first);
                if t < WARMUP {
                    continue;
                }
                // A notification can beat the writer's own COMMIT reply: count 0.
                let lat = visible.saturating_duration_since(*committed);
                samples.push((t.as_secs_f64(), lat.as_secs_f64() * 1000.0));
            }
            None => unseen += 1,
        }
    }
    if unseen > 0 {
        eprintln!("warning: {unseen} writes never became visible in Redis");
    }
    Ok(Latency {
        samples,
        achieved_rate,
        unseen,
    })
}
