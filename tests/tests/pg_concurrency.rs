//! The `vset` extension under real concurrency, on a private PostgreSQL cluster
//! started by the harness as an unprivileged user (needs `make install-pg`).
//!
//! - `same_keys_from_16_connections`: 16 connections update, delete and re-insert
//!   the same 50 keys. Then, for every key, the highest-version outbox record must
//!   carry the final committed row (or be a `del` for a deleted row), and versions
//!   per key must increase in commit order. Commit order is read from PostgreSQL
//!   itself: `track_commit_timestamp = on` and `pg_xact_commit_timestamp(xmin)` of
//!   each outbox row (the outbox is not drained during the run, so every record
//!   is still there with its writing transaction's xmin).
//! - NOTIFY: exactly one per transaction that captured something, none otherwise,
//!   savepoints included; rollback leaves no record; relay privileges.
//! - `pg_dump` and restore keep what is tracked, the outbox and the sequence.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vset_tests::postgres::PgCluster;

const WRITERS: usize = 16;
const KEYS: i32 = 50;
const RUN_FOR: Duration = Duration::from_secs(6);

/// One outbox record: (version, op, payload, commit timestamp in µs).
type Record = (i64, String, Option<String>, i64);

fn setup(pg: &PgCluster) -> Client {
    pg.create_extension()
        .expect("CREATE EXTENSION vset (run `make install-pg` first)");
    let mut c = pg.client().expect("client");
    c.batch_execute(
        "CREATE TABLE hot(id int PRIMARY KEY, v bigint NOT NULL, writer int NOT NULL, note text);
         SELECT vset.track('hot', columns => ARRAY['id', 'v', 'writer']);",
    )
    .expect("create + track");
    c
}

