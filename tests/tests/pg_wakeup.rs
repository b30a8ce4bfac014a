//! The shared-memory wake-up (`vset` in `shared_preload_libraries`), on private
//! PostgreSQL clusters started by the harness (needs `make install-pg`):
//!
//! - a relay's `vset.wait_for_commit(seen, timeout)` returns at once for a commit
//!   that landed between its empty claim and its wait (the missed-wake-up race),
//!   is woken by a commit while it sleeps, times out when nothing commits, and can
//!   be cancelled;
//! - only transactions that captured something count; rolled back ones do not;
//! - no NOTIFY is sent by default (`vset.notify = auto`), one is with `on`;
//! - tracked writes work inside `PREPARE TRANSACTION` / `COMMIT PREPARED`, and are
//!   refused there only when NOTIFY is asked for;
//! - without preload, `vset.wakeup()` says `notify` and `wait_for_commit` refuses.

use std::thread;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use vset_tests::postgres::{db_error_text, PgCluster};

fn preloaded() -> (PgCluster, Client) {
    let pg = PgCluster::start_with(&[
        ("shared_preload_libraries", "vset"),
        ("max_prepared_transactions", "4"),
    ])
    .expect("start postgres with vset preloaded");
    pg.create_extension()
        .expect("CREATE EXTENSION vset (run `make install-pg` first)");
    let mut c = pg.client().expect("client");
    c.batch_execute(
        "CREATE TABLE t(id int PRIMARY KEY, v int NOT NULL);
         CREATE TABLE untracked(id int PRIMARY KEY);
         SELECT vset.track('t');",
    )
    .expect("setup");
    (pg, c)
}

fn counter(c: &mut Client) -> i64 {
    // A seen value the counter can never hold returns at once with the counter.
    c.query_one("SELECT vset.wait_for_commit(-1, 0)", &[])
        .expect("wait_for_commit")
        .get(0)
}

fn wait(c: &mut Client, seen: i64, timeout_ms: i32) -> (i64, Duration) {
    let start = Instant::now();
    let now: i64 = c
        .query_one("SELECT vset.wait_for_commit($1, $2)", &[&seen, &timeout_ms])
        .expect("wait_for_commit")
        .get(0);
    (now, start.elapsed())
}

#[test]
fn a_commit_between_an_empty_claim_and_the_wait_is_not_missed() {
    let (_pg, mut writer) = preloaded();
    let mut relay = _pg.client().expect("relay");
    assert_eq!(
        relay
            .query_one("SELECT vset.wakeup()", &[])
            .expect("wakeup")
            .get::<_, String>(0),
        "shared_memory"
    );
    let seen = counter(&mut relay);
    // The relay claims and finds nothing...
    relay.batch_execute("BEGIN").expect("begin");
    let claimed = relay
        .query("SELECT * FROM vset.claim(100)", &[])
        .expect("claim");
    assert!(claimed.is_empty());
    relay.batch_execute("COMMIT").expect("commit");
    // ...a writer commits before the relay starts waiting...
    writer
        .batch_execute("INSERT INTO t VALUES (1, 1)")
        .expect("insert");
    // ...and the wait returns at once instead of sleeping through its timeout.
    let (now, took) = wait(&mut relay, seen, 10_000);
    assert_eq!(now, seen + 1);
    assert!(took < Duration::from_secs(2), "returned after {took:?}");
    relay.batch_execute("BEGIN").expect("begin");
    assert_eq!(
        relay
            .query("SELECT * FROM vset.claim(100)", &[])
            .expect("claim")
            .len(),
        1
    );
    relay.batch_execute("COMMIT").expect("commit");
}

