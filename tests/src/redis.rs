//! Real `redis-server` processes for tests: standalone, replica and 3-node cluster,
//! each on a free loopback port with a private data folder, optionally with the vset
//! module loaded.
//!
//! ```no_run
//! use vset_tests::redis::{RedisOptions, RedisServer};
//! # fn main() -> Result<(), vset_tests::HarnessError> {
//! // vset module loaded, not cold (so VSET works at once), AOF on.
//! let mut server = RedisServer::start(
//!     RedisOptions::new()
//!         .module_args(["cold-start", "no"])
//!         .config("appendonly", "yes"),
//! )?;
//! let mut con = server.client()?;
//! let stored: i64 = redis::cmd("VSET").arg("k").arg(1).arg("v").query(&mut con).unwrap();
//! assert_eq!(stored, 1);
//! server.restart()?; // same port, same data folder: reloads the AOF
//! # Ok(()) }
//! ```
//!
//! What the harness guarantees:
//! - servers bind `127.0.0.1` only, on ports from [`crate::ports::free_port`];
//! - every server gets its own temporary data folder (`dir`), kept across
//!   [`RedisServer::restart`], [`RedisServer::kill`] + [`RedisServer::start_again`], and
//!   removed when the [`RedisServer`] is dropped;
//! - the process is killed when the guard is dropped, even if a test panics;
//! - `DEBUG` and `MODULE` commands are enabled (Redis 7 disables them by default);
//! - RDB snapshots are off (`save ""`) unless a test configures `save`;
//! - the module is the one from [`crate::paths::redis_module`] (`VSET_REDIS_MODULE`
//!   overrides it), loaded with `loadmodule` (Redis 7 refuses `MODULE LOAD` by default).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths;
use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::HarnessError;

/// How long a server may take to answer `PING` after start (loading included).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a server. Build with [`RedisOptions::new`] and the chained setters.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    module: bool,
    module_path: Option<PathBuf>,
    module_args: Vec<String>,
    config: Vec<(String, String)>,
    rdb_file: Option<PathBuf>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            module: true,
            module_path: None,
            module_args: Vec::new(),
            config: Vec::new(),
            rdb_file: None,
        }
    }
}

impl RedisOptions {
    /// vset module loaded with no arguments (so: cold start on, 65536 buckets).
    pub fn new() -> Self {
        Self::default()
    }

    /// The vset module loaded with `cold-start no`: VSET works without a `VFLOOR` first.
    pub fn warm() -> Self {
        Self::default().module_args(["cold-start", "no"])
    }

    /// Plain Redis without the module (for comparisons and benchmarks).
    pub fn without_module(mut self) -> Self {
        self.module = false;
        self
    }

    /// Load this build of the module instead of [`crate::paths::redis_module`] (the
    /// chaos matrix's control build, say).
    pub fn module_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.module_path = Some(path.into());
        self
    }

    /// Module arguments (`name value` pairs), replacing earlier ones.
    pub fn module_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.module_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// One extra `redis.conf` line `name value`, written after the harness defaults so
    /// it overrides them (e.g. `("appendonly", "yes")`, `("maxmemory", "4mb")`,
    /// `("save", "\"\"")`). `value` is written as is: quote it yourself if needed.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((name.into(), value.into()));
        self
    }

    /// An RDB file copied into the data folder as `dump.rdb` before the first start
    /// (fixtures, corrupted files).
    pub fn rdb_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.rdb_file = Some(path.into());
        self
    }
}

