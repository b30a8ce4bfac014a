//! One whole private vset system for an end-to-end test: a PostgreSQL cluster with
//! the extension, a tracked `public.users` table (plus the checker's audit
//! trigger), Redis with the module (standalone or a cluster, cold start *on*, as
//! in production), and any number of relay processes.
//!
//! ```no_run
//! use vset_tests::stack::Stack;
//! use vset_tests::workload::WorkloadSpec;
//! # fn main() -> Result<(), vset_tests::HarnessError> {
//! let mut stack = Stack::standalone(200)?;
//! stack.spawn_relay(&[])?;
//! let writers = stack.workload(&WorkloadSpec::default());
//! std::thread::sleep(std::time::Duration::from_secs(2));
//! writers.stop();
//! stack.drain(std::time::Duration::from_secs(30))?;
//! stack.check()?.assert_exact("after drain");
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::convergence::{self, CacheReader, Convergence};
use crate::postgres::PgCluster;
use crate::redis::{RedisCluster, RedisOptions, RedisServer};
use crate::relay::{RedisEndpoint, RelayCommand, RelayProcess};
use crate::workload::{self, Workload, WorkloadSpec};
use crate::HarnessError;

/// The tracked table and its key column.
pub const TABLE: &str = "public.users";
pub const KEY_COLUMN: &str = "id";

/// Redis of a stack.
pub enum Cache {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

pub struct Stack {
    pub pg: PgCluster,
    pub cache: Cache,
    pub relay_command: RelayCommand,
    pub relays: Vec<RelayProcess>,
    logs: tempfile::TempDir,
    spawned: usize,
    /// Users to seed once the first relay has warmed Redis up (0 when done).
    unseeded: i32,
}

impl Stack {
    /// PostgreSQL + one redis-server (module cold at start) + `keys` seeded users.
    pub fn standalone(keys: i32) -> Result<Self, HarnessError> {
        let redis = RedisServer::start(RedisOptions::new())?;
        Self::with_cache(Cache::Standalone(redis), keys)
    }

    /// [`Stack::standalone`] with `vset` in PostgreSQL's `shared_preload_libraries`
    /// (relays are woken through shared memory, no NOTIFY).
    pub fn standalone_preloaded(keys: i32) -> Result<Self, HarnessError> {
        let redis = RedisServer::start(RedisOptions::new())?;
        Self::with_cache_and_pg(
            Cache::Standalone(redis),
            keys,
            &[("shared_preload_libraries", "vset")],
        )
    }

    /// PostgreSQL + a Redis Cluster of `masters` nodes (module cold on each).
    pub fn cluster(masters: usize, keys: i32) -> Result<Self, HarnessError> {
        let cluster = RedisCluster::start(masters)?;
        Self::with_cache(Cache::Cluster(cluster), keys)
    }

    fn with_cache(cache: Cache, keys: i32) -> Result<Self, HarnessError> {
        Self::with_cache_and_pg(cache, keys, &[])
    }

