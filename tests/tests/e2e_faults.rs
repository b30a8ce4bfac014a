//! End to end, with faults injected while writers run: relays SIGKILLed (also
//! provably in the middle of a batch), Redis restarted without its data (cold
//! start), PostgreSQL crashed and restarted, and a relay stopped with SIGTERM.
//! Every test ends with the key-by-key comparison of Redis and PostgreSQL.

use std::time::{Duration, Instant};

use vset_tests::stack::Stack;
use vset_tests::workload::WorkloadSpec;

const KEYS: i32 = 200;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

fn spec(seed: u64) -> WorkloadSpec {
    WorkloadSpec {
        writers: 6,
        keys: KEYS,
        pace: None,
        seed,
    }
}

fn redis_pid(stack: &mut Stack) -> i32 {
    let info = stack
        .redis()
        .info_field("server", "process_id")
        .expect("INFO");
    info.and_then(|p| p.parse().ok()).expect("redis process_id")
}

/// Sessions of `vset.claim` callers that sit inside a transaction: a relay between
/// claim and COMMIT.
fn relays_inside_a_batch(stack: &Stack) -> i64 {
    stack
        .pg
        .client()
        .expect("client")
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE state = 'idle in transaction' AND query ILIKE '%vset.claim%'",
            &[],
        )
        .expect("pg_stat_activity")
        .get(0)
}

#[test]
fn relay_sigkilled_mid_batch_and_restarted_converges() {
    let mut stack = Stack::standalone(KEYS).expect("stack");
    // A long poll interval: an idle poll makes the relay re-check Redis for a cold
    // start before its next claim, and on a frozen Redis that check (not a batch)
    // is where it would hang. Writers keep it busy through NOTIFY instead.
    stack
        .spawn_relay(&["--batch-size", "50", "--poll-interval", "60s"])
        .expect("relay");
    let writers = stack.workload(&spec(7));

    // 1. Provably mid-batch: freeze Redis, so the relay is stuck after claiming
    //    (its transaction open, its pipeline sent), then SIGKILL it.
    assert!(writers.wait_for_commits(200, Duration::from_secs(20)));
    let pid = redis_pid(&mut stack);
    // SAFETY: kill(2) on the redis-server this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while relays_inside_a_batch(&stack) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let inside = relays_inside_a_batch(&stack);
    stack.relays[0].kill();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(
        inside, 1,
        "the relay must have been inside a batch when killed"
    );

    // The dead session's claim is rolled back: its rows are claimable again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while relays_inside_a_batch(&stack) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(relays_inside_a_batch(&stack), 0);
    stack
        .respawn_relay(0, &["--batch-size", "50"])
        .expect("respawn");

    // 2. Then at arbitrary moments while it drains.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        stack.relays[0].kill();
        std::thread::sleep(Duration::from_millis(100));
        stack
            .respawn_relay(0, &["--batch-size", "50"])
            .expect("respawn");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(writers.wait_for_commits(300, Duration::from_secs(30)));
    writers.stop();
    stack.drain(DRAIN_TIMEOUT).expect("drained");
    stack
        .check()
        .expect("check")
        .assert_exact(&format!("after SIGKILLs\n{}", stack.relay_logs(2000)));
}

#[test]
fn redis_restarted_without_data_is_cold_then_floored_and_never_stale() {
    let mut stack = Stack::standalone(KEYS).expect("stack");
    stack.spawn_relay(&[]).expect("relay");
    let writers = stack.workload(&spec(11));
    assert!(writers.wait_for_commits(300, Duration::from_secs(20)));

    // Crash Redis and bring it back with nothing: no RDB, no AOF, no floors.
    stack.redis().kill();
    stack.redis().wipe_data().expect("wipe");
    let version_before_restart: i64 = stack
        .pg
        .client()
        .expect("client")
        .query_one("SELECT vset.current_version()", &[])
        .expect("current_version")
        .get(0);
    stack.redis().start_again().expect("restart redis");

    // The relay notices, sets VFLOOR, and keeps going while writers write.
    stack
        .wait_warm(Duration::from_secs(30))
        .expect("relay ends the cold start");
    let commits_at_warm = writers.commits();
    assert!(writers.wait_for_commits(commits_at_warm + 300, Duration::from_secs(20)));
    let stats = writers.stop();
    stack.drain(DRAIN_TIMEOUT).expect("drained");

    let mut con = stack.redis().client().expect("redis");
    let floor_reply: Vec<redis::Value> = redis::cmd("VFLOOR").query(&mut con).expect("VFLOOR");
    let floor = match floor_reply.get(3) {
        Some(redis::Value::Int(n)) => *n as u64,
        other => panic!("VFLOOR floor field: {other:?}"),
    };
    assert!(
        floor >= version_before_restart as u64,
        "the floor ({floor}) must cover every version drawn before the restart ({version_before_restart})"
    );

    let report = stack.check().expect("check");
    eprintln!("cold restart, floor {floor}: {}", report.summary());
    if stack.relay_command.is_reference() {
        assert!(
            stack.relays[0].log().contains("redis module was cold"),
            "the relay must log the cold start it ended"
        );
    }
    report.assert_no_stale_misses_below(
        floor,
        &format!(
            "after a cold restart ({stats:?})\n{}",
            stack.relay_logs(2000)
        ),
    );
    assert!(
        report.exact > 0,
        "keys written after the restart must be cached: {report:?}"
    );
}

#[test]
fn postgres_crash_and_restart_relay_reconnects_and_converges() {
    let mut stack = Stack::standalone(KEYS).expect("stack");
    stack.spawn_relay(&[]).expect("relay");
    let writers = stack.workload(&spec(13));
    assert!(writers.wait_for_commits(300, Duration::from_secs(20)));

    stack.pg.kill();
    std::thread::sleep(Duration::from_millis(500));
    stack.pg.restart().expect("crash recovery");

    let after = writers.commits();
    assert!(
        writers.wait_for_commits(after + 300, Duration::from_secs(30)),
        "writers must resume after the restart"
    );
    let stats = writers.stop();
    stack.drain(DRAIN_TIMEOUT).expect("drained");
    let mut still_running = true;
    for r in &mut stack.relays {
        still_running &= r.is_running();
    }
    assert!(still_running, "the relay must survive a PostgreSQL restart");
    stack.check().expect("check").assert_exact(&format!(
        "after a PostgreSQL crash ({stats:?})\n{}",
        stack.relay_logs(2000)
    ));
}

#[test]
fn sigterm_finishes_the_batch_in_hand_and_exits_zero() {
    let mut stack = Stack::standalone(KEYS).expect("stack");
    stack.spawn_relay(&["--batch-size", "20"]).expect("relay");
    let writers = stack.workload(&spec(17));
    assert!(writers.wait_for_commits(300, Duration::from_secs(20)));
    let status = stack.relays[0].terminate(Duration::from_secs(15));
    let stats = writers.stop();
    let status = status.expect("the relay must exit by itself on SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        stack.relay_logs(2000)
    );
    if stack.relay_command.is_reference() {
        let log = stack.relays[0].log();
        assert!(
            log.contains("shutting down after the batch in hand")
                && log.contains("claim loop stopped"),
            "graceful path expected in the log:\n{log}"
        );
    }
    // Nothing the stopped relay claimed is lost: a new relay finishes the job.
    stack.respawn_relay(0, &[]).expect("respawn");
    stack.drain(DRAIN_TIMEOUT).expect("drained");
    stack.check().expect("check").assert_exact(&format!(
        "after SIGTERM ({stats:?})\n{}",
        stack.relay_logs(2000)
    ));
}
