//! `examples/python-relay/relay.py` against a real PostgreSQL (extension installed)
//! and a real redis-server (module loaded), held to the same checks as vset-relay:
//! concurrent writers converge (vset-verify finds nothing stale or orphaned), a cold
//! module gets its floor, SIGTERM in the middle of a batch finishes it, and the relay
//! rides out restarts of either server.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use vset_tests::postgres::PgCluster;
use vset_tests::process::ChildGuard;
use vset_tests::redis::{RedisOptions, RedisServer};

const SKIP_VAR: &str = "VSET_SKIP_PYTHON_EXAMPLE";

/// A running relay.py, killed on drop; its log is printed when a test fails.
struct PythonRelay {
    child: ChildGuard,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PythonRelay {
    fn spawn(pg: &PgCluster, redis: &RedisServer) -> Self {
        Self::spawn_polling_every(pg, redis, "200ms")
    }

    fn spawn_polling_every(pg: &PgCluster, redis: &RedisServer, poll: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("relay.log");
        let out = fs::File::create(&log).expect("relay log");
        let child = Command::new(python())
            .arg(example_dir("python-relay").join("relay.py"))
            .args(["--postgres", &pg.url(), "--redis", &redis.url()])
            .args(["--poll-interval", poll, "--batch-size", "50"])
            .args(["--log-level", "DEBUG"])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .expect("spawn relay.py");
        Self {
            child: ChildGuard::new("relay.py", child),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PythonRelay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- relay.py log ----\n{}", self.log());
        }
    }
}

/// Servers plus a relay that has connected and warmed the (cold) module.
fn system() -> (PgCluster, RedisServer, PythonRelay) {
    let pg = postgres_with_users();
    let redis = RedisServer::start(RedisOptions::new()).expect("start redis");
    assert_eq!(vfloor(&redis).0, 1, "a fresh module starts cold");
    let relay = PythonRelay::spawn(&pg, &redis);
    eventually("relay.py to set the floor of the cold module", || {
        vfloor(&redis).0 == 0
    });
    (pg, redis, relay)
}

#[test]
fn concurrent_writers_converge() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let (pg, redis, relay) = system();
    let url = pg.conninfo();
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("writer");
                for i in 0..150u32 {
                    let id = ((w * 7 + i * 13) % 40 + 1) as i32;
                    let name = format!("w{w}-{i}");
                    match i % 5 {
                        0 => c.execute("DELETE FROM users WHERE id = $1", &[&id]),
                        1 | 2 => c.execute(
                            "INSERT INTO users VALUES ($1, $2) \
                             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                            &[&id, &name],
                        ),
                        3 => {
                            // Two rows in one transaction (locked in id order: no
                            // deadlock between writers), and a savepoint rolled
                            // back, whose change must never reach the cache.
                            let mut t = c.transaction().expect("begin");
                            let (a, b) = (id.min(41 - id), id.max(41 - id));
                            for k in [a, b] {
                                t.execute(
                                    "INSERT INTO users VALUES ($1, $2) \
                                     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                                    &[&k, &name],
                                )
                                .expect("upsert");
                            }
                            let mut sp = t.transaction().expect("savepoint");
                            sp.execute(
                                "UPDATE users SET name = 'rolled-back' WHERE id = $1",
                                &[&a],
                            )
                            .expect("update in savepoint");
                            sp.rollback().expect("rollback to savepoint");
                            t.commit().map(|()| 1)
                        }
                        _ => c.execute("UPDATE users SET name = $2 WHERE id = $1", &[&id, &name]),
                    }
                    .expect("write");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread");
    }
    wait_drained(&pg);

    let total = assert_converged(&pg, &redis);
    // Every write came after the floor, so the relay applied each row's last change:
    // every live row is cached (none merely missing), every deleted one is absent.
    let live = live_users(&pg);
    assert!(live > 0, "the workload must leave rows behind");
    assert_eq!(total.matched, live, "every live row must be cached");
    assert!(
        !relay.log().contains("Traceback"),
        "relay.py raised:\n{}",
        relay.log()
    );
}

#[test]
fn notify_wakes_the_relay_without_waiting_for_the_poll() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    woken_without_waiting_for_the_poll(postgres_with_users(), "notify");
}