#[test]
fn a_sleeping_relay_is_woken_by_a_commit_and_only_by_a_capturing_one() {
    let (pg, mut writer) = preloaded();
    let url = pg.url();
    let mut relay = pg.client().expect("relay");
    let seen = counter(&mut relay);

    // Nothing commits: the wait times out and returns the same value.
    let (now, took) = wait(&mut relay, seen, 300);
    assert_eq!(now, seen);
    assert!(
        took >= Duration::from_millis(290),
        "timed out after {took:?}"
    );

    // Commits that captured nothing do not wake it: untracked table, a rolled
    // back capture, an UPDATE that changed no captured column.
    writer
        .batch_execute("INSERT INTO t VALUES (1, 1)")
        .expect("insert");
    let seen = counter(&mut relay);
    writer
        .batch_execute(
            "INSERT INTO untracked VALUES (1);
             BEGIN; INSERT INTO t VALUES (2, 2); ROLLBACK;
             UPDATE t SET v = v WHERE id = 1 AND false;",
        )
        .expect("non-capturing writes");
    let (now, _) = wait(&mut relay, seen, 300);
    assert_eq!(now, seen, "no capturing commit, no wake-up");

    // A commit while the relay sleeps (10 s timeout) wakes it promptly.
    let sleeper = thread::spawn(move || {
        let mut c = Client::connect(&url, postgres::NoTls).expect("sleeper");
        wait(&mut c, seen, 10_000)
    });
    thread::sleep(Duration::from_millis(300));
    let committed = Instant::now();
    writer
        .batch_execute("BEGIN; INSERT INTO t VALUES (3, 3); INSERT INTO t VALUES (4, 4); COMMIT")
        .expect("insert");
    let (now, _) = sleeper.join().expect("sleeper thread");
    assert_eq!(now, seen + 1, "one transaction, one increment");
    assert!(
        committed.elapsed() < Duration::from_secs(2),
        "woken {:?} after the commit",
        committed.elapsed()
    );
}

#[test]
fn a_waiting_relay_can_be_cancelled() {
    let (pg, _writer) = preloaded();
    let url = pg.url();
    let mut admin = pg.client().expect("admin");
    let seen = counter(&mut admin);
    let sleeper = thread::spawn(move || {
        let mut c = Client::connect(&url, postgres::NoTls).expect("sleeper");
        c.batch_execute("SET application_name = 'vset-sleeper'")
            .expect("name");
        let start = Instant::now();
        let got = c.query_one("SELECT vset.wait_for_commit($1, 60000)", &[&seen]);
        (got.map(|r| r.get::<_, i64>(0)), start.elapsed())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE application_name = 'vset-sleeper' AND wait_event_type = 'Extension'",
                &[],
            )
            .expect("activity")
            .get(0);
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the sleeper never waited");
        thread::sleep(Duration::from_millis(20));
    }
    admin
        .batch_execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'vset-sleeper'",
        )
        .expect("cancel");
    let (got, took) = sleeper.join().expect("sleeper thread");
    let err = got.expect_err("a cancelled wait is an error");
    assert!(
        db_error_text(&err).contains("canceling statement due to user request"),
        "{}",
        db_error_text(&err)
    );
    assert!(took < Duration::from_secs(10), "cancelled after {took:?}");
}

fn notifications_after(listener: &mut Client, writer: &mut Client, sql: &str) -> usize {
    writer.batch_execute(sql).expect("write");
    thread::sleep(Duration::from_millis(300));
    listener.batch_execute("SELECT 1").expect("poll");
    let mut n = listener.notifications();
    let mut it = n.timeout_iter(Duration::from_millis(300));
    let mut count = 0;
    while let Ok(Some(_)) = it.next() {
        count += 1;
    }
    count
}

#[test]
fn no_notify_by_default_when_preloaded_one_when_asked() {
    let (pg, mut writer) = preloaded();
    let mut listener = pg.client().expect("listener");
    listener.batch_execute("LISTEN vset").expect("listen");
    assert_eq!(
        notifications_after(&mut listener, &mut writer, "INSERT INTO t VALUES (1, 1)"),
        0,
        "vset.notify = auto with preload: no NOTIFY, no commit lock"
    );
    assert_eq!(
        notifications_after(
            &mut listener,
            &mut writer,
            "SET vset.notify = on; INSERT INTO t VALUES (2, 2)"
        ),
        1
    );
    assert_eq!(
        writer
            .query_one("SELECT vset.wakeup()", &[])
            .expect("wakeup")
            .get::<_, String>(0),
        "shared_memory"
    );
}

