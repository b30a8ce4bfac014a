//! What runs while a fault is injected:
//! - writers: each on its own connection, updating (70%), deleting (15%) and
//!   re-inserting (15%) random hot keys, reconnecting after errors (PostgreSQL
//!   may be restarting), and recording each key's last committed value;
//! - a prober: every few milliseconds reads every hot key with `VGET` and, when the
//!   cached value differs from the last committed one, notes how long ago that
//!   commit was: the worst such window is the cell's "worst staleness window";
//! - optional fillers: readers that, on a miss, fill through `vset.fill` + `VSET`
//!   (the safe read path), racing the writers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::CellSize;

#[derive(Default)]
struct Shared {
    /// key → (last committed `v`, None when deleted; when it committed).
    last: Mutex<HashMap<i32, (Option<i64>, Instant)>>,
    worst_window: Mutex<Duration>,
    writes: AtomicU64,
    fills: AtomicU64,
    evictions: AtomicU64,
    probes: AtomicU64,
    probe_errors: AtomicU64,
    next_value: AtomicI64,
}

pub struct Workload {
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Totals after [`Workload::stop`].
#[derive(Debug, Clone, Default)]
pub struct WorkloadStats {
    pub writes: u64,
    pub fills: u64,
    pub evictions: u64,
    /// Prober rounds that read every hot key, and rounds that failed.
    pub probes: u64,
    pub probe_errors: u64,
    pub worst_window: Duration,
}

impl Workload {
    /// Starts `size.writers` writers, a prober, and `fillers` read-miss fillers
    /// (each also evicting a random key now and then to force misses).
    pub fn start(pg_url: &str, redis_url: &str, size: &CellSize, fillers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            next_value: AtomicI64::new(1),
            ..Default::default()
        });
        let mut threads = Vec::new();
        for w in 0..size.writers {
            let (stop, shared, url) = (stop.clone(), shared.clone(), pg_url.to_string());
            let (keys, seed) = (size.keys, size.seed.wrapping_mul(1000) + w as u64);
            threads.push(std::thread::spawn(move || {
                writer(&url, keys, seed, &stop, &shared)
            }));
        }
        for f in 0..fillers {
            let (stop, shared) = (stop.clone(), shared.clone());
            let (pg, rd) = (pg_url.to_string(), redis_url.to_string());
            let (keys, seed) = (size.keys, size.seed.wrapping_mul(7000) + f as u64);
            threads.push(std::thread::spawn(move || {
                filler(&pg, &rd, keys, seed, &stop, &shared)
            }));
        }
        {
            let (stop, shared, url, keys) = (
                stop.clone(),
                shared.clone(),
                redis_url.to_string(),
                size.keys,
            );
            threads.push(std::thread::spawn(move || {
                prober(&url, keys, &stop, &shared)
            }));
        }
        Self {
            stop,
            shared,
            threads,
        }
    }

    /// Writes so far.
    pub fn writes(&self) -> u64 {
        self.shared.writes.load(Ordering::Relaxed)
    }

    /// Stops writers and fillers (the prober too) and returns the totals.
    pub fn stop(self) -> WorkloadStats {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        WorkloadStats {
            writes: self.shared.writes.load(Ordering::SeqCst),
            fills: self.shared.fills.load(Ordering::SeqCst),
            evictions: self.shared.evictions.load(Ordering::SeqCst),
            probes: self.shared.probes.load(Ordering::SeqCst),
            probe_errors: self.shared.probe_errors.load(Ordering::SeqCst),
            worst_window: *self
                .shared
                .worst_window
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        }
    }
}