/// True for errors a writer should retry (deadlocks between multi-key transactions).
fn retryable(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            || *c == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// One writer: random single- and two-key transactions over the hot keys.
fn writer(url: String, id: i32, stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) {
    let mut c = Client::connect(&url, postgres::NoTls).expect("writer connect");
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + id as u64);
    while !stop.load(Ordering::Relaxed) {
        let keys: Vec<i32> = (0..rng.random_range(1..=2))
            .map(|_| rng.random_range(0..KEYS))
            .collect();
        let ops: Vec<u32> = keys.iter().map(|_| rng.random_range(0..10)).collect();
        let result = (|| -> Result<(), postgres::Error> {
            let mut tx = c.transaction()?;
            for (k, op) in keys.iter().zip(&ops) {
                match op {
                    0..=4 => {
                        tx.execute(
                            "UPDATE hot SET v = v + 1, writer = $2 WHERE id = $1",
                            &[k, &id],
                        )?;
                    }
                    5 | 6 => {
                        tx.execute("DELETE FROM hot WHERE id = $1", &[k])?;
                    }
                    7 => {
                        // Re-insert, or overwrite through the UPDATE path.
                        tx.execute(
                            "INSERT INTO hot VALUES ($1, 0, $2) ON CONFLICT (id) DO UPDATE SET v = hot.v + 100, writer = $2",
                            &[k, &id],
                        )?;
                    }
                    8 => {
                        tx.execute(
                            "INSERT INTO hot VALUES ($1, 0, $2) ON CONFLICT (id) DO NOTHING",
                            &[k, &id],
                        )?;
                    }
                    _ => {
                        // Not a payload column: must capture nothing.
                        tx.execute(
                            "UPDATE hot SET note = 'n' || $2 WHERE id = $1",
                            &[k, &id.to_string()],
                        )?;
                    }
                }
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if retryable(&e) => {}
            Err(e) => panic!("writer {id}: {e}"),
        }
    }
}

#[test]
fn same_keys_from_16_connections() {
    let pg = PgCluster::start_with(&[("track_commit_timestamp", "on"), ("max_connections", "60")])
        .expect("start postgres");
    let mut c = setup(&pg);
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (url, stop, commits) = (pg.url(), stop.clone(), commits.clone());
            std::thread::spawn(move || writer(url, i as i32, stop, commits))
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < RUN_FOR {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("writer thread panicked");
    }
    let committed = commits.load(Ordering::Relaxed);
    assert!(committed > 100, "only {committed} transactions committed");

    // Final committed rows.
    let mut rows: HashMap<String, String> = HashMap::new();
    for r in c
        .query("SELECT 'public.hot:' || id, json_build_object('id', id, 'v', v, 'writer', writer)::text FROM hot", &[])
        .expect("rows")
    {
        rows.insert(r.get(0), r.get(1));
    }
    // Every record with its commit timestamp (as microseconds since epoch).
    let records = c
        .query(
            "SELECT cache_key, version, op, payload,
                    (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint
               FROM vset.outbox ORDER BY cache_key, version",
            &[],
        )
        .expect("outbox");
    assert!(
        records.len() as u64 >= committed / 2,
        "suspiciously few records"
    );
    let mut by_key: HashMap<String, Vec<Record>> = HashMap::new();
    for r in &records {
        by_key
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3), r.get(4)));
    }

    let mut checked = 0;
    for k in 0..KEYS {
        let key = format!("public.hot:{k}");
        let Some(recs) = by_key.get(&key) else {
            assert!(!rows.contains_key(&key), "{key} exists but has no record");
            continue;
        };
        // (1) The highest version carries the final state.
        let (v, op, payload, _) = recs.last().expect("non-empty");
        match rows.get(&key) {
            Some(row) => {
                assert_eq!(
                    op, "set",
                    "{key}: row exists but highest version {v} is {op}"
                );
                let got: serde_json::Value =
                    serde_json::from_str(payload.as_deref().unwrap_or("null"))
                        .expect("payload json");
                let want: serde_json::Value = serde_json::from_str(row).expect("row json");
                assert_eq!(
                    got, want,
                    "{key}: highest version {v} is not the committed row"
                );
            }
            None => assert_eq!(
                op, "del",
                "{key}: row deleted but highest version {v} is {op}"
            ),
        }
        // (2) Sorted by version, commit timestamps never go back.
        for w in recs.windows(2) {
            assert!(
                w[0].3 <= w[1].3,
                "{key}: version {} committed at {} but smaller version {} committed later at {}",
                w[1].0,
                w[1].3,
                w[0].0,
                w[0].3
            );
        }
        checked += 1;
    }
    assert!(checked >= KEYS / 2, "too few keys saw writes: {checked}");
    // No record for the note-only updates. Every tracked change changes `v` (or
    // follows a delete), so two consecutive `set` records of one key with the same
    // payload can only come from an update that changed no tracked column.
    let mut note_only_records = 0;
    for recs in by_key.values() {
        for w in recs.windows(2) {
            if w[0].1 == "set" && w[1].1 == "set" && w[0].2 == w[1].2 {
                note_only_records += 1;
            }
        }
    }
    assert_eq!(
        note_only_records, 0,
        "records were written for updates that changed no tracked column"
    );
    // ...and such updates did commit, so the check above had something to catch.
    let noted: i64 = c
        .query_one("SELECT count(*) FROM hot WHERE note IS NOT NULL", &[])
        .expect("count")
        .get(0);
    assert!(
        noted > 0,
        "no note-only update committed: nothing was checked"
    );
    println!(
        "pg_concurrency: {committed} transactions from {WRITERS} connections over {KEYS} keys, {} records checked",
        records.len()
    );
}

/// Collects notifications until the sentinel arrives (NOTIFYs are delivered in
/// commit order, so everything committed before the sentinel has arrived by then).
fn drain(listener: &mut Client, sender: &mut Client) -> Vec<(String, String)> {
    sender.batch_execute("NOTIFY sentinel").expect("sentinel");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        {
            let mut n = listener.notifications();
            let mut it = n.timeout_iter(Duration::from_millis(200));
            while let Ok(Some(msg)) = it.next() {
                if msg.channel() == "sentinel" {
                    return got;
                }
                got.push((msg.channel().to_string(), msg.payload().to_string()));
            }
        }
        // Poll the socket so pending notifications are read.
        listener.batch_execute("SELECT 1").expect("poll");
    }
    panic!("sentinel notification never arrived");
}

