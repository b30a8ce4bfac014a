//! One cell's private world: a PostgreSQL cluster with the extension and a tracked
//! table `chaos(id int PRIMARY KEY, v bigint, pad text)`, a redis-server with the
//! module, and `vset-relay` processes (the real binary) that the cell can kill,
//! stop, continue and respawn.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths;
use crate::ports::free_port;
use crate::postgres::PgCluster;
use crate::process::ChildGuard;
use crate::redis::{RedisOptions, RedisServer};
use crate::relay::{metric_value, scrape_metrics};

use super::stall::StallProxy;
use super::ChaosError;

/// How a relay reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    /// Through the world's [`StallProxy`], so the cell can hold its writes in flight.
    Stallable,
}

struct RelaySlot {
    args: Vec<String>,
    route: Route,
    child: Option<ChildGuard>,
    metrics: String,
}

pub struct World {
    pub pg: PgCluster,
    pub redis: RedisServer,
    pub keys: i32,
    relays: Vec<RelaySlot>,
    stall: Option<StallProxy>,
    logs: tempfile::TempDir,
    spawned: usize,
}

impl World {
    /// Starts both servers, tracks the table and fills `keys` rows.
    pub fn start(redis: RedisOptions, keys: i32) -> Result<Self, ChaosError> {
        let pg = PgCluster::start()?;
        pg.create_extension()?;
        pg.execute(
            "CREATE TABLE chaos(id int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL);
             SELECT vset.track('chaos');",
        )?;
        super::oracle::install_audit(&pg)?;
        pg.execute(&format!(
            "INSERT INTO chaos SELECT i, 0, repeat('x', 16) FROM generate_series(1, {keys}) i;"
        ))?;
        let redis = RedisServer::start(redis)?;
        let logs = tempfile::Builder::new()
            .prefix("vset-chaos-")
            .tempdir()
            .map_err(|source| crate::HarnessError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        Ok(Self {
            pg,
            redis,
            keys,
            relays: Vec::new(),
            stall: None,
            logs,
            spawned: 0,
        })
    }

    /// Starts a relay with the world's connection flags plus `extra`; returns its slot.
    pub fn add_relay(&mut self, extra: &[&str]) -> Result<usize, ChaosError> {
        self.add_relay_routed(extra, Route::Direct)
    }

    /// Starts a relay that reaches Redis the way `route` says; returns its slot.
    pub fn add_relay_routed(&mut self, extra: &[&str], route: Route) -> Result<usize, ChaosError> {
        if route == Route::Stallable && self.stall.is_none() {
            let proxy =
                StallProxy::start(self.redis.port()).map_err(|source| crate::HarnessError::Io {
                    path: PathBuf::from("stall proxy"),
                    source,
                })?;
            self.stall = Some(proxy);
        }
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if route == Route::Stallable {
            // The stall is the fault, not the relay's reaction to it: a relay that
            // timed out would roll back and retry, and its batch would no longer be
            // the one held in the network.
            args.extend(["--redis-timeout".to_string(), "120s".to_string()]);
        }
        self.relays.push(RelaySlot {
            args,
            route,
            child: None,
            metrics: String::new(),
        });
        let slot = self.relays.len() - 1;
        self.respawn_relay(slot)?;
        Ok(slot)
    }

    /// Relay slots so far (running or not).
    pub fn relay_count(&self) -> usize {
        self.relays.len()
    }

    /// The proxy in front of Redis for [`Route::Stallable`] relays.
    pub fn stall(&self) -> Option<&StallProxy> {
        self.stall.as_ref()
    }

    /// A counter or gauge from the relay in `slot` (its `--metrics` endpoint).
    pub fn relay_metric(&self, slot: usize, name: &str) -> Option<f64> {
        let text = scrape_metrics(&self.relays.get(slot)?.metrics).ok()?;
        metric_value(&text, name)
    }

    /// Stops the relay in `slot` with SIGTERM (it finishes its batch), for good.
    pub fn stop_relay(&mut self, slot: usize) {
        if let Some(mut r) = self.relays[slot].child.take() {
            r.terminate(Duration::from_secs(10));
        }
    }

    /// The slot of the relay whose PostgreSQL session is backend `backend_pid`.
    pub fn relay_of_backend(
        &self,
        c: &mut postgres::Client,
        backend_pid: i32,
    ) -> Result<Option<usize>, ChaosError> {
        let port: Option<i32> = c
            .query_opt(
                "SELECT client_port FROM pg_stat_activity WHERE pid = $1",
                &[&backend_pid],
            )?
            .and_then(|r| r.try_get(0).ok());
        let Some(port) = port else { return Ok(None) };
        Ok((0..self.relays.len()).find(|&slot| {
            self.relay_pid(slot)
                .is_some_and(|pid| local_tcp_ports(pid).contains(&port))
        }))
    }

    /// (Re)starts the relay in `slot` (after a kill, or to replace a running one).
    pub fn respawn_relay(&mut self, slot: usize) -> Result<(), ChaosError> {
        if let Some(mut old) = self.relays[slot].child.take() {
            old.kill();
        }
        let redis_url = match (self.relays[slot].route, &self.stall) {
            (Route::Stallable, Some(proxy)) => proxy.url(),
            _ => self.redis.url(),
        };
        let metrics = format!("127.0.0.1:{}", free_port());
        let bin = paths::relay_binary()?;
        self.spawned += 1;
        let log = self
            .logs
            .path()
            .join(format!("relay-{slot}-{}.log", self.spawned));
        let err = File::create(&log).map_err(|source| crate::HarnessError::Io {
            path: log.clone(),
            source,
        })?;
        let child = Command::new(&bin)
            .arg("--postgres")
            .arg(self.pg.url())
            .arg("--redis")
            .arg(redis_url)
            .args(["--metrics", &metrics])
            .args(["--poll-interval", "100ms", "--backoff-max", "300ms"])
            .args(&self.relays[slot].args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|source| crate::HarnessError::Spawn {
                what: bin.display().to_string(),
                source,
            })?;
        self.relays[slot].child = Some(ChildGuard::new(format!("vset-relay#{slot}"), child));
        self.relays[slot].metrics = metrics;
        Ok(())
    }

    /// SIGKILL the relay in `slot` (it stays down until [`Self::respawn_relay`]).
    pub fn kill_relay(&mut self, slot: usize) {
        if let Some(mut r) = self.relays[slot].child.take() {
            r.kill();
        }
    }

    /// The process id of the relay in `slot`, while it runs.
    pub fn relay_pid(&self, slot: usize) -> Option<u32> {
        self.relays[slot].child.as_ref().and_then(|r| r.pid())
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to the relay in `slot`.
    pub fn signal_relay(&self, slot: usize, signal: i32) {
        if let Some(r) = &self.relays[slot].child {
            r.signal(signal);
        }
    }

    /// Waits until `vset.outbox` is empty; returns how long that took.
    pub fn wait_drained(&mut self, timeout: Duration) -> Result<Duration, ChaosError> {
        let started = Instant::now();
        let mut c = self.pg.client()?;
        loop {
            let n: i64 = match c.query_one("SELECT count(*) FROM vset.outbox", &[]) {
                Ok(row) => row.try_get(0)?,
                Err(_) => {
                    // The server may be restarting: reconnect and try again.
                    std::thread::sleep(Duration::from_millis(100));
                    c = self.pg.client()?;
                    continue;
                }
            };
            if n == 0 {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return Err(ChaosError::Stuck(format!(
                    "{n} changes still in vset.outbox after {}s; relay logs:\n{}",
                    timeout.as_secs(),
                    self.relay_log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// vset-verify over the whole table (full scan, orphans included).
    pub fn verify(&self, grace: Duration) -> Result<vset_verify::Report, ChaosError> {
        Ok(vset_verify::run(&vset_verify::Options {
            postgres: self.pg.url(),
            cache: vset_verify::cache::CacheTarget::Single(self.redis.url()),
            sample: None,
            grace,
            fetch_size: 500,
            module_type: vset_verify::cache::DEFAULT_MODULE_TYPE.to_string(),
            max_recheck: 100_000,
            skip_orphans: false,
        })?)
    }

    /// The end of every relay log (for failure messages).
    pub fn relay_log_tail(&self) -> String {
        let mut out = String::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.logs.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files.iter().rev().take(3) {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let tail: String = text
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            out.push_str(&format!("--- {}\n{tail}\n", f.display()));
        }
        out
    }
}

/// Local TCP ports of a process's sockets (from `/proc/<pid>/fd` and
/// `/proc/<pid>/net/tcp{,6}`): for a relay, its PostgreSQL sessions'
/// `pg_stat_activity.client_port`s.
pub fn local_tcp_ports(pid: u32) -> Vec<i32> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")
                        .and_then(|r| r.strip_suffix(']'))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (f.get(1), f.get(9)) else {
                continue;
            };
            if !inodes.contains(*inode) {
                continue;
            }
            if let Some(port) = local
                .rsplit_once(':')
                .and_then(|(_, p)| i32::from_str_radix(p, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports
}
