//! The four strategies where the application itself writes the cache: each write
//! is a list of steps, some on the caller's path (`sync`), some later (`deferred`).
//! Faults act on those steps, the same way for every strategy:
//! - crash: the process dies right after the write's first durable step (the
//!   commit, or for write-behind the cache SET); nothing after it runs;
//! - outage: the cache is unreachable during the second write's synchronous steps,
//!   retries included (each cache step is retried with backoff, see
//!   [`super::Hardening`]; the outage outlasts them); errors are then logged and
//!   ignored, as best-effort cache updates are; write-behind cannot ignore it and
//!   fails the write; the cache is back before deferred steps;
//! - late retry: the first write's second step was retried; the duplicate lands
//!   after the second write completed;
//! - fill race: a reader misses, reads the database, the second write runs, then
//!   the reader's SET lands (before or after the deferred steps, per the schedule).

use std::time::{Duration, Instant};

use postgres::Client;

use super::{EpisodeResult, Hardening, Strategy};
use crate::cache_conn::CacheConn;
use crate::proxy::FaultProxy;
use crate::schedule::Fault;
use crate::LabError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    WriteThrough,
    WriteBehind,
    CacheAside,
    DoubleDelete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// UPDATE ... COMMIT on the caller's path.
    DbCommit,
    /// The write-behind flusher's UPDATE.
    DbFlush,
    CacheSet,
    CacheDel,
}

struct Plan {
    sync: &'static [Step],
    deferred: &'static [Step],
    /// Index in `sync` of the first durable write (the crash point).
    crash_after: usize,
    /// The step whose retry lands late (the write's second write).
    retried: Step,
}

impl AppKind {
    fn plan(self) -> Plan {
        use Step::*;
        match self {
            AppKind::WriteThrough => Plan {
                sync: &[DbCommit, CacheSet],
                deferred: &[],
                crash_after: 0,
                retried: CacheSet,
            },
            AppKind::WriteBehind => Plan {
                sync: &[CacheSet],
                deferred: &[DbFlush],
                crash_after: 0,
                retried: DbFlush,
            },
            AppKind::CacheAside => Plan {
                sync: &[DbCommit, CacheDel],
                deferred: &[],
                crash_after: 0,
                retried: CacheDel,
            },
            AppKind::DoubleDelete => Plan {
                sync: &[CacheDel, DbCommit],
                deferred: &[CacheDel],
                crash_after: 1,
                retried: CacheDel,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AppKind::WriteThrough => "write-through",
            AppKind::WriteBehind => "write-behind",
            AppKind::CacheAside => "cache-aside",
            AppKind::DoubleDelete => "double-delete",
        }
    }
}

pub struct AppStrategy {
    kind: AppKind,
    pg: Client,
    cache: CacheConn,
    proxy: FaultProxy,
    table: String,
    hardening: Hardening,
}

/// How one step went. Cache errors are not fatal to the lab: they are the fault.
enum StepOutcome {
    Done,
    CacheFailed,
}

impl AppStrategy {
    /// Creates `lab_<kind>(id int primary key, v text)` with `keys` rows.
    pub fn new(
        kind: AppKind,
        pg_url: &str,
        proxy: &FaultProxy,
        keys: i32,
        hardening: Hardening,
    ) -> Result<Self, LabError> {
        let mut pg = Client::connect(pg_url, postgres::NoTls)?;
        let table = format!("lab_{}", kind.name().replace('-', "_"));
        pg.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table}(id int PRIMARY KEY, v text NOT NULL);
             INSERT INTO {table} SELECT i, 'k' || i || '-w0' FROM generate_series(1, {keys}) i;"
        ))?;
        Ok(Self {
            kind,
            pg,
            cache: CacheConn::new(&proxy.url()),
            proxy: proxy.clone(),
            table,
            hardening,
        })
    }

    /// `SET key value` with the strategy's TTL.
    fn set_cmd(&self, k: &str, value: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(k).arg(value);
        if self.hardening.ttl_ms > 0 {
            cmd.arg("PX").arg(self.hardening.ttl_ms);
        }
        cmd
    }

    /// Runs a cache command, retried with exponential backoff on errors.
    fn cache_with_retry(&mut self, cmd: &redis::Cmd) -> bool {
        for attempt in 0..=self.hardening.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(5 << (attempt - 1)));
            }
            if self.cache.run::<redis::Value>(cmd).is_ok() {
                return true;
            }
        }
        false
    }

    fn key(&self, key: i32) -> String {
        format!("lab:{}:{key}", self.kind.name())
    }

    fn step(&mut self, step: Step, key: i32, value: &str) -> Result<StepOutcome, LabError> {
        let k = self.key(key);
        match step {
            Step::DbCommit | Step::DbFlush => {
                self.pg.execute(
                    &format!("UPDATE {} SET v = $2 WHERE id = $1", self.table),
                    &[&key, &value],
                )?;
                Ok(StepOutcome::Done)
            }
            Step::CacheSet | Step::CacheDel => {
                let cmd = if step == Step::CacheSet {
                    self.set_cmd(&k, value)
                } else {
                    let mut del = redis::cmd("DEL");
                    del.arg(&k);
                    del
                };
                Ok(if self.cache_with_retry(&cmd) {
                    StepOutcome::Done
                } else {
                    StepOutcome::CacheFailed
                })
            }
        }
    }

    /// Runs the synchronous steps (up to and including `stop_after` when given).
    /// Returns whether the caller got a success, and how long it waited.
    fn sync_steps(
        &mut self,
        key: i32,
        value: &str,
        stop_after: Option<usize>,
    ) -> Result<(bool, u64), LabError> {
        let plan = self.kind.plan();
        let started = Instant::now();
        for (i, s) in plan.sync.iter().enumerate() {
            if let StepOutcome::CacheFailed = self.step(*s, key, value)? {
                // Write-behind's only synchronous step is the cache: its failure is
                // the write's failure. Everyone else logs it and carries on.
                if self.kind == AppKind::WriteBehind {
                    return Ok((false, 0));
                }
            }
            if stop_after == Some(i) {
                // The process dies here: the caller is answered only if every
                // synchronous step ran.
                return Ok((i + 1 == plan.sync.len(), 0));
            }
        }
        Ok((true, started.elapsed().as_micros() as u64))
    }

    fn deferred_steps(&mut self, key: i32, value: &str) -> Result<(), LabError> {
        for s in self.kind.plan().deferred {
            self.step(*s, key, value)?;
        }
        Ok(())
    }

    fn full_write(
        &mut self,
        key: i32,
        ordinal: u64,
        r: &mut EpisodeResult,
    ) -> Result<(), LabError> {
        let v = super::value_of(key, ordinal);
        let (acked, us) = self.sync_steps(key, &v, None)?;
        self.note(acked, ordinal, us, r);
        if acked {
            self.deferred_steps(key, &v)?;
        }
        Ok(())
    }

    fn note(&self, acked: bool, ordinal: u64, us: u64, r: &mut EpisodeResult) {
        if acked {
            r.last_acked = ordinal;
            if us > 0 {
                r.write_us.push(us);
            }
        } else {
            r.failed_writes += 1;
        }
    }
}

