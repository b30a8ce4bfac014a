//! What runs while a fault is injected:
//! - writers: each on its own connection, updating (70%), deleting (15%) and
//!   re-inserting (15%) random hot keys, reconnecting after errors (PostgreSQL
//!   may be restarting), and recording each key's last committed value;
//! - a prober: every few milliseconds reads every hot key with `VGET WITHVERSION`
//!   and, when the cached value differs from the last committed one, notes how long
//!   ago that commit was: the worst such window is the cell's "worst staleness
//!   window" (lag). It also remembers the highest version it saw per key: a key
//!   that later shows a *lower* version is a **regression**, a stale value served
//!   (with vset's gates on a key's version never goes down, not even across a
//!   miss); the prober counts them and the time they were visible;
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
    regressions: AtomicU64,
    /// Sum over prober rounds of (keys regressed × round length), in microseconds.
    regressed_key_us: AtomicU64,
    writes: AtomicU64,
    fills: AtomicU64,
    evictions: AtomicU64,
    probes: AtomicU64,
    probe_errors: AtomicU64,
    next_value: AtomicI64,
}

/// Read-miss fillers beside the writers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fillers {
    pub count: usize,
    /// Each filler also DELs a random key now and then, to force misses.
    pub evict: bool,
}

pub struct Workload {
    /// Stops writers and fillers.
    stop: Arc<AtomicBool>,
    /// Stops the prober (later, so it sees what a cell's final round does).
    stop_prober: Arc<AtomicBool>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    prober: Option<JoinHandle<()>>,
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
    /// Prober observations of a key at a lower version than it had shown before.
    pub regressions: u64,
    /// How long regressed values were visible, summed over keys.
    pub time_stale: Duration,
}

impl Workload {
    /// Starts `size.writers` writers, a prober, and `fillers.count` read-miss fillers
    /// (each also evicting a random key now and then to force misses).
    pub fn start(pg_url: &str, redis_url: &str, size: &CellSize, fillers: Fillers) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_prober = Arc::new(AtomicBool::new(false));
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
        for f in 0..fillers.count {
            let (stop, shared) = (stop.clone(), shared.clone());
            let (pg, rd) = (pg_url.to_string(), redis_url.to_string());
            let (keys, seed) = (size.keys, size.seed.wrapping_mul(7000) + f as u64);
            threads.push(std::thread::spawn(move || {
                filler(&pg, &rd, keys, seed, fillers.evict, &stop, &shared)
            }));
        }
        let prober = {
            let (stop, shared, url, keys) = (
                stop_prober.clone(),
                shared.clone(),
                redis_url.to_string(),
                size.keys,
            );
            std::thread::spawn(move || prober(&url, keys, &stop, &shared))
        };
        Self {
            stop,
            stop_prober,
            shared,
            threads,
            prober: Some(prober),
        }
    }

    /// Stops writers and fillers and waits for them (their last statements
    /// included); the prober goes on until [`Self::stop`].
    pub fn halt_writers(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Writes so far.
    pub fn writes(&self) -> u64 {
        self.shared.writes.load(Ordering::Relaxed)
    }

    /// Stops writers and fillers (the prober too) and returns the totals.
    pub fn stop(mut self) -> WorkloadStats {
        self.halt_writers();
        self.stop_prober.store(true, Ordering::SeqCst);
        if let Some(p) = self.prober.take() {
            let _ = p.join();
        }
        WorkloadStats {
            regressions: self.shared.regressions.load(Ordering::SeqCst),
            time_stale: Duration::from_micros(self.shared.regressed_key_us.load(Ordering::SeqCst)),
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
    let mut highest: HashMap<i32, u64> = HashMap::new();
    let mut last_round = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let mut pipe = redis::pipe();
        for k in 1..=keys {
            pipe.cmd("VGET")
                .arg(format!("public.chaos:{k}"))
                .arg("WITHVERSION");
        }
        let values: Vec<(Option<String>, u64)> = match pipe.query(&mut con) {
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
        let round = now.duration_since(last_round);
        last_round = now;
        let mut regressed = 0u64;
        for (i, (cached, version)) in values.iter().enumerate() {
            let key = i as i32 + 1;
            let top = highest.entry(key).or_insert(0);
            // A miss (version 0) is never stale; a value (or tombstone) below a
            // version this key already showed is.
            if *version > 0 && *version < *top && cached.is_some() {
                regressed += 1;
            }
            *top = (*top).max(*version);
        }
        if regressed > 0 {
            shared.regressions.fetch_add(regressed, Ordering::Relaxed);
            shared
                .regressed_key_us
                .fetch_add(regressed * round.as_micros() as u64, Ordering::Relaxed);
        }
        let last = shared.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut worst = Duration::ZERO;
        for (i, (cached, _)) in values.iter().enumerate() {
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

fn filler(
    pg_url: &str,
    redis_url: &str,
    keys: i32,
    seed: u64,
    evict: bool,
    stop: &AtomicBool,
    shared: &Shared,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (Some(mut pg), Some(mut rd)) = (connect_pg(pg_url, stop), connect_redis(redis_url, stop))
    else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        let key: i32 = rng.random_range(1..=keys);
        let cache_key = format!("public.chaos:{key}");
        if evict && rng.random_bool(0.2) {
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
        match hit {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(_) => {
                // Redis may be restarting: connect again, as an API server would.
                std::thread::sleep(Duration::from_millis(50));
                match connect_redis(redis_url, stop) {
                    Some(c) => rd = c,
                    None => return,
                }
                continue;
            }
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
