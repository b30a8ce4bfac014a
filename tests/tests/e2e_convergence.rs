//! End to end, no faults: writers on many connections, one, two and four relays;
//! after the writers stop and the outbox drains, Redis equals PostgreSQL key by key
//! (payload and version of the last change; deleted rows absent or tombstoned).
//!
//! Runs against the reference relay, or against any relay with the same flags via
//! `VSET_E2E_RELAY="python3 examples/python-relay/relay.py"`.

use std::time::Duration;

use vset_tests::ports::free_port;
use vset_tests::relay::{metric_value, scrape_metrics, wait_metrics};
use vset_tests::stack::Stack;
use vset_tests::workload::WorkloadSpec;

const KEYS: i32 = 200;
const WRITE_FOR: Duration = Duration::from_secs(3);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

fn converge_with_relays(relays: usize) {
    converge_with(relays, &[]);
}

/// `relays` relay processes, each given `extra` flags (reference relay only).
fn converge_with(relays: usize, extra: &[&str]) {
    let mut stack = Stack::standalone(KEYS).expect("stack");
    let reference = stack.relay_command.is_reference();
    let mut metrics = Vec::new();
    for _ in 0..relays {
        if reference {
            let addr = format!("127.0.0.1:{}", free_port());
            let mut args = vec!["--metrics", addr.as_str(), "--batch-size", "100"];
            args.extend_from_slice(extra);
            stack.spawn_relay(&args).expect("relay");
            metrics.push(addr);
        } else {
            stack.spawn_relay(&[]).expect("relay");
        }
    }
    for addr in &metrics {
        wait_metrics(addr, Duration::from_secs(20)).expect("relay up");
    }
    if reference {
        // Every claim loop holds its own PostgreSQL session.
        let workers: usize = extra
            .iter()
            .position(|a| *a == "--workers")
            .and_then(|i| extra.get(i + 1))
            .map_or(1, |n| n.parse().expect("--workers N"));
        let mut c = stack.pg.client().expect("client");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let sessions: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vset-relay'",
                    &[],
                )
                .expect("pg_stat_activity")
                .get(0);
            if sessions as usize >= relays * workers {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{relays} relay(s) × {workers} worker(s) should hold as many sessions, saw {sessions}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let writers = stack.workload(&WorkloadSpec {
        writers: 8,
        keys: KEYS,
        pace: None,
        seed: relays as u64,
    });
    std::thread::sleep(WRITE_FOR);
    // A stalled machine may need longer than WRITE_FOR for a meaningful workload.
    assert!(
        writers.wait_for_commits(300, Duration::from_secs(30)),
        "the workload must actually write"
    );
    writers.stop();
    stack.drain(DRAIN_TIMEOUT).expect("drained");

    let report = stack.check().expect("check");
    report.assert_exact(&format!("{relays} relay(s)\n{}", stack.relay_logs(2000)));
    assert!(
        report.exact > 0 && report.deleted > 0,
        "workload must leave both live and deleted keys: {report:?}"
    );

    if reference {
        // Every captured change was acknowledged exactly once across all relays:
        // SKIP LOCKED shares the work, nothing is acked twice or lost.
        let captured: i64 = stack
            .pg
            .client()
            .expect("client")
            .query_one("SELECT count(*) FROM public.vset_e2e_audit", &[])
            .expect("count")
            .get(0);
        // A relay counts a batch just after its COMMIT, so the last batch may be
        // committed (outbox drained) a moment before it is counted.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut acked = 0.0;
            let mut per_relay = Vec::new();
            for addr in &metrics {
                let text = scrape_metrics(addr).expect("scrape");
                let a = metric_value(&text, "vset_relay_acked_total").expect("acked metric");
                let errors = text
                    .lines()
                    .filter(|l| l.starts_with("vset_relay_errors_total"))
                    .collect::<Vec<_>>();
                assert!(
                    errors.is_empty(),
                    "no errors expected without faults: {errors:?}"
                );
                per_relay.push(a);
                acked += a;
            }
            if acked as i64 == captured {
                break;
            }
            assert!(
                acked as i64 <= captured && std::time::Instant::now() < deadline,
                "acked per relay {per_relay:?} must add up to the {captured} captured changes"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn many_writers_one_relay_converge_exactly() {
    converge_with_relays(1);
}

/// One process with four claim loops (`--workers 4`): they share the outbox through
/// SKIP LOCKED like separate relays, and their acks still add up exactly.
#[test]
fn one_relay_with_four_workers_converges_exactly() {
    let relay = vset_tests::relay::RelayCommand::from_env().expect("relay command");
    if !relay.is_reference() {
        eprintln!("SKIPPED: --workers is a flag of the reference relay");
        return;
    }
    converge_with(1, &["--workers", "4"]);
}

/// The checker itself must be able to fail: plant a stale value and a missing key
/// behind the relay's back and make sure both are reported.
#[test]
fn the_checker_reports_planted_stale_and_missing_keys() {
    let mut stack = Stack::standalone(20).expect("stack");
    stack.spawn_relay(&[]).expect("relay");
    stack.drain(DRAIN_TIMEOUT).expect("drained");
    let report = stack.check().expect("check");
    report.assert_exact("seeded rows");
    assert_eq!(report.exact, 20);

    let mut con = stack.redis().client().expect("redis");
    let stale: i64 = redis::cmd("VSET")
        .arg("public.users:1")
        .arg(u64::MAX / 2)
        .arg("{\"id\":1,\"name\":\"stale\"}")
        .query(&mut con)
        .expect("VSET");
    assert_eq!(stale, 1);
    let _: i64 = redis::cmd("DEL")
        .arg("public.users:2")
        .query(&mut con)
        .expect("DEL");
    let report = stack.check().expect("check");
    assert_eq!(report.stale.len(), 1, "{report:?}");
    assert_eq!(report.stale[0].expected.cache_key, "public.users:1");
    assert_eq!(report.misses.len(), 1, "{report:?}");
    assert_eq!(report.misses[0].expected.cache_key, "public.users:2");
    assert_eq!(report.exact, 18);
}

#[test]
fn two_relays_share_the_outbox_and_converge() {
    converge_with_relays(2);
}

#[test]
fn four_relays_share_the_outbox_and_converge() {
    converge_with_relays(4);
}

/// The relay wakes up on the extension's NOTIFY, not only on its poll timer: with a
/// 60 s poll interval, a committed change must still reach Redis at once.
#[test]
fn a_notification_wakes_the_relay_long_before_its_poll_interval() {
    let stack = Stack::standalone(10).expect("stack");
    wakes_long_before_the_poll_interval(stack, "notify");
}

/// The same with vset preloaded: the relay waits on `vset.wait_for_commit` (shared
/// memory), and no NOTIFY is sent at all.
#[test]
fn a_shared_memory_wakeup_wakes_the_relay_long_before_its_poll_interval() {
    let stack = Stack::standalone_preloaded(10).expect("stack");
    wakes_long_before_the_poll_interval(stack, "shared_memory");
}

fn wakes_long_before_the_poll_interval(mut stack: Stack, wakeup: &str) {
    stack
        .spawn_relay(&["--poll-interval", "60s"])
        .expect("relay");
    // Seeding happened after the relay was up; give it its first round.
    stack.drain(Duration::from_secs(20)).expect("seed drained");
    let mut c = stack.pg.client().expect("client");
    let mode: String = c
        .query_one("SELECT vset.wakeup()", &[])
        .expect("wakeup")
        .get(0);
    assert_eq!(mode, wakeup);
    c.batch_execute("LISTEN vset").expect("listen");
    let mut cache = stack.cache_reader().expect("reader");
    for round in 0..3 {
        let name = format!("woken {round}");
        c.execute(
            "UPDATE public.users SET name = $1, rev = rev + 1 WHERE id = 5",
            &[&name],
        )
        .expect("update");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = cache.vget_many(&["public.users:5"]).expect("VGET");
            if got[0].0.as_deref().is_some_and(|p| p.contains(&name)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: change not applied within 20 s with a 60 s poll interval ({wakeup})\n{}",
                stack.relay_logs(2000)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    c.batch_execute("SELECT 1")
        .expect("read pending notifications");
    let notified = c.notifications().len();
    assert_eq!(
        notified > 0,
        wakeup == "notify",
        "NOTIFY is sent only without preload ({notified} seen)"
    );
    let waiters: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vset-relay-wait'",
            &[],
        )
        .expect("activity")
        .get(0);
    assert_eq!(
        waiters > 0,
        wakeup == "shared_memory",
        "a wait_for_commit session exists only with the shared-memory wake-up"
    );
    stack
        .check()
        .expect("check")
        .assert_exact("after woken updates");
}

/// Bad input gets a clear error and changes nothing: the relay refuses to start
/// (exit status 2) before it connects anywhere.
#[test]
fn bad_flags_are_refused_with_exit_status_2() {
    let relay = vset_tests::relay::RelayCommand::from_env().expect("relay");
    if !relay.is_reference() {
        eprintln!(
            "SKIPPED: exit status 2 on bad flags is the reference relay's contract, not {}'s",
            relay.describe()
        );
        return;
    }
    let bin = vset_tests::paths::relay_binary().expect("relay binary");
    for (args, mentions) in [
        (
            vec!["--postgres", "host=127.0.0.1 port=1", "--redis", "notaurl"],
            "--redis",
        ),
        (
            vec![
                "--postgres",
                "port=notaport",
                "--redis",
                "redis://127.0.0.1:1",
            ],
            "--postgres",
        ),
        (
            vec![
                "--postgres",
                "host=x",
                "--redis",
                "redis://h:1",
                "--batch-size",
                "0",
            ],
            "--batch-size",
        ),
        (vec!["--postgres", "host=x"], "--redis"),
    ] {
        let out = std::process::Command::new(&bin)
            .args(&args)
            .output()
            .expect("run relay");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(mentions),
            "{args:?} must name {mentions}: {stderr}"
        );
    }
}

/// The relay authenticates as an ACL user that may run only what a relay needs
/// (`VSET`, `VDEL`, `VFLOOR`, `DEL` on the table's keys), given in the URL.
#[test]
fn relay_as_a_restricted_acl_user_converges() {
    let mut stack = Stack::standalone(50).expect("stack");
    let port = stack.redis().port();
    let mut admin = stack.redis().client().expect("redis");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("relay")
        .arg("on")
        .arg(">s3cret-pw")
        .arg("~public.users:*")
        .arg("-@all")
        .arg("+vset")
        .arg("+vdel")
        .arg("+vfloor")
        .arg("+del")
        .arg("+ping")
        .arg("+hello")
        .arg("+client")
        .query(&mut admin)
        .expect("ACL SETUSER");
    // The user really is restricted: a plain SET is refused.
    let mut as_relay = redis::Client::open(format!("redis://relay:s3cret-pw@127.0.0.1:{port}/"))
        .expect("url")
        .get_connection()
        .expect("connect as relay");
    let set: redis::RedisResult<()> = redis::cmd("SET")
        .arg("public.users:1")
        .arg("x")
        .query(&mut as_relay);
    assert!(set.is_err(), "the ACL user must not be able to SET");

    let url = format!("redis://relay:s3cret-pw@127.0.0.1:{port}/");
    stack
        .spawn_relay_to(&vset_tests::relay::RedisEndpoint::Standalone(url), &[])
        .expect("relay");
    let writers = stack.workload(&WorkloadSpec {
        writers: 4,
        keys: 50,
        pace: None,
        seed: 99,
    });
    assert!(writers.wait_for_commits(200, Duration::from_secs(20)));
    writers.stop();
    stack.drain(DRAIN_TIMEOUT).expect("drained");
    stack
        .check()
        .expect("check")
        .assert_exact(&format!("ACL user relay\n{}", stack.relay_logs(2000)));
}