#[test]
fn one_notify_per_capturing_transaction_none_otherwise() {
    let pg = PgCluster::start().expect("start postgres");
    let mut w = setup(&pg);
    w.batch_execute(
        "CREATE TABLE other(id int PRIMARY KEY, v int);
         SELECT vset.track('other', channel => 'other_ch');",
    )
    .expect("other");
    let mut l = pg.client().expect("listener");
    l.batch_execute("LISTEN vset; LISTEN other_ch; LISTEN sentinel")
        .expect("listen");
    let vset = |n: usize| vec![("vset".to_string(), String::new()); n];

    w.batch_execute("BEGIN; INSERT INTO hot VALUES (1,0,0),(2,0,0),(3,0,0); UPDATE hot SET v = 1; DELETE FROM hot WHERE id = 3; COMMIT")
        .expect("tx");
    assert_eq!(
        drain(&mut l, &mut w),
        vset(1),
        "many rows, one NOTIFY with empty payload"
    );

    w.batch_execute("BEGIN; UPDATE hot SET note = 'x'; UPDATE hot SET v = v WHERE id = 1; COMMIT")
        .expect("tx");
    assert_eq!(
        drain(&mut l, &mut w),
        vset(0),
        "nothing captured, no NOTIFY"
    );

    w.batch_execute("BEGIN; INSERT INTO hot VALUES (10,0,0); ROLLBACK")
        .expect("tx");
    assert_eq!(drain(&mut l, &mut w), vset(0), "rolled back, no NOTIFY");

    w.batch_execute("BEGIN; SAVEPOINT s; INSERT INTO hot VALUES (11,0,0); ROLLBACK TO s; INSERT INTO hot VALUES (12,0,0); COMMIT")
        .expect("tx");
    assert_eq!(
        drain(&mut l, &mut w),
        vset(1),
        "capture after ROLLBACK TO must notify again"
    );

    w.batch_execute("BEGIN; SAVEPOINT s; INSERT INTO hot VALUES (13,0,0); ROLLBACK TO s; COMMIT")
        .expect("tx");
    assert_eq!(
        drain(&mut l, &mut w),
        vset(0),
        "only a rolled-back savepoint captured"
    );

    w.batch_execute("BEGIN; INSERT INTO hot VALUES (14,0,0); SAVEPOINT s; INSERT INTO hot VALUES (15,0,0); ROLLBACK TO s; RELEASE s; COMMIT")
        .expect("tx");
    assert_eq!(drain(&mut l, &mut w), vset(1));

    w.batch_execute("BEGIN; SAVEPOINT a; INSERT INTO hot VALUES (16,0,0); RELEASE a; SAVEPOINT b; INSERT INTO hot VALUES (17,0,0); COMMIT")
        .expect("tx");
    assert_eq!(
        drain(&mut l, &mut w),
        vset(1),
        "released savepoint's NOTIFY is kept, not repeated"
    );

    w.batch_execute(
        "BEGIN; INSERT INTO hot VALUES (18,0,0); INSERT INTO other VALUES (1,1); COMMIT",
    )
    .expect("tx");
    let mut got = drain(&mut l, &mut w);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("other_ch".to_string(), String::new()),
            ("vset".to_string(), String::new())
        ],
        "one per channel"
    );

    // Records: exactly the committed changes, none of the rolled-back ones.
    let keys: Vec<String> = w
        .query("SELECT cache_key FROM vset.outbox WHERE tbl = 'hot'::regclass AND op = 'set' ORDER BY id", &[])
        .expect("keys")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<String> = [1, 2, 3, 1, 2, 3, 12, 14, 16, 17, 18]
        .iter()
        .map(|k| format!("public.hot:{k}"))
        .collect();
    assert_eq!(keys, want);
}

