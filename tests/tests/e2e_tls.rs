//! The relay over TLS to both of its servers, with certificate verification on.
//!
//! Redis listens on a `tls-port` as well as on its plaintext port (which the harness
//! and this test's own reads use), PostgreSQL runs with `ssl=on`. Each server's
//! certificate (for `IP:127.0.0.1`) is signed by its own throwaway CA, made at test
//! time with the `openssl` CLI. The relay is given `rediss://127.0.0.1:<tls-port>/`
//! (a port that speaks TLS only) and `postgres://…?sslmode=require`, and trusts a CA
//! only through OpenSSL's `SSL_CERT_FILE`. What this proves:
//!
//! 1. **It works over TLS.** Trusting both CAs, the relay ends the module's cold
//!    start, then applies an INSERT, an UPDATE and a DELETE exactly: `VGET
//!    WITHVERSION` answers the row's payload at the version of its last change, the
//!    deleted row a tombstone at the delete's version. It counts 4 applied, 4 acked
//!    and no error. Both of its PostgreSQL sessions (claim loop, backlog gauge) show
//!    `ssl = true` in `pg_stat_ssl`, while this test's own plaintext session shows
//!    `false`; its Redis connection is on the TLS port.
//! 2. **It verifies both certificates.** With a change waiting in the outbox, a relay
//!    that trusts neither CA, one that trusts only Redis' CA and one that trusts only
//!    PostgreSQL's apply nothing for several seconds (the key stays absent, the row
//!    stays in the outbox, nothing applied or acked) and count errors of the kind of
//!    the server they cannot verify (`vset_relay_errors_total{kind=…}`), logging
//!    OpenSSL's "certificate verify failed".
//! 3. **Nothing was lost.** A relay trusting both CAs then applies that change.
//!
//! Reference relay only (`VSET_E2E_RELAY` is ignored): the trust store is configured
//! the OpenSSL way, and the checks read the relay's metrics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vset_tests::convergence::parse_vget;
use vset_tests::ports::free_port;
use vset_tests::postgres::{hand_key_to_server, PgCluster};
use vset_tests::redis::{RedisOptions, RedisServer};
use vset_tests::relay::{
    metric_value, scrape_metrics, wait_metrics, RedisEndpoint, RelayCommand, RelayProcess,
};
use vset_tests::tls::{bundle, ServerCert, TestCa};

/// A liveness bound for anything that should happen (a healthy run needs a small
/// fraction of it, even on a loaded 2-core machine).
const PATIENCE: Duration = Duration::from_secs(20);
/// How long relays that cannot verify a certificate are watched applying nothing.
const QUIET: Duration = Duration::from_secs(3);

/// The servers of this test and what a relay needs to reach them.
struct TlsStack {
    pg: PgCluster,
    redis: RedisServer,
    tls_port: u16,
    redis_ca: TestCa,
    pg_ca: TestCa,
    both_cas: PathBuf,
    logs: tempfile::TempDir,
    _pki: tempfile::TempDir,
}

impl TlsStack {
    fn start() -> Self {
        let pki = tempfile::Builder::new()
            .prefix("vset-tls-")
            .tempdir()
            .expect("tempdir");
        let redis_ca = TestCa::create(pki.path(), "redis").expect("redis CA");
        let redis_cert = redis_ca.issue_server_cert("redis").expect("redis cert");
        let pg_ca = TestCa::create(pki.path(), "postgres").expect("postgres CA");
        let pg_cert = pg_ca.issue_server_cert("postgres").expect("postgres cert");
        let both_cas = pki.path().join("both-cas.pem");
        bundle(&both_cas, &[&redis_ca.cert, &pg_ca.cert]).expect("bundle");
        // PostgreSQL runs as the `postgres` user when the tests run as root: it must
        // reach its files, and accepts its key only if nobody else can read it.
        make_readable(pki.path(), 0o755);
        for cert in [&redis_ca.cert, &pg_ca.cert, &pg_cert.cert, &both_cas] {
            make_readable(cert, 0o644);
        }
        hand_key_to_server(&pg_cert.key).expect("postgres key ownership");

        let (redis, tls_port) = start_redis_with_tls(&redis_cert, &redis_ca);
        let pg = PgCluster::start_with(&[
            ("ssl", "on"),
            ("ssl_cert_file", &pg_cert.cert.display().to_string()),
            ("ssl_key_file", &pg_cert.key.display().to_string()),
        ])
        .expect("postgres with ssl=on");
        pg.create_extension().expect("CREATE EXTENSION vset");
        pg.execute(
            "CREATE TABLE public.users (id int PRIMARY KEY, name text NOT NULL);
             SELECT vset.track('public.users');",
        )
        .expect("create and track users");
        let logs = tempfile::Builder::new()
            .prefix("vset-tls-logs-")
            .tempdir()
            .expect("tempdir");
        Self {
            pg,
            redis,
            tls_port,
            redis_ca,
            pg_ca,
            both_cas,
            logs,
            _pki: pki,
        }
    }

