//! A private PostgreSQL cluster for one test: `initdb` into a fresh temporary folder,
//! `postgres` on a free loopback port, torn down (and the folder removed) on drop.
//!
//! ```no_run
//! use vset_tests::postgres::PgCluster;
//! let pg = PgCluster::start()?;                       // or start_with(&[("track_commit_timestamp", "on")])
//! pg.create_extension()?;                             // CREATE EXTENSION vset (needs `make install-pg`)
//! let mut c = pg.client()?;                           // sync `postgres::Client`, database `postgres`
//! c.batch_execute("CREATE TABLE t(id int primary key, v text)")?;
//! println!("{}", pg.url());                           // postgres://postgres@127.0.0.1:PORT/postgres
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What the cluster looks like
//! - Binaries: the system PostgreSQL (`$PG_CONFIG --bindir`, default Debian's
//!   `/usr/lib/postgresql/15/bin/pg_config`), so the extension must be installed there
//!   (`make install-pg`).
//! - Superuser `postgres`, `trust` authentication, database `postgres`, encoding UTF8,
//!   locale C. TCP on `127.0.0.1:<port>` only; the unix socket lives inside the
//!   private folder, so nothing collides with Debian's own cluster on 5432.
//! - `fsync=off` (and `full_page_writes=off`): tests crash the *processes*, never the
//!   machine, and the kernel page cache survives a SIGKILL, so durability across
//!   [`PgCluster::kill`] + [`PgCluster::restart`] is still real; it just makes initdb and
//!   commits fast on a shared 2-core box. `shared_buffers=32MB` so many clusters fit in
//!   parallel. Any of these can be overridden with [`PgCluster::start_with`].
//!
//! ## Running as root
//! `initdb` and `postgres` refuse to run as root. When the test process is root,
//! both are spawned with `CommandExt::uid/gid` of the `postgres` OS user (the
//! private folder is chowned to it), so the child PID *is* the postmaster (no
//! `sudo` in between) and [`PgCluster::kill`] really crashes the server. When not
//! root, everything runs as the current user.
//!
//! ## Crash, restart, stop
//! The postmaster runs in its own process group. [`PgCluster::kill`] SIGKILLs the
//! whole group (postmaster and every backend at the same instant, like a power cut
//! that keeps the disk); [`PgCluster::restart`] starts it again on the same folder and
//! port, which runs crash recovery. [`PgCluster::stop`] is a fast shutdown (SIGINT).
//! Drop does an immediate shutdown (SIGQUIT) and removes the folder.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::process::output_checked;
use crate::HarnessError;

/// How long a starting (or crash-recovering) server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a shutdown may take before the harness SIGKILLs the group.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings applied unless the caller overrides them (see the module docs for why).
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("shared_buffers", "32MB"),
    ("max_connections", "100"),
    ("log_min_messages", "warning"),
    ("log_line_prefix", "%m [%p] "),
];

/// The OS identity the server processes run as.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A running (or deliberately stopped/killed) private PostgreSQL cluster.
#[derive(Debug)]
pub struct PgCluster {
    /// Private folder: `data/` (PGDATA), the unix socket and `postgres.log`.
    dir: tempfile::TempDir,
    port: u16,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    settings: Vec<(String, String)>,
    postmaster: Option<Child>,
}