#[test]
fn current_version_and_relay_privileges() {
    let pg = PgCluster::start().expect("start postgres");
    let mut c = setup(&pg);
    let v0: i64 = c
        .query_one("SELECT vset.current_version()", &[])
        .expect("cv")
        .get(0);
    assert_eq!(v0, 0, "fresh cluster: no version handed out yet");
    c.batch_execute("INSERT INTO hot VALUES (1,0,0),(2,0,0)")
        .expect("insert");
    let (max, cv): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT max(version) FROM vset.outbox), vset.current_version()",
                &[],
            )
            .expect("cv");
        (r.get(0), r.get(1))
    };
    assert_eq!((max, cv), (2, 2));

    c.batch_execute(
        "CREATE ROLE relay LOGIN;
         GRANT USAGE ON SCHEMA vset TO relay;
         GRANT SELECT, UPDATE, DELETE ON vset.outbox TO relay;
         CREATE ROLE app LOGIN;
         GRANT SELECT, INSERT, UPDATE, DELETE ON hot TO app;",
    )
    .expect("roles");
    let connect = |user: &str| {
        Client::connect(
            &format!(
                "host=127.0.0.1 port={} user={user} dbname=postgres",
                pg.port()
            ),
            postgres::NoTls,
        )
        .expect("connect as role")
    };
    // The application role writes tracked rows without any grant on vset's objects.
    let mut app = connect("app");
    app.batch_execute("INSERT INTO hot VALUES (3,0,0); UPDATE hot SET v = 5 WHERE id = 3")
        .expect("app writes are captured without outbox privileges");
    let filled = app
        .query("SELECT cache_key, payload FROM vset.fill('hot', '3')", &[])
        .expect("app may fill");
    assert_eq!(filled.len(), 1);
    assert_eq!(
        filled[0].get::<_, String>(1),
        r#"{"id":3,"v":5,"writer":0}"#
    );
    let denied = app
        .query("SELECT * FROM vset.outbox", &[])
        .expect_err("outbox is private");
    assert_eq!(
        denied.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    let denied = app
        .query("SELECT * FROM vset.claim(10)", &[])
        .expect_err("app may not claim");
    assert_eq!(
        denied.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    let cv: i64 = app
        .query_one("SELECT vset.current_version()", &[])
        .expect("cv")
        .get(0);
    assert_eq!(cv, 5, "anyone may read current_version");

    // The relay role claims inside its transaction; ROLLBACK gives rows back.
    let mut relay = connect("relay");
    let mut tx = relay.transaction().expect("tx");
    let claimed = tx
        .query("SELECT id, cache_key, op, version FROM vset.claim(2)", &[])
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    tx.rollback().expect("rollback");
    let waiting: i64 = c
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("n")
        .get(0);
    assert_eq!(waiting, 4, "rolled-back claim gives the rows back");
    let mut tx = relay.transaction().expect("tx");
    let claimed = tx
        .query("SELECT id FROM vset.claim(100)", &[])
        .expect("claim");
    let ids: Vec<i64> = claimed.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    tx.commit().expect("commit");
    let waiting: i64 = c
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("n")
        .get(0);
    assert_eq!(waiting, 0);
}

/// Runs `program` (`pg_dump`, `psql`) from the cluster's bindir as `postgres` with
/// `args` and `-f file`, and fails the test with its stderr (labelled `what`) unless
/// it succeeds.
fn run_client_program(pg: &PgCluster, program: &str, args: &[&str], file: &Path, what: &str) {
    let out = std::process::Command::new(pg.bindir().join(program))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pg_dump` keeps what is tracked, the undelivered records and the version
/// sequence's position; the restored database keeps capturing above it.
#[test]
fn pg_dump_and_restore_keep_tracking_outbox_and_sequence() {
    let pg = PgCluster::start().expect("start postgres");
    let mut c = setup(&pg);
    c.batch_execute("INSERT INTO hot VALUES (1,0,0),(2,0,0); UPDATE hot SET v = 9 WHERE id = 2")
        .expect("writes");
    let dump = pg.dir().join("dump.sql");
    run_client_program(&pg, "pg_dump", &["-d", "postgres"], &dump, "pg_dump");
    c.batch_execute("CREATE DATABASE restored")
        .expect("createdb");
    run_client_program(
        &pg,
        "psql",
        &["-d", "restored", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        &dump,
        "restore",
    );

    let mut r = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=restored",
            pg.port()
        ),
        postgres::NoTls,
    )
    .expect("connect restored");
    let tracked: String = r
        .query_one(
            "SELECT tbl::text || ' ' || key_template || ' ' || columns::text FROM vset.tracked",
            &[],
        )
        .expect("tracked")
        .get(0);
    assert_eq!(tracked, "hot public.hot:{id} {id,v,writer}");
    let records: Vec<(String, String, i64)> = r
        .query(
            "SELECT cache_key, op, version FROM vset.outbox ORDER BY id",
            &[],
        )
        .expect("outbox")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        records,
        vec![
            ("public.hot:1".to_string(), "set".to_string(), 1),
            ("public.hot:2".to_string(), "set".to_string(), 2),
            ("public.hot:2".to_string(), "set".to_string(), 3),
        ]
    );
    let cv: i64 = r
        .query_one("SELECT vset.current_version()", &[])
        .expect("cv")
        .get(0);
    assert_eq!(cv, 3, "the sequence position survives the dump");
    r.batch_execute("UPDATE hot SET v = 10 WHERE id = 1")
        .expect("write after restore");
    let v: i64 = r
        .query_one("SELECT max(version) FROM vset.outbox", &[])
        .expect("max")
        .get(0);
    assert_eq!(
        v, 4,
        "the restored trigger captures, above the old versions"
    );
    let refused = r
        .batch_execute("TRUNCATE hot")
        .expect_err("TRUNCATE guard restored");
    assert_eq!(
        refused.code(),
        Some(&postgres::error::SqlState::FEATURE_NOT_SUPPORTED)
    );
}

/// Two `vset.track` calls with overlapping templates, at the same time: the second
/// waits for the first (a lock on `vset.tracked`) and is then refused, instead of
/// both passing the namespace check before either row exists.
#[test]
fn concurrent_tracks_with_overlapping_templates_cannot_both_succeed() {
    let pg = PgCluster::start().expect("start postgres");
    pg.create_extension().expect("CREATE EXTENSION vset");
    let mut first = pg.client().expect("first");
    first
        .batch_execute("CREATE TABLE a(id int PRIMARY KEY); CREATE TABLE b(id int PRIMARY KEY);")
        .expect("tables");
    first
        .batch_execute("BEGIN; SELECT vset.track('a', 'shared:{id}');")
        .expect("first track");
    let url = pg.url();
    let second = std::thread::spawn(move || {
        let mut c = Client::connect(&url, postgres::NoTls).expect("second");
        c.batch_execute("SELECT vset.track('b', 'shared:{id}')")
            .map_err(|e| vset_tests::postgres::db_error_text(&e))
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !second.is_finished(),
        "the second track waits for the first"
    );
    first.batch_execute("COMMIT").expect("commit");
    let got = second.join().expect("second thread");
    let err = got.expect_err("overlapping template refused");
    assert!(
        err.starts_with("42710: vset: key template \"shared:{id}\" for public.b"),
        "{err}"
    );
    let n: i64 = first
        .query_one("SELECT count(*) FROM vset.tracked", &[])
        .expect("count")
        .get(0);
    assert_eq!(n, 1);
}

/// `vset.untrack` locks the table before it reads the rows it writes `del`s for: a
/// write still open when untrack starts is waited for and its key deleted too (it
/// would otherwise stay cached, with no trigger left to change it). In REPEATABLE
/// READ, whose snapshot predates the lock, untrack refuses.
#[test]
fn untrack_waits_for_open_writes_and_deletes_their_keys_too() {
    let pg = PgCluster::start().expect("start postgres");
    pg.create_extension().expect("CREATE EXTENSION vset");
    let mut writer = pg.client().expect("writer");
    writer
        .batch_execute(
            "CREATE TABLE s(id int PRIMARY KEY, v int NOT NULL);
             SELECT vset.track('s');
             INSERT INTO s VALUES (1, 0);",
        )
        .expect("setup");
    // (BEGIN in its own call: inside one multi-statement query it would pull the
    // setup into the open transaction.)
    writer
        .batch_execute("BEGIN; INSERT INTO s VALUES (99, 0); UPDATE s SET v = 1 WHERE id = 1;")
        .expect("open write");
    let url = pg.url();
    let untrack = std::thread::spawn(move || {
        let mut c = Client::connect(&url, postgres::NoTls).expect("untrack");
        c.batch_execute("SELECT vset.untrack('s')")
            .map_err(|e| vset_tests::postgres::db_error_text(&e))
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!untrack.is_finished(), "untrack waits for the open write");
    writer.batch_execute("COMMIT").expect("commit");
    untrack.join().expect("untrack thread").expect("untrack");
    let mut last = |key: &str| -> String {
        writer
            .query_one(
                "SELECT op FROM vset.outbox WHERE cache_key = $1 ORDER BY version DESC LIMIT 1",
                &[&key],
            )
            .expect("last record")
            .get(0)
    };
    assert_eq!(last("public.s:99"), "del");
    assert_eq!(last("public.s:1"), "del");

    writer
        .batch_execute("SELECT vset.track('s')")
        .expect("track again");
    let err = writer
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT vset.untrack('s');")
        .expect_err("untrack under REPEATABLE READ");
    assert!(
        vset_tests::postgres::db_error_text(&err)
            .contains("must run in a READ COMMITTED transaction"),
        "{}",
        vset_tests::postgres::db_error_text(&err)
    );
    writer.batch_execute("ROLLBACK").expect("rollback");
}

/// An index built CONCURRENTLY on the outbox exists for a while without taking
/// inserts (not ready); capture must skip it then, and use it once it is ready.
#[test]
fn capture_works_while_an_outbox_index_is_built_concurrently() {
    let pg = PgCluster::start().expect("start postgres");
    pg.create_extension().expect("CREATE EXTENSION vset");
    let mut holder = pg.client().expect("holder");
    holder
        .batch_execute(
            "CREATE TABLE s(id int PRIMARY KEY, v int NOT NULL);
             SELECT vset.track('s');
             INSERT INTO s VALUES (1, 0);",
        )
        .expect("setup");
    holder
        .batch_execute("BEGIN; INSERT INTO s VALUES (2, 0);")
        .expect("hold a writer open");
    let url = pg.url();
    // Commits the index's catalog entry (not ready), then waits for the open writer.
    let build = std::thread::spawn(move || {
        let mut c = Client::connect(&url, postgres::NoTls).expect("builder");
        c.batch_execute("CREATE INDEX CONCURRENTLY outbox_by_version ON vset.outbox (version)")
            .map_err(|e| vset_tests::postgres::db_error_text(&e))
    });
    let mut writer = pg.client().expect("writer");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = writer
            .query_one(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE c.relname = 'outbox_by_version' AND NOT i.indisready",
                &[],
            )
            .expect("index state")
            .get(0);
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the concurrent build never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    writer
        .batch_execute("INSERT INTO s VALUES (3, 0); UPDATE s SET v = 1 WHERE id = 1;")
        .expect("capture while the index is not ready");
    holder.batch_execute("COMMIT").expect("commit");
    build
        .join()
        .expect("builder thread")
        .expect("CREATE INDEX CONCURRENTLY");
    writer
        .batch_execute("INSERT INTO s VALUES (4, 0)")
        .expect("capture once the index is ready");
    let n: i64 = writer
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("count")
        .get(0);
    assert_eq!(n, 5);
    writer
        .batch_execute("SET enable_seqscan = off")
        .expect("no seqscan");
    let via_index: i64 = writer
        .query_one("SELECT count(*) FROM vset.outbox WHERE version > 0", &[])
        .expect("count via the new index")
        .get(0);
    assert_eq!(
        via_index, 5,
        "rows written after the index became ready are in it"
    );
}