#[test]
fn a_shared_memory_wakeup_wakes_the_relay_without_waiting_for_the_poll() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    woken_without_waiting_for_the_poll(preloaded_postgres_with_users(), "shared_memory");
}

fn woken_without_waiting_for_the_poll(pg: PgCluster, wakeup: &str) {
    let redis = RedisServer::start(RedisOptions::new()).expect("start redis");
    // The first poll happens at start (it warms the module); the next one would be
    // an hour later, past the test's patience: only NOTIFY can deliver the write.
    let relay = PythonRelay::spawn_polling_every(&pg, &redis, "1h");
    eventually("relay.py to warm the module", || vfloor(&redis).0 == 0);
    // Let the relay finish its first (empty) round and go to sleep on LISTEN.
    eventually("relay.py to report it is connected", || {
        relay
            .log()
            .contains(&format!("connected (wake-up: {wakeup})"))
    });
    std::thread::sleep(Duration::from_millis(500));
    pg.execute("INSERT INTO users VALUES (7, 'notified')")
        .expect("insert");
    eventually("the woken relay to apply the insert", || {
        vget(&redis, "public.users:7").is_some_and(|v| v.contains("notified"))
    });
    // Not delivered by the reconnect after an error (whose first batch would find it).
    assert!(!relay.log().contains("retrying"), "log:\n{}", relay.log());
}

#[test]
fn sigterm_in_the_middle_of_a_batch_finishes_it_and_exits_zero() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let pg = postgres_with_users();
    let redis = RedisServer::start(RedisOptions::new()).expect("start redis");
    // Rounds only on NOTIFY, and Redis frozen only once the first (empty) round is
    // over: an idle round's VFLOOR sent to the frozen Redis would time out and leave
    // the relay reconnecting (blocked on Redis) instead of holding claimed rows.
    let mut relay = PythonRelay::spawn_polling_every(&pg, &redis, "1h");
    eventually("relay.py to finish its first (empty) round", || {
        relay.log().contains("batch: 0 claimed")
    });
    let redis_pid: i32 = redis
        .info_field("server", "process_id")
        .expect("INFO server")
        .expect("process_id")
        .parse()
        .expect("pid");

    // Freeze Redis, then commit changes: the relay claims them and blocks on Redis.
    // SAFETY: kill(2) on the redis-server this test started.
    unsafe { libc::kill(redis_pid, libc::SIGSTOP) };
    pg.execute("INSERT INTO users SELECT g, 'frozen' || g FROM generate_series(1, 10) g")
        .expect("insert");
    eventually("the relay to claim all 10 rows", || {
        let mut c = pg.client().expect("client");
        let unclaimed: i64 = c
            .query_one(
                "SELECT count(*) FROM (SELECT 1 FROM vset.outbox FOR UPDATE SKIP LOCKED) s",
                &[],
            )
            .expect("unclaimed")
            .get(0);
        unclaimed == 0 && outbox_rows(&pg) == 10
    });

    relay.child.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        relay.child.is_running(),
        "relay.py must not exit before its batch is applied"
    );
    // SAFETY: as above.
    unsafe { libc::kill(redis_pid, libc::SIGCONT) };
    let status = relay
        .child
        .terminate(PATIENCE)
        .expect("relay.py must exit by itself after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", relay.log());

    assert_eq!(outbox_rows(&pg), 0, "the batch in hand was committed");
    for id in 1..=10 {
        let cached = vget(&redis, &format!("public.users:{id}"))
            .unwrap_or_else(|| panic!("row {id} was claimed before SIGTERM and must be applied"));
        assert!(cached.contains(&format!("frozen{id}")), "{cached}");
    }
}