impl PgCluster {
    /// initdb + start with the default settings.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(&[])
    }

    /// initdb + start, with extra `postgresql.conf` settings passed as `-c name=value`
    /// (they override the defaults), e.g. `&[("track_commit_timestamp", "on")]`.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let bindir = pg_bindir()?;
        let run_as = run_as_identity()?;
        let dir = tempfile::Builder::new()
            .prefix("vset-pg-")
            .tempdir()
            .map_err(|source| HarnessError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        if let Some(id) = run_as {
            chown(dir.path(), id)?;
        }
        let mut merged: Vec<(String, String)> = DEFAULT_SETTINGS
            .iter()
            .filter(|(k, _)| !settings.iter().any(|(o, _)| o == k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        merged.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));

        let mut cluster = PgCluster {
            dir,
            port: free_port(),
            bindir,
            run_as,
            settings: merged,
            postmaster: None,
        };
        cluster.initdb()?;
        // Between free_port() and the postmaster's bind (initdb takes a while)
        // another process can take the port: then try another one.
        for _ in 0..2 {
            match cluster.spawn_and_wait() {
                Err(_) if cluster.log_tail(4096).contains("Address already in use") => {
                    cluster.port = free_port();
                }
                other => return other.map(|()| cluster),
            }
        }
        cluster.spawn_and_wait()?;
        Ok(cluster)
    }

    /// A hot standby of `primary`: `pg_basebackup -R` (streaming replication, the
    /// primary's settings), started and accepting read-only connections.
    pub fn standby_of(primary: &PgCluster) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("vset-pg-standby-")
            .tempdir()
            .map_err(|source| HarnessError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        if let Some(id) = primary.run_as {
            chown(dir.path(), id)?;
        }
        let mut standby = PgCluster {
            dir,
            port: free_port(),
            bindir: primary.bindir.clone(),
            run_as: primary.run_as,
            settings: primary.settings.clone(),
            postmaster: None,
        };
        let mut cmd = standby.command("pg_basebackup");
        cmd.arg("-D").arg(standby.data_dir()).args([
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "--no-sync",
        ]);
        let program = format!("{}/pg_basebackup", standby.bindir.display());
        output_checked(&mut cmd, program, "pg_basebackup")?;
        standby.spawn_and_wait()?;
        Ok(standby)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection URL for database `postgres` as superuser `postgres`, accepted by
    /// tokio-postgres/postgres, libpq/psycopg and node-pg alike.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// Connection URL for another database of this cluster.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }

    /// A `postgres::Client` connection string in key=value form (same target as [`Self::url`]).
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The private folder (PGDATA is `data/` inside it, the socket and log sit beside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PGDATA.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server log (stderr of the postmaster; appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The folder holding the PostgreSQL binaries in use (`psql`, `pg_dump`, ...).
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// PID of the postmaster, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.postmaster.as_ref().map(Child::id)
    }

    /// True while the postmaster has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.postmaster.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// A new synchronous client connected to database `postgres` as `postgres`.
    pub fn client(&self) -> Result<postgres::Client, HarnessError> {
        postgres::Client::connect(&self.conninfo(), postgres::NoTls).map_err(|e| {
            HarnessError::Command {
                what: format!("connecting to postgres on port {}", self.port),
                detail: e.to_string(),
            }
        })
    }

    /// `CREATE EXTENSION IF NOT EXISTS vset` in database `postgres`.
    pub fn create_extension(&self) -> Result<(), HarnessError> {
        let mut c = self.client()?;
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS vset")
            .map_err(|e| HarnessError::Command {
                what: "CREATE EXTENSION vset".into(),
                detail: format!(
                    "{} (is the extension installed into this PostgreSQL? run `make install-pg`)",
                    db_error_text(&e)
                ),
            })
    }

    /// Runs SQL statements (no result) on a fresh connection.
    pub fn execute(&self, sql: &str) -> Result<(), HarnessError> {
        let mut c = self.client()?;
        c.batch_execute(sql).map_err(|e| HarnessError::Command {
            what: format!("SQL `{}`", sql.chars().take(200).collect::<String>()),
            detail: db_error_text(&e),
        })
    }

    /// Crash: SIGKILL the postmaster and all its backends at once. The data folder is
    /// kept; [`Self::restart`] runs crash recovery on it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.postmaster.take() {
            // Backends call setsid(), so the process group holds only the postmaster:
            // find them while they are still its children. Left alone they would exit
            // on their own once they notice, but a new postmaster started before that
            // refuses to run ("pre-existing shared memory block is still in use").
            let backends = children_of(child.id());
            // SAFETY: kill(2) on the process group we created (pgid = postmaster pid)
            // and on the postmaster's own children.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
                for &pid in &backends {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            self.wait_group_gone(child.id());
            wait_processes_gone(&backends);
        }
    }

    /// Fast shutdown (SIGINT: abort open transactions, checkpoint, exit).
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.shutdown(libc::SIGINT)
    }

    /// Starts the server again on the same folder and port (stopping it first if it
    /// is still running). After [`Self::kill`] this is crash recovery.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        if self.is_running() {
            self.stop()?;
        }
        self.postmaster = None;
        // A backend forked in the instant before kill() (so not found) may still hold
        // the old shared memory: the new postmaster then exits at once; try again.
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Err(_)
                    if Instant::now() < deadline
                        && self
                            .log_tail(1024)
                            .contains("pre-existing shared memory block") =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// The last `max_bytes` of the server log (for assertion messages).
    pub fn log_tail(&self, max_bytes: u64) -> String {
        tail(&self.log_path(), max_bytes)
    }

    fn shutdown(&mut self, signal: i32) -> Result<(), HarnessError> {
        let Some(mut child) = self.postmaster.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.wait_group_gone(child.id());
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above, the whole group.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.wait();
        Err(HarnessError::Command {
            what: "stopping postgres".into(),
            detail: format!("no exit within {}s, SIGKILLed", STOP_TIMEOUT.as_secs()),
        })
    }

    /// Backends outlive a SIGKILLed postmaster for a moment; a restart must wait for
    /// them, or the new postmaster finds the old shared memory still attached.
    fn wait_group_gone(&self, pgid: u32) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            // SAFETY: signal 0 only checks for existence.
            let alive = unsafe { libc::kill(-(pgid as i32), 0) } == 0;
            if !alive {
                return;
            }
            // SAFETY: the group is ours; finish off stragglers.
            unsafe {
                libc::kill(-(pgid as i32), libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.env("LC_ALL", "C")
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .current_dir(self.dir.path());
        if let Some(id) = self.run_as {
            cmd.uid(id.uid).gid(id.gid);
        }
        cmd
    }

    fn initdb(&self) -> Result<(), HarnessError> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        let program = format!("{}/initdb", self.bindir.display());
        output_checked(&mut cmd, program, "initdb").map(drop)
    }

    fn spawn_and_wait(&mut self) -> Result<(), HarnessError> {
        let log_path = self.log_path();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| HarnessError::Io {
                path: log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| HarnessError::Io {
            path: log_path.clone(),
            source,
        })?;
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ));
        for (k, v) in &self.settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        // Own process group: kill() takes every backend down with the postmaster, and
        // a Ctrl-C on the test runner does not hit the server before Drop does.
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            what: format!("{}/postgres", self.bindir.display()),
            source,
        })?;
        self.postmaster = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                self.postmaster = None;
                return Err(HarnessError::NotReady {
                    what: "postgres (exited)".into(),
                    secs: 0,
                    log: log_path.clone(),
                    tail: self.log_tail(4000),
                });
            }
            if let Ok(mut c) = postgres::Client::connect(&self.conninfo(), postgres::NoTls) {
                if c.simple_query("SELECT 1").is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(HarnessError::NotReady {
                    what: "postgres".into(),
                    secs: READY_TIMEOUT.as_secs(),
                    log: log_path,
                    tail: self.log_tail(4000),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After a kill() without restart, the small SysV interlock segment would outlive
    /// the test; PostgreSQL records its id in postmaster.pid (line 7: key and id).
    fn remove_stale_shm(&self) {
        let Ok(text) = fs::read_to_string(self.data_dir().join("postmaster.pid")) else {
            return;
        };
        let Some(line) = text.lines().nth(6) else {
            return;
        };
        let Some(id) = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<i32>().ok())
        else {
            return;
        };
        // SAFETY: IPC_RMID on a segment id this cluster created; failure is harmless.
        unsafe {
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.postmaster.is_some() {
            // Immediate shutdown: the data is thrown away anyway; SIGQUIT still lets
            // the postmaster release its shared memory.
            let _ = self.shutdown(libc::SIGQUIT);
        }
        self.remove_stale_shm();
    }
}

/// The message of a PostgreSQL error, including the server's own text.
pub fn db_error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// `$PG_CONFIG --bindir` (default Debian's PostgreSQL 15).
fn pg_bindir() -> Result<PathBuf, HarnessError> {
    let pg_config = std::env::var_os("PG_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin/pg_config"));
    let out = output_checked(
        Command::new(&pg_config).arg("--bindir"),
        format!(
            "{} (install postgresql-server-dev-15: `make deps`, or set PG_CONFIG)",
            pg_config.display()
        ),
        &format!("{} --bindir", pg_config.display()),
    )?;
    Ok(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

/// Makes `path` acceptable as the server's `ssl_key_file`: owned by the OS user the
/// servers run as (the `postgres` user when the tests run as root, else the current
/// user) with mode 0600. PostgreSQL refuses a key that group or others may read
/// unless root owns it, and it must be able to read it itself. The folder holding
/// it must be searchable by that user too (e.g. mode 0755).
pub fn hand_key_to_server(path: &Path) -> Result<(), HarnessError> {
    let io = |source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(id) = run_as_identity()? {
        std::os::unix::fs::chown(path, Some(id.uid), Some(id.gid)).map_err(io)?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)
}

/// `None` when we are not root (run as ourselves); the `postgres` user when root.
fn run_as_identity() -> Result<Option<RunAs>, HarnessError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").map_err(|e| HarnessError::Command {
        what: "user name".into(),
        detail: e.to_string(),
    })?;
    // SAFETY: getpwnam returns a pointer to static storage or NULL; we copy the two
    // integers out immediately and tests do not call getpwnam concurrently elsewhere.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(HarnessError::Command {
            what: "finding the `postgres` OS user".into(),
            detail: "running as root, and PostgreSQL refuses root; install postgresql-15 (`make deps`), which creates the `postgres` user".into(),
        });
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

