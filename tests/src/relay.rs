//! Relay processes for end-to-end tests: the real binary (or any other relay that
//! takes the same `--postgres URL --redis URL` flags), spawned with a log file and
//! killed when dropped.
//!
//! The command is pluggable, so one convergence test can run against the Rust
//! relay and against, e.g., `examples/python-relay/relay.py`:
//!
//! - [`RelayCommand::from_env`]: `VSET_E2E_RELAY` (a command line split on
//!   whitespace, e.g. `python3 examples/python-relay/relay.py`) if set, else the
//!   built `vset-relay` binary ([`crate::paths::relay_binary`]);
//! - [`RelayCommand::new`] / [`RelayCommand::env`]: anything else.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::paths;
use crate::process::ChildGuard;
use crate::HarnessError;

/// How to start a relay: a program, arguments placed before the connection flags,
/// and extra environment variables.
#[derive(Debug, Clone)]
pub struct RelayCommand {
    program: PathBuf,
    leading_args: Vec<String>,
    env: Vec<(String, String)>,
    /// Inherited environment variables the relay must not see.
    env_removed: Vec<String>,
    /// True for the Rust `vset-relay` (tests use this to add Rust-only flags such as
    /// `--metrics` or `--redis-cluster`).
    is_reference: bool,
}

impl RelayCommand {
    /// The built `vset-relay` binary.
    pub fn reference() -> Result<Self, HarnessError> {
        Ok(Self {
            program: paths::relay_binary()?,
            leading_args: Vec::new(),
            env: vec![("RUST_LOG".into(), "info".into())],
            env_removed: Vec::new(),
            is_reference: true,
        })
    }

    /// `VSET_E2E_RELAY` (whitespace-separated command line; relative paths are taken
    /// from the workspace root) if set, else [`Self::reference`].
    pub fn from_env() -> Result<Self, HarnessError> {
        match std::env::var("VSET_E2E_RELAY") {
            Ok(line) if !line.trim().is_empty() => {
                let mut words = line.split_whitespace().map(str::to_string);
                let program = words.next().unwrap_or_default();
                let args: Vec<String> = words
                    .map(|w| {
                        let p = paths::workspace_root().join(&w);
                        if !w.starts_with('-') && p.exists() {
                            p.display().to_string()
                        } else {
                            w
                        }
                    })
                    .collect();
                Ok(Self::new(program, args))
            }
            _ => Self::reference(),
        }
    }

    /// Any relay: `program leading_args… --postgres URL --redis URL extra…`.
    pub fn new(program: impl Into<PathBuf>, leading_args: Vec<String>) -> Self {
        Self {
            program: program.into(),
            leading_args,
            env: Vec::new(),
            env_removed: Vec::new(),
            is_reference: false,
        }
    }

    /// Adds an environment variable for the relay process.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Keeps an environment variable of the test process from the relay (variables
    /// set with [`Self::env`] still apply).
    pub fn env_remove(mut self, name: impl Into<String>) -> Self {
        self.env_removed.push(name.into());
        self
    }

    pub fn is_reference(&self) -> bool {
        self.is_reference
    }

    pub fn describe(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.leading_args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// Where a relay writes to.
#[derive(Debug, Clone)]
pub enum RedisEndpoint {
    /// `--redis URL`
    Standalone(String),
    /// `--redis-cluster URL,URL,…` (reference relay only)
    Cluster(Vec<String>),
}

/// One running relay process; SIGKILLed when dropped.
#[derive(Debug)]
pub struct RelayProcess {
    name: String,
    guard: ChildGuard,
    log: PathBuf,
}

impl RelayProcess {
    /// Starts `command` with `--postgres postgres_url`, the Redis flag(s) and
    /// `extra` arguments; stderr and stdout go to `log_dir/<name>.log`.
    pub fn spawn(
        name: &str,
        command: &RelayCommand,
        postgres_url: &str,
        redis: &RedisEndpoint,
        extra: &[&str],
        log_dir: &Path,
    ) -> Result<Self, HarnessError> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| HarnessError::Io {
                path: log.clone(),
                source,
            })?;
        let err = out.try_clone().map_err(|source| HarnessError::Io {
            path: log.clone(),
            source,
        })?;
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.leading_args)
            .arg("--postgres")
            .arg(postgres_url);
        match redis {
            RedisEndpoint::Standalone(url) => {
                cmd.arg("--redis").arg(url);
            }
            RedisEndpoint::Cluster(urls) => {
                cmd.arg("--redis-cluster").arg(urls.join(","));
            }
        }
        for name in &command.env_removed {
            cmd.env_remove(name);
        }
        cmd.args(extra)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .current_dir(paths::workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            what: command.describe(),
            source,
        })?;
        Ok(Self {
            name: name.to_string(),
            guard: ChildGuard::new(name, child),
            log,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.guard.pid()
    }

    /// SIGKILL: the relay dies wherever it is, mid-batch included.
    pub fn kill(&mut self) {
        self.guard.kill();
    }

    /// SIGTERM and wait; `Some(status)` if it exited by itself within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.guard.terminate(timeout)
    }

    pub fn signal(&self, signal: i32) {
        self.guard.signal(signal);
    }

    pub fn is_running(&mut self) -> bool {
        self.guard.is_running()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `max` characters of the log (for assertion messages).
    pub fn log_tail(&self, max: usize) -> String {
        let log = self.log();
        let start = log.len().saturating_sub(max);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(log.len());
        format!("--- {} ---\n{}", self.name, &log[start..])
    }
}

/// `GET /metrics` from a relay started with `--metrics addr`.
pub fn scrape_metrics(addr: &str) -> Result<String, HarnessError> {
    use std::io::{Read, Write};
    let io = |source| HarnessError::Io {
        path: PathBuf::from(format!("http://{addr}/metrics")),
        source,
    };
    let mut s = std::net::TcpStream::connect(addr).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").map_err(io)?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io)?;
    Ok(out)
}

/// The value of an unlabelled sample (`name value`) in Prometheus text.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

/// Polls until the relay's metrics endpoint answers (the relay is up).
pub fn wait_metrics(addr: &str, timeout: Duration) -> Result<String, HarnessError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match scrape_metrics(addr) {
            Ok(t) if t.starts_with("HTTP/1.0 200") => return Ok(t),
            Ok(_) | Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(t) => {
                return Err(HarnessError::Command {
                    what: format!("scraping {addr}"),
                    detail: t,
                })
            }
            Err(e) => return Err(e),
        }
    }
}