    fn with_cache_and_pg(
        cache: Cache,
        keys: i32,
        pg_settings: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let pg = PgCluster::start_with(pg_settings)?;
        pg.create_extension()?;
        pg.execute(workload::USERS_DDL)?;
        pg.execute(&format!("SELECT vset.track('{TABLE}')"))?;
        let mut c = pg.client()?;
        convergence::install_audit(&mut c, TABLE, KEY_COLUMN)?;
        let logs = tempfile::Builder::new()
            .prefix("vset-e2e-logs-")
            .tempdir()
            .map_err(|source| HarnessError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        Ok(Self {
            pg,
            cache,
            relay_command: RelayCommand::from_env()?,
            relays: Vec::new(),
            logs,
            spawned: 0,
            unseeded: keys,
        })
    }

    /// The Redis flag(s) a relay needs.
    pub fn endpoint(&self) -> RedisEndpoint {
        match &self.cache {
            Cache::Standalone(r) => RedisEndpoint::Standalone(r.url()),
            Cache::Cluster(c) => RedisEndpoint::Cluster(c.urls()),
        }
    }

    /// The standalone server (panics on a cluster stack: a test bug).
    pub fn redis(&mut self) -> &mut RedisServer {
        match &mut self.cache {
            Cache::Standalone(r) => r,
            Cache::Cluster(_) => panic!("this stack runs a Redis Cluster"),
        }
    }

    /// True when the module on every node has left cold state.
    pub fn is_warm(&self) -> Result<bool, HarnessError> {
        let servers: Vec<&RedisServer> = match &self.cache {
            Cache::Standalone(r) => vec![r],
            Cache::Cluster(c) => c.nodes().iter().collect(),
        };
        for server in servers {
            let mut con = server.client()?;
            let reply: redis::Value =
                redis::cmd("VFLOOR")
                    .query(&mut con)
                    .map_err(|e| HarnessError::Command {
                        what: "VFLOOR".into(),
                        detail: e.to_string(),
                    })?;
            let cold = match &reply {
                redis::Value::Array(items) => items.get(1) != Some(&redis::Value::Int(0)),
                _ => true,
            };
            if cold {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Waits until a relay has ended the module's cold start on every node.
    pub fn wait_warm(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.is_warm()? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(HarnessError::Command {
            what: "waiting for a relay to end Redis' cold start (VFLOOR)".into(),
            detail: self.relay_logs(3000),
        })
    }

    /// Starts one more relay; returns its index in [`Self::relays`]. Reference-relay
    /// runs get a short poll interval and backoff so faults heal quickly.
    ///
    /// The first relay of a stack ends Redis' cold start (`VFLOOR` at the current
    /// version); only then are the users seeded, so the seed rows are above the
    /// floor and must all reach Redis (seeded earlier, they would rightly be misses).
    pub fn spawn_relay(&mut self, extra: &[&str]) -> Result<usize, HarnessError> {
        let endpoint = self.endpoint();
        self.spawn_relay_to(&endpoint, extra)
    }

    /// [`Self::spawn_relay`] with another Redis address or URL (e.g. one carrying
    /// an ACL user and password).
    pub fn spawn_relay_to(
        &mut self,
        endpoint: &RedisEndpoint,
        extra: &[&str],
    ) -> Result<usize, HarnessError> {
        let mut args: Vec<&str> = Vec::new();
        if !extra.contains(&"--poll-interval") {
            args.extend(["--poll-interval", "100ms"]);
        }
        if self.relay_command.is_reference() && !extra.contains(&"--backoff-max") {
            args.extend(["--backoff-max", "300ms"]);
        }
        args.extend(extra);
        self.spawned += 1;
        let relay = RelayProcess::spawn(
            &format!("relay-{}", self.spawned),
            &self.relay_command,
            &self.pg.url(),
            endpoint,
            &args,
            self.logs.path(),
        )?;
        self.relays.push(relay);
        if self.unseeded > 0 {
            self.wait_warm(Duration::from_secs(30))?;
            workload::seed_users(&mut self.pg.client()?, self.unseeded)?;
            self.unseeded = 0;
        }
        Ok(self.relays.len() - 1)
    }

    /// Replaces relay `i` by a fresh process with the same flags as a new spawn.
    pub fn respawn_relay(&mut self, i: usize, extra: &[&str]) -> Result<(), HarnessError> {
        self.relays[i].kill();
        let new = self.spawn_relay(extra)?;
        let fresh = self.relays.remove(new);
        self.relays[i] = fresh;
        Ok(())
    }

    /// Writer threads on the tracked table.
    pub fn workload(&self, spec: &WorkloadSpec) -> Workload {
        Workload::start(&self.pg.conninfo(), spec)
    }

    /// Waits until the outbox is empty.
    pub fn drain(&self, timeout: Duration) -> Result<Duration, HarnessError> {
        convergence::wait_drained(&self.pg.conninfo(), timeout).map_err(|e| HarnessError::Command {
            what: e.to_string(),
            detail: self.relay_logs(3000),
        })
    }

    /// A reader for the stack's Redis.
    pub fn cache_reader(&self) -> Result<CacheReader, HarnessError> {
        match &self.cache {
            Cache::Standalone(r) => CacheReader::standalone(&r.url()),
            Cache::Cluster(c) => CacheReader::cluster(&c.urls()),
        }
    }

    /// Compares Redis with PostgreSQL for every key ever written.
    pub fn check(&self) -> Result<Convergence, HarnessError> {
        let mut c = self.pg.client()?;
        let expected = convergence::expected_state(&mut c, TABLE, KEY_COLUMN)?;
        Convergence::check(&expected, &mut self.cache_reader()?)
    }

    /// The end of every relay's log (for assertion messages).
    pub fn relay_logs(&self, per_relay: usize) -> String {
        self.relays
            .iter()
            .map(|r| r.log_tail(per_relay))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