#[test]
fn redis_restart_without_data_gets_a_floor_and_nothing_stale() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let (pg, mut redis, relay) = system();
    pg.execute("INSERT INTO users SELECT g, 'old' || g FROM generate_series(1, 20) g")
        .expect("insert");
    wait_drained(&pg);
    assert!(vget(&redis, "public.users:20").is_some());

    // The harness runs Redis without persistence: a restart loses everything.
    redis.stop();
    redis.wipe_data().expect("wipe");
    redis.start_again().expect("restart redis");
    let version_at_restart = current_version(&pg);
    eventually(
        "relay.py to notice the cold module and set the floor",
        || vfloor(&redis).0 == 0,
    );
    assert!(
        vfloor(&redis).1 >= version_at_restart,
        "the floor must cover every version drawn before the restart"
    );

    pg.execute("UPDATE users SET name = 'new' || id WHERE id <= 10")
        .expect("update");
    wait_drained(&pg);
    let total = assert_converged(&pg, &redis);
    assert_eq!(
        total.matched, 10,
        "rows changed after the restart are cached"
    );
    assert_eq!(
        total.missing, 10,
        "rows not changed since are misses, not stale"
    );
    assert_eq!(
        relay.log().matches("redis was cold").count(),
        2,
        "one floor at the first connect, one after the restart; log:\n{}",
        relay.log()
    );
}

#[test]
fn postgres_crash_and_restart_are_ridden_out() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let (mut pg, redis, relay) = system();
    pg.kill();
    pg.restart().expect("restart postgres");
    pg.execute("INSERT INTO users VALUES (1, 'after-crash')")
        .expect("insert");
    wait_drained(&pg);
    let cached = vget(&redis, "public.users:1").expect("applied after reconnect");
    assert!(cached.contains("after-crash"), "{cached}");
    assert_converged(&pg, &redis);
    assert!(
        relay.log().contains("retrying"),
        "the relay should have logged its reconnect:\n{}",
        relay.log()
    );
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let relay_py = example_dir("python-relay").join("relay.py");
    for (args, expected) in [
        (vec![], "--postgres and --redis"),
        (
            vec!["--postgres", "x", "--redis", "y", "--batch-size", "0"],
            "must be a positive integer",
        ),
        (
            vec!["--postgres", "x", "--redis", "y", "--poll-interval", "soon"],
            "positive duration",
        ),
    ] {
        let out = Command::new(python())
            .arg(&relay_py)
            .args(&args)
            .env_remove("VSET_POSTGRES_URL")
            .env_remove("VSET_REDIS_URL")
            .output()
            .expect("run relay.py");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// The same bad-key policy as vset-relay (`tests/tests/e2e_bad_keys.rs`): a plain
/// string at a tracked key is replaced without holding back any other row; an `OOM`
/// holds the batch (nothing acked) until memory is back.
#[test]
fn one_bad_key_delays_only_itself() {
    if let Some(reason) = skip_reason(SKIP_VAR) {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let (pg, redis, relay) = system();
    let mut con = redis.client().expect("redis client");
    let _: () = redis::cmd("SET")
        .arg("public.users:3")
        .arg("from the old cache")
        .query(&mut con)
        .expect("SET");
    pg.execute("INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 200) g")
        .expect("insert");
    eventually("the outbox to drain past the foreign value", || {
        outbox_rows(&pg) == 0
    });
    assert!(vget(&redis, "public.users:3").is_some_and(|v| v.contains("user 3")));
    assert!(vget(&redis, "public.users:200").is_some_and(|v| v.contains("user 200")));
    assert!(relay.log().contains("WRONGTYPE"), "log:\n{}", relay.log());

    // Out of memory, nothing evictable: the whole server refuses writes, so the batch
    // waits (nothing acked as a miss), and is applied once memory is back.
    redis
        .config_set("maxmemory-policy", "noeviction")
        .expect("policy");
    redis.config_set("maxmemory", 1).expect("maxmemory");
    pg.execute("UPDATE users SET name = 'renamed ' || id WHERE id <= 20")
        .expect("update");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        outbox_rows(&pg),
        20,
        "nothing acked while Redis refuses every write"
    );
    redis.config_set("maxmemory", 0).expect("maxmemory 0");
    eventually("the outbox to drain once memory is back", || {
        outbox_rows(&pg) == 0
    });
    assert!(vget(&redis, "public.users:20").is_some_and(|v| v.contains("renamed 20")));
    assert!(
        relay.log().contains("OutOfMemoryError"),
        "log:\n{}",
        relay.log()
    );
    assert!(!relay.log().contains("Traceback"), "log:\n{}", relay.log());
}