/// One running (or stopped, between restarts) `redis-server`.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    opts: RedisOptions,
    child: Option<ChildGuard>,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start(opts: RedisOptions) -> Result<Self, HarnessError> {
        let mut server = Self::prepare(opts)?;
        // Between free_port() and the server's bind another process can take the
        // port (an outgoing connection's source port, say): then try another one.
        for _ in 0..2 {
            match server.start_again() {
                Err(_) if server.log().contains("Address already in use") => {
                    server.port = free_port();
                }
                other => return other.map(|()| server),
            }
        }
        server.start_again()?;
        Ok(server)
    }

    /// Starts a server that is expected to refuse to start (bad module arguments,
    /// corrupt RDB): waits for the process to exit and returns its log. Fails if the
    /// server becomes ready instead.
    pub fn start_expecting_exit(opts: RedisOptions) -> Result<String, HarnessError> {
        let mut server = Self::prepare(opts)?;
        let mut child = server.spawn()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if !child.is_running() {
                return Ok(server.log());
            }
            if ping(server.port) {
                return Err(HarnessError::Command {
                    what: "redis-server".into(),
                    detail: format!(
                        "was expected to refuse to start but answers PING; log:\n{}",
                        server.log()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(HarnessError::NotReady {
            what: "redis-server (expected to exit)".into(),
            secs: READY_TIMEOUT.as_secs(),
            log: server.log_path(),
            tail: tail(&server.log()),
        })
    }

    fn prepare(opts: RedisOptions) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("vset-redis-")
            .tempdir()
            .map_err(|source| HarnessError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        if let Some(rdb) = &opts.rdb_file {
            let to = dir.path().join("dump.rdb");
            fs::copy(rdb, &to).map_err(|source| HarnessError::Io {
                path: rdb.clone(),
                source,
            })?;
        }
        Ok(Self {
            port: free_port(),
            dir,
            opts,
            child: None,
        })
    }

    fn write_config(&self) -> Result<PathBuf, HarnessError> {
        let dir = self.dir.path();
        let mut conf = String::new();
        conf.push_str("bind 127.0.0.1\n");
        conf.push_str(&format!("port {}\n", self.port));
        conf.push_str(&format!("dir {}\n", quote(&dir.display().to_string())));
        conf.push_str(&format!(
            "logfile {}\n",
            quote(&self.log_path().display().to_string())
        ));
        conf.push_str("daemonize no\nsave \"\"\nappendonly no\n");
        conf.push_str("enable-debug-command yes\nenable-module-command yes\n");
        if self.opts.module {
            let module = match &self.opts.module_path {
                Some(p) => p.clone(),
                None => paths::redis_module()?,
            };
            conf.push_str("loadmodule ");
            conf.push_str(&quote(&module.display().to_string()));
            for arg in &self.opts.module_args {
                conf.push(' ');
                conf.push_str(&quote(arg));
            }
            conf.push('\n');
        }
        for (name, value) in &self.opts.config {
            conf.push_str(&format!("{name} {value}\n"));
        }
        let path = dir.join("redis.conf");
        fs::write(&path, conf).map_err(|source| HarnessError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    fn spawn(&mut self) -> Result<ChildGuard, HarnessError> {
        let conf = self.write_config()?;
        let stderr_path = self.dir.path().join("redis.stderr");
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|source| HarnessError::Io {
                path: stderr_path.clone(),
                source,
            })?;
        let bin = paths::binary("redis-server", "VSET_REDIS_SERVER");
        let child = Command::new(&bin)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                what: format!(
                    "{} (install redis-server or set VSET_REDIS_SERVER)",
                    bin.display()
                ),
                source,
            })?;
        Ok(ChildGuard::new(
            format!("redis-server:{}", self.port),
            child,
        ))
    }

    /// Starts the server again after [`kill`](Self::kill) or [`stop`](Self::stop),
    /// on the same port with the same data folder, and waits for `PING`.
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Ok(());
        }
        let mut child = self.spawn()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ping(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if !child.is_running() || Instant::now() >= deadline {
                child.kill();
                return Err(HarnessError::NotReady {
                    what: format!("redis-server on port {}", self.port),
                    secs: READY_TIMEOUT.as_secs(),
                    log: self.log_path(),
                    tail: tail(&self.log()),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Clean shutdown (SIGTERM: Redis flushes the AOF, and saves an RDB when `save`
    /// is configured), then start again on the same port and data folder.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.start_again()
    }

    /// Clean shutdown (SIGTERM, up to 20 s, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.terminate(Duration::from_secs(20));
        }
    }

    /// SIGKILL: a crash. Nothing is saved; [`start_again`](Self::start_again) restarts.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Deletes the saved state (RDB and AOF) of a stopped server, so the next start
    /// is a start "without persistence". Fails if the server is running.
    pub fn wipe_data(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Err(HarnessError::Command {
                what: "wipe_data".into(),
                detail: "stop or kill the server first".into(),
            });
        }
        for name in ["dump.rdb", "appendonlydir", "appendonly.aof", "nodes.conf"] {
            let p = self.dir.path().join(name);
            let res = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            match res {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(HarnessError::Io { path: p, source }),
            }
        }
        Ok(())
    }

    /// True while the process runs (false after it exited by itself, e.g. on a
    /// corrupt file, or after kill/stop).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(ChildGuard::is_running)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The private data folder (`dump.rdb`, `appendonlydir/`, `redis.log`, `redis.conf`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// The server log so far (all starts), plus anything written to stderr.
    pub fn log(&self) -> String {
        let mut s = fs::read_to_string(self.log_path()).unwrap_or_default();
        if let Ok(err) = fs::read_to_string(self.dir.path().join("redis.stderr")) {
            s.push_str(&err);
        }
        s
    }

    /// A new synchronous connection.
    pub fn client(&self) -> Result<redis::Connection, HarnessError> {
        let err = |e: redis::RedisError| HarnessError::Command {
            what: format!("connect to {}", self.url()),
            detail: e.to_string(),
        };
        let client = redis::Client::open(self.url()).map_err(err)?;
        client.get_connection().map_err(err)
    }

    /// `CONFIG SET name value` at runtime (e.g. `("maxmemory-policy", "noeviction")`).
    pub fn config_set(&self, name: &str, value: impl ToString) -> Result<(), HarnessError> {
        let mut con = self.client()?;
        let value = value.to_string();
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(&value)
            .query::<()>(&mut con)
            .map_err(|e| HarnessError::Command {
                what: format!("CONFIG SET {name} {value}"),
                detail: e.to_string(),
            })
    }

    /// One field of `INFO <section>` (e.g. `("replication", "master_link_status")`).
    pub fn info_field(&self, section: &str, field: &str) -> Result<Option<String>, HarnessError> {
        let mut con = self.client()?;
        let info: String = redis::cmd("INFO")
            .arg(section)
            .query(&mut con)
            .map_err(|e| HarnessError::Command {
                what: format!("INFO {section}"),
                detail: e.to_string(),
            })?;
        Ok(parse_info_field(&info, field))
    }

    /// Makes this server a replica of `master` and waits until the initial sync is
    /// done (`master_link_status:up`).
    pub fn replica_of(&self, master: &RedisServer) -> Result<(), HarnessError> {
        let mut con = self.client()?;
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(master.port())
            .query(&mut con)
            .map_err(|e| HarnessError::Command {
                what: "REPLICAOF".into(),
                detail: e.to_string(),
            })?;
        wait_until(
            &format!("replica {} to sync with {}", self.port, master.port),
            || {
                Ok(self
                    .info_field("replication", "master_link_status")?
                    .as_deref()
                    == Some("up")
                    && self
                        .info_field("replication", "master_sync_in_progress")?
                        .as_deref()
                        == Some("0"))
            },
        )
    }

    /// Waits (on this master) until `replicas` replicas acknowledged every write made
    /// so far, on any connection, so a test can read them next. (`WAIT` would only
    /// cover writes of the connection it runs on.)
    pub fn wait_for_replicas(&self, replicas: usize) -> Result<(), HarnessError> {
        let target: u64 = self
            .info_field("replication", "master_repl_offset")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        wait_until(
            &format!(
                "{replicas} replica(s) of {} to reach offset {target}",
                self.port
            ),
            || {
                let mut con = self.client()?;
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut con)
                    .map_err(|e| HarnessError::Command {
                        what: "INFO replication".into(),
                        detail: e.to_string(),
                    })?;
                // Lines like `slave0:ip=127.0.0.1,port=1234,state=online,offset=567,lag=0`.
                let caught_up = info
                    .lines()
                    .filter(|l| l.starts_with("slave"))
                    .filter(|l| {
                        l.split(',')
                            .find_map(|kv| kv.strip_prefix("offset="))
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .is_some_and(|off| off >= target)
                    })
                    .count();
                Ok(caught_up >= replicas)
            },
        )
    }
}

/// A Redis Cluster of masters on loopback, all slots assigned, `cluster_state:ok`.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// `masters` masters with the vset module (default arguments: cold start on).
    pub fn start(masters: usize) -> Result<Self, HarnessError> {
        Self::start_with(masters, RedisOptions::new())
    }

    /// `masters` masters started with `opts` plus the cluster settings.
    pub fn start_with(masters: usize, opts: RedisOptions) -> Result<Self, HarnessError> {
        let masters = masters.max(1);
        let opts = opts
            .config("cluster-enabled", "yes")
            .config("cluster-config-file", "nodes.conf")
            .config("cluster-node-timeout", "5000");
        let nodes = (0..masters)
            .map(|_| RedisServer::start(opts.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let cmd_err = |what: &str| {
            let what = what.to_string();
            move |e: redis::RedisError| HarnessError::Command {
                what: what.clone(),
                detail: e.to_string(),
            }
        };
        let per_node = 16_384 / masters;
        for (i, node) in nodes.iter().enumerate() {
            let first = i * per_node;
            let last = if i + 1 == masters {
                16_383
            } else {
                first + per_node - 1
            };
            let mut con = node.client()?;
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query(&mut con)
                .map_err(cmd_err("CLUSTER ADDSLOTSRANGE"))?;
        }
        let mut first = nodes[0].client()?;
        for node in &nodes[1..] {
            let _: () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(node.port())
                .query(&mut first)
                .map_err(cmd_err("CLUSTER MEET"))?;
        }
        for node in &nodes {
            wait_until(&format!("cluster node {} to be ok", node.port()), || {
                let mut con = node.client()?;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut con)
                    .map_err(cmd_err("CLUSTER INFO"))?;
                Ok(
                    parse_info_field(&info, "cluster_state").as_deref() == Some("ok")
                        && parse_info_field(&info, "cluster_known_nodes").as_deref()
                            == Some(masters.to_string().as_str()),
                )
            })?;
        }
        Ok(Self { nodes })
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// `redis://127.0.0.1:PORT/` of every master.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node serving `key` (asks `CLUSTER KEYSLOT`, then `CLUSTER SLOTS`).
    pub fn node_for_key(&self, key: &str) -> Result<&RedisServer, HarnessError> {
        let mut con = self.nodes[0].client()?;
        let err = |e: redis::RedisError| HarnessError::Command {
            what: "CLUSTER KEYSLOT/SLOTS".into(),
            detail: e.to_string(),
        };
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut con)
            .map_err(err)?;
        let slots: Vec<(i64, i64, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut con)
            .map_err(err)?
            .into_iter()
            .filter_map(|v| match v {
                redis::Value::Array(items) if items.len() >= 3 => {
                    let lo = redis::from_redis_value::<i64>(items[0].clone()).ok()?;
                    let hi = redis::from_redis_value::<i64>(items[1].clone()).ok()?;
                    let node = match &items[2] {
                        redis::Value::Array(n) if n.len() >= 2 => (
                            redis::from_redis_value::<String>(n[0].clone()).ok()?,
                            redis::from_redis_value::<u16>(n[1].clone()).ok()?,
                        ),
                        _ => return None,
                    };
                    Some((lo, hi, node))
                }
                _ => None,
            })
            .collect();
        let port = slots
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, (_, port))| *port)
            .ok_or_else(|| HarnessError::Command {
                what: "CLUSTER SLOTS".into(),
                detail: format!("no node serves slot {slot}"),
            })?;
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .ok_or_else(|| HarnessError::Command {
                what: "CLUSTER SLOTS".into(),
                detail: format!("slot {slot} is served by unknown port {port}"),
            })
    }
}

/// `field:value` lookup in an `INFO`/`CLUSTER INFO` reply.
pub fn parse_info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        let (name, value) = line.trim_end().split_once(':')?;
        (name == field).then(|| value.to_string())
    })
}

/// Polls `cond` every 50 ms for up to 30 s.
pub fn wait_until(
    what: &str,
    mut cond: impl FnMut() -> Result<bool, HarnessError>,
) -> Result<(), HarnessError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_err = None;
    while Instant::now() < deadline {
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e.to_string()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(HarnessError::Command {
        what: format!("waiting for {what}"),
        detail: format!(
            "timed out after {}s{}",
            READY_TIMEOUT.as_secs(),
            last_err
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        ),
    })
}

/// Raw `PING` so readiness does not depend on the client library's retry policy;
/// `-LOADING` (still reading the RDB/AOF) counts as not ready.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Double-quotes a `redis.conf` argument.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