impl Strategy for AppStrategy {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn episode(
        &mut self,
        key: i32,
        w1: u64,
        w2: u64,
        fault: Fault,
        fill_early: bool,
    ) -> Result<EpisodeResult, LabError> {
        let mut r = EpisodeResult::default();
        let v2 = super::value_of(key, w2);
        match fault {
            Fault::None | Fault::RelayOutage => {
                self.full_write(key, w1, &mut r)?;
                // Readers keep a hot key cached between writes.
                self.read(key)?;
                self.full_write(key, w2, &mut r)?;
            }
            Fault::Crash => {
                self.full_write(key, w1, &mut r)?;
                // Readers keep a hot key cached between writes.
                self.read(key)?;
                let crash_at = self.kind.plan().crash_after;
                let (acked, _) = self.sync_steps(key, &v2, Some(crash_at))?;
                if acked {
                    r.last_acked = w2;
                }
            }
            Fault::Outage => {
                self.full_write(key, w1, &mut r)?;
                // Readers keep a hot key cached between writes.
                self.read(key)?;
                self.proxy.cut();
                let out = self.sync_steps(key, &v2, None);
                self.proxy.restore();
                let (acked, us) = out?;
                self.note(acked, w2, us, &mut r);
                if acked {
                    self.deferred_steps(key, &v2)?;
                }
            }
            Fault::LateRetry | Fault::EvictThenLate => {
                self.full_write(key, w1, &mut r)?;
                // Readers keep a hot key cached between writes.
                self.read(key)?;
                self.full_write(key, w2, &mut r)?;
                if fault == Fault::EvictThenLate {
                    let k = self.key(key);
                    let _ = self.cache.run::<i64>(redis::cmd("DEL").arg(&k));
                }
                let v1 = super::value_of(key, w1);
                let retried = self.kind.plan().retried;
                self.step(retried, key, &v1)?;
            }
            Fault::FillRace => {
                self.full_write(key, w1, &mut r)?;
                // Readers keep a hot key cached between writes.
                self.read(key)?;
                let k = self.key(key);
                let _ = self.cache.run::<i64>(redis::cmd("DEL").arg(&k));
                // The reader misses and reads the database...
                let read: Option<String> = self.stored(key)?;
                // ...the writer runs...
                let (acked, us) = self.sync_steps(key, &v2, None)?;
                self.note(acked, w2, us, &mut r);
                // ...and the reader's fill lands before or after the delayed work.
                if fill_early {
                    self.fill(&k, read.as_deref());
                }
                if acked {
                    self.deferred_steps(key, &v2)?;
                }
                if !fill_early {
                    self.fill(&k, read.as_deref());
                }
            }
        }
        Ok(r)
    }

    fn read(&mut self, key: i32) -> Result<bool, LabError> {
        let k = self.key(key);
        match self.cache.run::<Option<String>>(redis::cmd("GET").arg(&k)) {
            Ok(Some(_)) => Ok(true),
            Ok(None) => {
                let v = self.stored(key)?;
                self.fill(&k, v.as_deref());
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    }

    fn cached(&mut self, key: i32) -> Result<Option<String>, LabError> {
        let k = self.key(key);
        Ok(self.cache.run(redis::cmd("GET").arg(&k))?)
    }

    fn stored(&mut self, key: i32) -> Result<Option<String>, LabError> {
        super::committed_value(&mut self.pg, &self.table, key)
    }
}

impl AppStrategy {
    /// A reader's plain SET of what it read (errors ignored: it is only a cache).
    fn fill(&mut self, k: &str, value: Option<&str>) {
        if let Some(v) = value {
            let cmd = self.set_cmd(k, v);
            let _ = self.cache.run::<()>(&cmd);
        }
    }
}
