//! The private servers of one measurement and the relay processes.
//!
//! PostgreSQL runs with fsync on (production-like) unless a measurement asks
//! otherwise: see the latency module for why its default is off.

use std::time::Duration;

use vset_tests::postgres::PgCluster;
use vset_tests::redis::{RedisOptions, RedisServer};
use vset_tests::relay::{wait_metrics, RedisEndpoint, RelayCommand, RelayProcess};

use crate::BenchError;

pub const USERS_DDL: &str = "CREATE TABLE public.users (
    id int PRIMARY KEY, name text NOT NULL, email text, rev int NOT NULL DEFAULT 0)";

pub struct BenchStack {
    pub pg: PgCluster,
    pub redis: RedisServer,
    pub relays: Vec<(RelayProcess, String)>,
    logs: tempfile_dir::Dir,
}

/// A scratch folder for relay logs (removed on drop).
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl BenchStack {
    /// PostgreSQL with `users` tracked, and Redis with the module.
    /// `redis_config`: extra redis.conf lines.
    pub fn start(redis_config: &[(&str, &str)], fsync: bool) -> Result<Self, BenchError> {
        let on_off = if fsync { "on" } else { "off" };
        // vset preloaded: relays wait on vset.wait_for_commit and no NOTIFY is sent,
        // so tracked commits group-commit like any others (the deployment default).
        let pg = PgCluster::start_with(&[
            ("fsync", on_off),
            ("full_page_writes", on_off),
            ("shared_buffers", "256MB"),
            ("shared_preload_libraries", "vset"),
        ])?;
        pg.create_extension()?;
        pg.execute(USERS_DDL)?;
        pg.execute("SELECT vset.track('public.users')")?;
        let mut opts = RedisOptions::new();
        for (k, v) in redis_config {
            opts = opts.config(*k, *v);
        }
        let redis = RedisServer::start(opts)?;
        let logs = std::env::temp_dir().join(format!("vset-bench-{}", std::process::id()));
        std::fs::create_dir_all(&logs)
            .map_err(|e| BenchError::Run(format!("{}: {e}", logs.display())))?;
        Ok(Self {
            pg,
            redis,
            relays: Vec::new(),
            logs: tempfile_dir::Dir(logs),
        })
    }

    /// Starts a relay with `--metrics` on a free port; waits until it serves them.
    pub fn spawn_relay(&mut self, extra: &[String]) -> Result<(), BenchError> {
        let addr = format!("127.0.0.1:{}", vset_tests::ports::free_port());
        let mut args: Vec<&str> = vec!["--metrics", &addr];
        args.extend(extra.iter().map(String::as_str));
        let relay = RelayProcess::spawn(
            &format!("relay-{}", self.relays.len()),
            &RelayCommand::reference()?.env("RUST_LOG", "warn"),
            &self.pg.url(),
            &RedisEndpoint::Standalone(self.redis.url()),
            &args,
            &self.logs.0,
        )?;
        wait_metrics(&addr, Duration::from_secs(20))?;
        self.relays.push((relay, addr));
        Ok(())
    }

    /// Waits until Redis left cold state (a relay set VFLOOR).
    pub fn wait_warm(&self) -> Result<(), BenchError> {
        let mut con = self.redis.client()?;
        for _ in 0..600 {
            let v: Vec<redis::Value> = redis::cmd("VFLOOR").query(&mut con)?;
            if v.get(1) == Some(&redis::Value::Int(0)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(BenchError::Run(
            "redis stayed cold: no relay set VFLOOR".into(),
        ))
    }

    /// Inserts users 1..=`n` in one statement: one captured change per row.
    pub fn insert_users(&self, n: i32) -> Result<(), BenchError> {
        self.pg.client()?.execute(
            "INSERT INTO public.users (id, name, email)
             SELECT g, 'user ' || g, 'user' || g || '@example.com' FROM generate_series(1, $1) g",
            &[&n],
        )?;
        Ok(())
    }

    /// Sum of a counter over every relay.
    pub fn relay_counter(&self, name: &str) -> Result<f64, BenchError> {
        let mut total = 0.0;
        for (_, addr) in &self.relays {
            let text = vset_tests::relay::scrape_metrics(addr)?;
            total += vset_tests::relay::metric_value(&text, name).unwrap_or(0.0);
        }
        Ok(total)
    }

    /// Redis' own CPU seconds (user + system) from `INFO cpu`.
    pub fn redis_cpu(&self) -> Result<f64, BenchError> {
        let mut total = 0.0;
        for field in ["used_cpu_user", "used_cpu_sys"] {
            total += self
                .redis
                .info_field("cpu", field)?
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        }
        Ok(total)
    }

    pub fn stop_relays(&mut self) {
        for (mut r, _) in self.relays.drain(..) {
            r.terminate(Duration::from_secs(10));
        }
    }
}