#[test]
fn tracked_writes_work_in_two_phase_commit_without_notify() {
    let (pg, mut writer) = preloaded();
    let mut relay = pg.client().expect("relay");
    let seen = counter(&mut relay);
    writer
        .batch_execute(
            "BEGIN; INSERT INTO t VALUES (1, 1); UPDATE t SET v = 2 WHERE id = 1;
             PREPARE TRANSACTION 'vset_2pc'",
        )
        .expect("PREPARE TRANSACTION with tracked writes");
    let waiting = |c: &mut Client| -> i64 {
        c.query_one("SELECT count(*) FROM vset.outbox", &[])
            .expect("count")
            .get(0)
    };
    assert_eq!(waiting(&mut relay), 0, "not committed yet");
    writer
        .batch_execute("COMMIT PREPARED 'vset_2pc'")
        .expect("COMMIT PREPARED");
    assert_eq!(waiting(&mut relay), 2);
    assert_eq!(counter(&mut relay), seen, "picked up by the relay's poll");
    // With NOTIFY asked for, PostgreSQL refuses to prepare, as it does for any NOTIFY.
    let err = writer
        .batch_execute(
            "SET vset.notify = on; BEGIN; INSERT INTO t VALUES (3, 3); PREPARE TRANSACTION 'vset_2pc_n'",
        )
        .expect_err("NOTIFY and PREPARE");
    assert!(
        db_error_text(&err).contains("NOTIFY"),
        "{}",
        db_error_text(&err)
    );
}

#[test]
fn without_preload_relays_are_told_to_listen() {
    let pg = PgCluster::start().expect("start postgres");
    pg.create_extension().expect("CREATE EXTENSION vset");
    let mut c = pg.client().expect("client");
    assert_eq!(
        c.query_one("SELECT vset.wakeup()", &[])
            .expect("wakeup")
            .get::<_, String>(0),
        "notify"
    );
    let err = c
        .query_one("SELECT vset.wait_for_commit(0, 10)", &[])
        .expect_err("not preloaded");
    assert!(
        db_error_text(&err).contains("needs vset in shared_preload_libraries"),
        "{}",
        db_error_text(&err)
    );
    c.batch_execute("SET vset.notify = off").expect("off");
    assert_eq!(
        c.query_one("SELECT vset.wakeup()", &[])
            .expect("wakeup")
            .get::<_, String>(0),
        "poll"
    );
    for bad in [
        "SELECT vset.wait_for_commit(0, -1)",
        "SELECT vset.wait_for_commit(0, NULL)",
    ] {
        let err = c.query_one(bad, &[]).expect_err(bad);
        assert!(
            db_error_text(&err).contains("timeout_ms must be between 0 and 3600000"),
            "{}",
            db_error_text(&err)
        );
    }
}

/// The counter is per database: a tracked commit in another database neither wakes
/// nor tells this database's waiters anything.
#[test]
fn commits_in_another_database_do_not_wake_this_ones_relays() {
    let (pg, mut writer) = preloaded();
    let here: u32 = writer
        .query_one(
            "SELECT oid FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .expect("oid")
        .get(0);
    // A database whose slot (oid % 64) differs from this one's.
    let mut other_name = String::new();
    for i in 0..3 {
        let name = format!("other{i}");
        writer
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let oid: u32 = writer
            .query_one("SELECT oid FROM pg_database WHERE datname = $1", &[&name])
            .expect("oid")
            .get(0);
        if oid % 64 != here % 64 {
            other_name = name;
            break;
        }
    }
    assert!(!other_name.is_empty(), "no database in another slot");
    let mut other = Client::connect(&pg.url_for(&other_name), postgres::NoTls).expect("other");
    other
        .batch_execute(
            "CREATE EXTENSION vset; CREATE TABLE t(id int PRIMARY KEY, v int NOT NULL); SELECT vset.track('t');",
        )
        .expect("other database tracked");
    let mut relay = pg.client().expect("relay");
    let seen = counter(&mut relay);
    other
        .batch_execute("INSERT INTO t VALUES (1, 1)")
        .expect("commit in the other database");
    let (now, took) = wait(&mut relay, seen, 500);
    assert_eq!(now, seen, "not counted here");
    assert!(took >= Duration::from_millis(490), "not woken ({took:?})");
    writer
        .batch_execute("INSERT INTO t VALUES (1, 1)")
        .expect("commit here");
    assert_eq!(wait(&mut relay, seen, 500).0, seen + 1);
}