    /// A relay over TLS to both servers that trusts exactly the CAs in `trust`
    /// (`None`: no test CA at all), serving metrics on the returned address.
    fn relay(&self, name: &str, trust: Option<&Path>) -> (RelayProcess, String) {
        let mut command = RelayCommand::reference()
            .expect("vset-relay is built (cargo build -p vset-relay)")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if let Some(file) = trust {
            command = command.env("SSL_CERT_FILE", file.display().to_string());
        }
        let metrics = format!("127.0.0.1:{}", free_port());
        let relay = RelayProcess::spawn(
            name,
            &command,
            &format!("{}?sslmode=require", self.pg.url()),
            &RedisEndpoint::Standalone(format!("rediss://127.0.0.1:{}/", self.tls_port)),
            &[
                "--metrics",
                &metrics,
                "--poll-interval",
                "100ms",
                "--backoff-max",
                "300ms",
            ],
            self.logs.path(),
        )
        .expect("spawn vset-relay");
        wait_metrics(&metrics, PATIENCE).expect("the relay serves its metrics");
        (relay, metrics)
    }

    /// `VGET key WITHVERSION` on the plaintext port.
    fn vget(&self, key: &str) -> (Option<String>, u64) {
        let mut con = self.redis.client().expect("redis client");
        let reply: redis::Value = redis::cmd("VGET")
            .arg(key)
            .arg("WITHVERSION")
            .query(&mut con)
            .expect("VGET");
        parse_vget(&reply).expect("VGET reply")
    }

    /// Runs one statement on `client` and returns the version vset drew for it
    /// (`currval` of its sequence is per session).
    fn write(client: &mut postgres::Client, sql: &str) -> u64 {
        let n = client.execute(sql, &[]).expect(sql);
        assert_eq!(n, 1, "{sql} must change one row");
        let v: i64 = client
            .query_one("SELECT currval('vset.version_seq')", &[])
            .expect("currval")
            .get(0);
        v as u64
    }

    fn outbox_rows(&self) -> i64 {
        self.pg
            .client()
            .expect("client")
            .query_one("SELECT count(*) FROM vset.outbox", &[])
            .expect("count outbox")
            .get(0)
    }

    fn is_warm(&self) -> bool {
        let mut con = self.redis.client().expect("redis client");
        let reply: Vec<redis::Value> = redis::cmd("VFLOOR").query(&mut con).expect("VFLOOR");
        reply.get(1) == Some(&redis::Value::Int(0))
    }

    /// (sessions named `vset-relay`, all of them on TLS) from `pg_stat_ssl`.
    fn relay_sessions_on_tls(&self) -> (i64, Option<bool>) {
        let row = self
            .pg
            .client()
            .expect("client")
            .query_one(
                "SELECT count(*), bool_and(s.ssl)
                   FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                  WHERE a.application_name = 'vset-relay'",
                &[],
            )
            .expect("pg_stat_ssl");
        (row.get(0), row.get(1))
    }

    /// Clients connected to the TLS port (`laddr` of `CLIENT LIST`), asked over the
    /// plaintext port.
    fn redis_clients_on_tls_port(&self) -> usize {
        let mut con = self.redis.client().expect("redis client");
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut con)
            .expect("CLIENT LIST");
        let tls_addr = format!("laddr=127.0.0.1:{}", self.tls_port);
        list.lines()
            .filter(|l| l.split_whitespace().any(|f| f == tls_addr))
            .count()
    }
}