fn connect_pg(url: &str, stop: &AtomicBool) -> Option<postgres::Client> {
    while !stop.load(Ordering::SeqCst) {
        if let Ok(c) = postgres::Client::connect(url, postgres::NoTls) {
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn connect_redis(url: &str, stop: &AtomicBool) -> Option<redis::Connection> {
    while !stop.load(Ordering::SeqCst) {
        if let Ok(c) = redis::Client::open(url).and_then(|c| c.get_connection()) {
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn writer(url: &str, keys: i32, seed: u64, stop: &AtomicBool, shared: &Shared) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let Some(mut c) = connect_pg(url, stop) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        let key: i32 = rng.random_range(1..=keys);
        let v = shared.next_value.fetch_add(1, Ordering::SeqCst);
        let roll: f64 = rng.random();
        let (result, after) = if roll < 0.70 {
            (
                c.execute("UPDATE chaos SET v = $2 WHERE id = $1", &[&key, &v]),
                Some(v),
            )
        } else if roll < 0.85 {
            (c.execute("DELETE FROM chaos WHERE id = $1", &[&key]), None)
        } else {
            (
                c.execute(
                    "INSERT INTO chaos VALUES ($1, $2, repeat('y', 16))
                     ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v",
                    &[&key, &v],
                ),
                Some(v),
            )
        };
        match result {
            Ok(n) if n > 0 => {
                shared.writes.fetch_add(1, Ordering::Relaxed);
                let mut last = shared.last.lock().unwrap_or_else(|e| e.into_inner());
                last.insert(key, (after, Instant::now()));
            }
            Ok(_) => {}
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                match connect_pg(url, stop) {
                    Some(n) => c = n,
                    None => return,
                }
            }
        }
    }
}

/// `v` of a cached payload (`{"id":..,"v":..,"pad":..}`).
fn cached_v(payload: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()?
        .get("v")?
        .as_i64()
}

fn prober(url: &str, keys: i32, stop: &AtomicBool, shared: &Shared) {
    let Some(mut con) = connect_redis(url, stop) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        let mut pipe = redis::pipe();
        for k in 1..=keys {
            pipe.cmd("VGET").arg(format!("public.chaos:{k}"));
        }
        let values: Vec<Option<String>> = match pipe.query(&mut con) {
            Ok(v) => v,
            Err(e) => {
                if shared.probe_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("chaos prober: {e}");
                }
                std::thread::sleep(Duration::from_millis(50));
                match connect_redis(url, stop) {
                    Some(c) => con = c,
                    None => return,
                }
                continue;
            }
        };
        shared.probes.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let last = shared.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut worst = Duration::ZERO;
        for (i, cached) in values.iter().enumerate() {
            let Some((want, at)) = last.get(&(i as i32 + 1)) else {
                continue;
            };
            let got = cached.as_deref().and_then(cached_v);
            // A miss is never stale; only a value that differs counts.
            if cached.is_some() && got != *want {
                worst = worst.max(now.duration_since(*at));
            }
        }
        drop(last);
        let mut w = shared
            .worst_window
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *w = (*w).max(worst);
        drop(w);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn filler(pg_url: &str, redis_url: &str, keys: i32, seed: u64, stop: &AtomicBool, shared: &Shared) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (Some(mut pg), Some(mut rd)) = (connect_pg(pg_url, stop), connect_redis(redis_url, stop))
    else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        let key: i32 = rng.random_range(1..=keys);
        let cache_key = format!("public.chaos:{key}");
        if rng.random_bool(0.2) {
            // Evict: a DEL raises the key's floor in the module, as eviction does.
            if redis::cmd("DEL")
                .arg(&cache_key)
                .query::<i64>(&mut rd)
                .is_ok()
            {
                shared.evictions.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let hit: redis::RedisResult<Option<String>> =
            redis::cmd("VGET").arg(&cache_key).query(&mut rd);
        if !matches!(hit, Ok(None)) {
            continue;
        }
        let row = pg.query_opt(
            "SELECT cache_key, version, payload FROM vset.fill('chaos'::regclass, $1::text)",
            &[&key.to_string()],
        );
        match row {
            Ok(Some(r)) => {
                let (k, ver, payload): (String, i64, String) =
                    match (r.try_get(0), r.try_get(1), r.try_get(2)) {
                        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                        _ => continue,
                    };
                // Widen the race: the write may commit and be applied meanwhile.
                std::thread::sleep(Duration::from_millis(rng.random_range(0..5)));
                if redis::cmd("VSET")
                    .arg(&k)
                    .arg(ver)
                    .arg(&payload)
                    .query::<i64>(&mut rd)
                    .is_ok()
                {
                    shared.fills.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(None) => {}
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                match connect_pg(pg_url, stop) {
                    Some(c) => pg = c,
                    None => return,
                }
            }
        }
    }
}
