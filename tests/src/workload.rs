//! Concurrent writers for end-to-end tests: each thread owns one PostgreSQL
//! connection and, until stopped, updates, deletes and re-inserts rows of a
//! `users`-shaped table on a small set of hot keys, with multi-row transactions
//! and rolled-back savepoints mixed in. Every write changes the row (`rev` goes
//! up, `name` is unique per write), so a stale cache value is always visible as a
//! different payload.
//!
//! Writers survive a PostgreSQL restart: on a broken connection they reconnect and
//! go on (a transaction whose COMMIT was cut off may or may not have committed;
//! the checker reads the outcome from the database, so either is fine).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::HarnessError;

/// The table the e2e tests track: `id` is the UNIQUE NOT NULL key the cache key is
/// built from (`public.users:<id>`).
pub const USERS_DDL: &str = "CREATE TABLE public.users (
    id     int  PRIMARY KEY,
    name   text NOT NULL,
    email  text,
    rev    int  NOT NULL DEFAULT 0,
    writer int
)";

/// Inserts rows `1..=keys` (one statement).
pub fn seed_users(client: &mut postgres::Client, keys: i32) -> Result<(), HarnessError> {
    client
        .execute(
            "INSERT INTO public.users (id, name, email)
             SELECT g, 'user ' || g, 'user' || g || '@example.com' FROM generate_series(1, $1) g",
            &[&keys],
        )
        .map(|_| ())
        .map_err(|e| HarnessError::Command {
            what: "seeding users".into(),
            detail: e.to_string(),
        })
}

/// What the writers do.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub writers: usize,
    /// Hot keys: ids `1..=keys`.
    pub keys: i32,
    /// Pause between two transactions of one writer (`None`: as fast as possible).
    pub pace: Option<Duration>,
    pub seed: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            writers: 8,
            keys: 200,
            pace: None,
            seed: 42,
        }
    }
}

/// Totals once the writers stopped.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkloadStats {
    /// Transactions that committed (COMMIT returned OK).
    pub commits: u64,
    /// Transactions that failed (deadlock, lost connection, …) and were not retried.
    pub failures: u64,
}

/// Running writer threads.
pub struct Workload {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    handles: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `spec.writers` threads against `conninfo`.
    pub fn start(conninfo: &str, spec: &WorkloadSpec) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let handles = (0..spec.writers)
            .map(|w| {
                let writer = Writer {
                    id: w as i32,
                    conninfo: conninfo.to_string(),
                    keys: spec.keys.max(1),
                    pace: spec.pace,
                    rng: StdRng::seed_from_u64(spec.seed.wrapping_add(w as u64)),
                    serial: 0,
                    stop: stop.clone(),
                    commits: commits.clone(),
                    failures: failures.clone(),
                };
                std::thread::spawn(move || writer.run())
            })
            .collect();
        Self {
            stop,
            commits,
            failures,
            handles,
        }
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Blocks until at least `n` transactions committed (or `timeout`).
    pub fn wait_for_commits(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.commits() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Stops every writer (each finishes its transaction) and returns the totals.
    pub fn stop(self) -> WorkloadStats {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
        WorkloadStats {
            commits: self.commits.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

struct Writer {
    id: i32,
    conninfo: String,
    keys: i32,
    pace: Option<Duration>,
    rng: StdRng,
    serial: u64,
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self) {
        let mut client: Option<postgres::Client> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let c = match client.as_mut() {
                Some(c) if !c.is_closed() => c,
                _ => match postgres::Client::connect(&self.conninfo, postgres::NoTls) {
                    Ok(c) => client.insert(c),
                    Err(_) => {
                        // Server down (a restart test): try again shortly.
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                },
            };
            let key = self.rng.random_range(1..=self.keys);
            let choice = self.rng.random_range(0..100);
            self.serial += 1;
            let name = format!("w{}-{}", self.id, self.serial);
            let result = match choice {
                0..=59 => Self::update_or_insert(c, key, &name, self.id),
                60..=69 => c
                    .execute("DELETE FROM public.users WHERE id = $1", &[&key])
                    .map(|_| ()),
                70..=79 => c
                    .execute(
                        "INSERT INTO public.users (id, name, writer) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE
                           SET rev = users.rev + 1, name = EXCLUDED.name, writer = EXCLUDED.writer",
                        &[&key, &name, &self.id],
                    )
                    .map(|_| ()),
                _ => {
                    let others: Vec<i32> = (0..3)
                        .map(|_| self.rng.random_range(1..=self.keys))
                        .collect();
                    Self::multi_row(c, key, &others, &name, self.id)
                }
            };
            match result {
                Ok(()) => {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(p) = self.pace {
                std::thread::sleep(p);
            }
        }
    }

    fn update_or_insert(
        c: &mut postgres::Client,
        key: i32,
        name: &str,
        writer: i32,
    ) -> Result<(), postgres::Error> {
        let n = c.execute(
            "UPDATE public.users SET rev = rev + 1, name = $2, writer = $3 WHERE id = $1",
            &[&key, &name, &writer],
        )?;
        if n == 0 {
            c.execute(
                "INSERT INTO public.users (id, name, writer) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO NOTHING",
                &[&key, &name, &writer],
            )?;
        }
        Ok(())
    }

    /// Several rows in one transaction, plus a savepoint that is rolled back (its
    /// change must vanish from the outbox too).
    fn multi_row(
        c: &mut postgres::Client,
        key: i32,
        others: &[i32],
        name: &str,
        writer: i32,
    ) -> Result<(), postgres::Error> {
        let mut keys: Vec<i32> = others.to_vec();
        keys.push(key);
        // Lock order by id: no deadlocks between writers.
        keys.sort_unstable();
        keys.dedup();
        let mut tx = c.transaction()?;
        for k in &keys {
            tx.execute(
                "UPDATE public.users SET rev = rev + 1, name = $2, writer = $3 WHERE id = $1",
                &[k, &name, &writer],
            )?;
        }
        let mut sp = tx.savepoint("undone")?;
        sp.execute(
            "UPDATE public.users SET name = 'never committed', rev = rev + 1000 WHERE id = $1",
            &[&key],
        )?;
        sp.rollback()?;
        tx.commit()
    }
}