/// Redis with the module (cold start on, as in production) on a plaintext port and
/// a TLS port. The harness retries a taken plaintext port; a taken TLS port is
/// retried here.
fn start_redis_with_tls(cert: &ServerCert, ca: &TestCa) -> (RedisServer, u16) {
    let mut last_error = None;
    for _ in 0..3 {
        let tls_port = free_port();
        let opts = RedisOptions::new()
            .config("tls-port", tls_port.to_string())
            .config("tls-cert-file", cert.cert.display().to_string())
            .config("tls-key-file", cert.key.display().to_string())
            .config("tls-ca-cert-file", ca.cert.display().to_string())
            .config("tls-auth-clients", "no");
        match RedisServer::start(opts) {
            Ok(server) => return (server, tls_port),
            Err(e) => last_error = Some(e),
        }
    }
    panic!("redis-server with a tls-port: {last_error:?}");
}

/// The end of a relay's log, for assertion messages.
fn logs(relay: &RelayProcess) -> impl Fn() -> String + '_ {
    || relay.log_tail(3000)
}

fn make_readable(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Polls `cond` every 50 ms until it holds; panics with `what` and `context()`
/// after [`PATIENCE`].
fn eventually(what: &str, context: impl Fn() -> String, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {PATIENCE:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `vset_relay_errors_total{kind="<kind>"}` (0 when the relay has none of that kind).
fn errors_of_kind(metrics: &str, kind: &str) -> f64 {
    metric_value(
        metrics,
        &format!("vset_relay_errors_total{{kind=\"{kind}\"}}"),
    )
    .unwrap_or(0.0)
}

/// The relay's metrics, or an empty text while it cannot be scraped.
fn scrape(addr: &str) -> String {
    scrape_metrics(addr).unwrap_or_default()
}

fn counter(metrics: &str, name: &str) -> f64 {
    metric_value(metrics, name).unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"))
}

#[test]
fn relay_over_tls_to_redis_and_postgres_verifies_both_certificates() {
    let started = Instant::now();
    let stack = TlsStack::start();
    let payload = |id: i32, name: &str| format!(r#"{{"id":{id},"name":"{name}"}}"#);

    // 1. Trusting both CAs: cold start ended, then INSERT, UPDATE, DELETE applied.
    let (mut trusted, trusted_metrics) = stack.relay("trusted", Some(&stack.both_cas));
    eventually(
        "the relay to end the cold start over TLS",
        logs(&trusted),
        || stack.is_warm(),
    );
    let mut c = stack.pg.client().expect("client");
    let v_insert = TlsStack::write(&mut c, "INSERT INTO users VALUES (1, 'ann')");
    eventually("the insert in Redis", logs(&trusted), || {
        stack.vget("public.users:1") == (Some(payload(1, "ann")), v_insert)
    });
    let v_update = TlsStack::write(&mut c, "UPDATE users SET name = 'anna' WHERE id = 1");
    let v_insert_2 = TlsStack::write(&mut c, "INSERT INTO users VALUES (2, 'bob')");
    let v_delete = TlsStack::write(&mut c, "DELETE FROM users WHERE id = 2");
    assert!(v_insert < v_update && v_update < v_insert_2 && v_insert_2 < v_delete);
    eventually("the update and the delete in Redis", logs(&trusted), || {
        stack.vget("public.users:1") == (Some(payload(1, "anna")), v_update)
            && stack.vget("public.users:2") == (None, v_delete)
    });
    // Counted just after each batch's COMMIT: poll.
    eventually(
        "the relay to count 4 applied and 4 acked",
        || scrape(&trusted_metrics),
        || {
            let m = scrape(&trusted_metrics);
            metric_value(&m, "vset_relay_acked_total") == Some(4.0)
        },
    );
    let m = scrape(&trusted_metrics);
    assert_eq!(counter(&m, "vset_relay_applied_total"), 4.0, "{m}");
    assert_eq!(counter(&m, "vset_relay_rejected_total"), 0.0, "{m}");
    assert_eq!(counter(&m, "vset_relay_cold_starts_total"), 1.0, "{m}");
    assert!(
        !m.contains("vset_relay_errors_total{"),
        "no error expected over TLS:\n{m}\n{}",
        trusted.log_tail(3000)
    );
    assert_eq!(stack.outbox_rows(), 0);

    // Where the bytes went: PostgreSQL sessions on TLS, Redis on the TLS port.
    eventually(
        "both relay sessions (claim loop, backlog gauge) on TLS in pg_stat_ssl",
        || format!("{:?}", stack.relay_sessions_on_tls()),
        || stack.relay_sessions_on_tls() == (2, Some(true)),
    );
    let own_ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("own pg_stat_ssl")
        .get(0);
    assert!(
        !own_ssl,
        "this test's session is plaintext: pg_stat_ssl must tell the two apart"
    );
    eventually(
        "the relay's connection on Redis' TLS port",
        || {
            format!(
                "{} client(s) on the TLS port",
                stack.redis_clients_on_tls_port()
            )
        },
        || stack.redis_clients_on_tls_port() == 1,
    );
    trusted.kill();
    eventually(
        "the killed relay's sessions to end",
        || format!("{:?}", stack.relay_sessions_on_tls()),
        || stack.relay_sessions_on_tls().0 == 0,
    );

    // 2. A change waits; relays that cannot verify a certificate must not apply it.
    let v_pending = TlsStack::write(&mut c, "INSERT INTO users VALUES (3, 'cy')");
    assert_eq!(stack.outbox_rows(), 1);
    let untrusting = [
        // (name, trusted CA file, the error kind it must count)
        ("trusts-nothing", None, "postgres"),
        (
            "trusts-redis-only",
            Some(stack.redis_ca.cert.as_path()),
            "postgres",
        ),
        (
            "trusts-postgres-only",
            Some(stack.pg_ca.cert.as_path()),
            "redis",
        ),
    ];
    let relays: Vec<(RelayProcess, String, &str)> = untrusting
        .iter()
        .map(|(name, trust, kind)| {
            let (relay, metrics) = stack.relay(name, *trust);
            (relay, metrics, *kind)
        })
        .collect();
    for (relay, metrics, kind) in &relays {
        eventually(
            &format!("{} to count {kind} errors (retrying)", relay.name()),
            || format!("{}\n{}", scrape(metrics), relay.log_tail(3000)),
            || errors_of_kind(&scrape(metrics), kind) >= 2.0,
        );
    }
    let quiet_until = Instant::now() + QUIET;
    while Instant::now() < quiet_until {
        assert_eq!(
            stack.vget("public.users:3"),
            (None, 0),
            "a relay that cannot verify a certificate applied a change\n{}",
            relays
                .iter()
                .map(|(r, _, _)| r.log_tail(2000))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stack.outbox_rows(), 1, "the change must still be waiting");
    for (relay, metrics, kind) in &relays {
        let m = scrape(metrics);
        let other = if *kind == "postgres" {
            "redis"
        } else {
            "postgres"
        };
        assert!(errors_of_kind(&m, kind) >= 2.0, "{}: {m}", relay.name());
        assert_eq!(
            errors_of_kind(&m, other),
            0.0,
            "{}: only {kind} must fail:\n{m}",
            relay.name()
        );
        assert_eq!(counter(&m, "vset_relay_applied_total"), 0.0, "{m}");
        assert_eq!(counter(&m, "vset_relay_acked_total"), 0.0, "{m}");
        let log = relay.log();
        assert!(
            log.contains("certificate verify failed"),
            "{} must log why it cannot connect:\n{}",
            relay.name(),
            relay.log_tail(3000)
        );
    }
    drop(relays);

    // 3. The waiting change was not lost: a relay trusting both CAs applies it.
    let (again, again_metrics) = stack.relay("trusted-again", Some(&stack.both_cas));
    eventually("the waiting change in Redis", logs(&again), || {
        stack.vget("public.users:3") == (Some(payload(3, "cy")), v_pending)
    });
    eventually(
        "the relay to count 1 applied",
        || scrape(&again_metrics),
        || metric_value(&scrape(&again_metrics), "vset_relay_applied_total") == Some(1.0),
    );
    assert_eq!(stack.outbox_rows(), 0);
    eprintln!("e2e_tls: {:.1}s", started.elapsed().as_secs_f64());
}