fn chown(path: &Path, id: RunAs) -> Result<(), HarnessError> {
    std::os::unix::fs::chown(path, Some(id.uid), Some(id.gid)).map_err(|source| {
        HarnessError::Io {
            path: path.to_path_buf(),
            source,
        }
    })?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|source| {
        HarnessError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn tail(path: &Path, max_bytes: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Live child processes of `parent` (from /proc; zombies excluded).
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            proc_stat(pid).is_some_and(|(state, ppid)| state != 'Z' && ppid == parent as i32)
        })
        .collect()
}

/// State and parent of a process, from `/proc/<pid>/stat` (the command name may hold
/// spaces and parentheses, so fields are read after its last `)`).
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Waits until none of `pids` is alive (gone or a zombie, which holds no memory).
fn wait_processes_gone(pids: &[i32]) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline
        && pids
            .iter()
            .any(|&pid| proc_stat(pid).is_some_and(|(state, _)| state != 'Z'))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crash must take the backends down too (they setsid() out of the postmaster's
    /// process group), so crash recovery can start at once.
    #[test]
    fn kill_takes_the_backends_down_and_restart_recovers() {
        let mut pg = PgCluster::start().expect("start");
        let clients: Vec<_> = (0..3).map(|_| pg.client().expect("client")).collect();
        let postmaster = pg.postmaster.as_ref().expect("running").id();
        let backends = children_of(postmaster);
        assert!(
            backends.len() >= 3,
            "client backends + auxiliaries: {backends:?}"
        );
        pg.kill();
        let alive: Vec<_> = backends
            .iter()
            .filter(|&&pid| proc_stat(pid).is_some_and(|(state, _)| state != 'Z'))
            .collect();
        assert!(alive.is_empty(), "still running after kill(): {alive:?}");
        pg.restart().expect("crash recovery");
        let mut c = pg.client().expect("client after restart");
        c.simple_query("SELECT 1").expect("query after restart");
        drop(clients);
    }

    /// The harness itself: start, query, crash, recover, stop, restart.
    #[test]
    fn start_kill_restart_keeps_committed_data() {
        let mut pg = PgCluster::start().expect("start");
        assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));
        pg.execute("CREATE TABLE t(id int primary key); INSERT INTO t VALUES (1),(2)")
            .expect("create");
        pg.kill();
        assert!(!pg.is_running());
        assert!(
            pg.client().is_err(),
            "a killed server must refuse connections"
        );
        pg.restart().expect("restart after crash");
        let mut c = pg.client().expect("client");
        let n: i64 = c
            .query_one("SELECT count(*) FROM t", &[])
            .expect("count")
            .get(0);
        assert_eq!(n, 2);
        drop(c);
        pg.stop().expect("stop");
        assert!(pg.client().is_err());
        pg.restart().expect("restart after stop");
        assert_eq!(
            pg.client()
                .expect("client")
                .query_one("SELECT count(*) FROM t", &[])
                .expect("count")
                .get::<_, i64>(0),
            2
        );
    }

    #[test]
    fn start_with_overrides_settings() {
        let pg = PgCluster::start_with(&[("track_commit_timestamp", "on")]).expect("start");
        let v: String = pg
            .client()
            .expect("client")
            .query_one("SHOW track_commit_timestamp", &[])
            .expect("show")
            .get(0);
        assert_eq!(v, "on");
    }
}
