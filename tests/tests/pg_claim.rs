//! `vset.claim` on a private PostgreSQL cluster (needs `make install-pg`): it keeps
//! its speed while something holds the xmin horizon back, and never skips a record.
//!
//! - With a snapshot held open (as by a long query, `pg_dump` or a replication
//!   slot), every claimed-and-deleted outbox row stays as a dead index entry. A claim
//!   must not walk them all from the left edge: its index scan returns (counted by
//!   `pg_stat_get_xact_tuples_returned` on the outbox's primary key) a few entries,
//!   not one per record ever claimed, and it never scans the whole outbox.
//! - The low-water mark that makes that possible must never pass a record that can
//!   still be claimed: a writer that drew a small id and commits late, rows that
//!   another relay claimed and then rolled back, rows claimed twice in one
//!   transaction that is rolled back, a recreated extension.
//! - Records it cannot see coming (inserted by hand or a restore behind the mark, or
//!   drawn after `setval` moved the sequence back) are claimed by the periodic
//!   rescan; a misconfigured sequence stops capture, not the draining of the outbox.

use std::time::{Duration, Instant};

use postgres::Client;
use vset_tests::postgres::PgCluster;

fn cluster() -> (PgCluster, Client) {
    let pg = PgCluster::start().expect("start postgres");
    pg.create_extension()
        .expect("CREATE EXTENSION vset (run `make install-pg` first)");
    let mut c = pg.client().expect("client");
    c.batch_execute(
        "CREATE TABLE t(id int PRIMARY KEY, v int NOT NULL);
         SELECT vset.track('t');",
    )
    .expect("setup");
    (pg, c)
}

/// Claims (and commits) until a claim returns nothing; the ids claimed.
fn drain(relay: &mut Client) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let rows = relay
            .query("SELECT id FROM vset.claim(500)", &[])
            .expect("claim");
        if rows.is_empty() {
            return ids;
        }
        ids.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
}

/// Rows 1..=100 inserted and claimed: the relay's mark is past them.
fn insert_and_claim_100(writer: &mut Client, relay: &mut Client) {
    writer
        .execute(
            "INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g",
            &[],
        )
        .expect("insert");
    assert_eq!(drain(relay).len(), 100);
    assert!(drain(relay).is_empty());
}

/// Claims until `n` records came back or `within` passed (the rescan that finds
/// records behind the mark comes every `RESCAN_EVERY`, 10 s); the ids claimed.
fn drain_until(relay: &mut Client, n: usize, within: Duration) -> Vec<i64> {
    let deadline = Instant::now() + within;
    let mut ids = Vec::new();
    while ids.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records claimed within {within:?}: {ids:?}",
            ids.len()
        );
        ids.extend(drain(relay));
        std::thread::sleep(Duration::from_millis(100));
    }
    ids
}

/// A REPEATABLE READ snapshot held open by a read-only session (no transaction id,
/// like `pg_dump` or a long report): it keeps deleted outbox rows from being pruned.
fn hold_snapshot(pg: &PgCluster) -> Client {
    let mut holder = pg.client().expect("holder");
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .expect("begin");
    holder
        .batch_execute("SELECT count(*) FROM t")
        .expect("take the snapshot");
    holder
}

/// What one `claim(max)` cost: records claimed, index entries of the outbox's
/// primary key walked, sequential scans of the outbox.
fn cost_of_claim(relay: &mut Client, max: i32) -> (usize, i64, i64) {
    let counters = "SELECT pg_stat_get_xact_tuples_returned('vset.outbox_pkey'::regclass),
                           pg_stat_get_xact_numscans('vset.outbox'::regclass)";
    relay.batch_execute("BEGIN").expect("begin");
    let before = relay.query_one(counters, &[]).expect("stats");
    let claimed = relay
        .query("SELECT id FROM vset.claim($1)", &[&max])
        .expect("claim")
        .len();
    let after = relay.query_one(counters, &[]).expect("stats");
    relay.batch_execute("COMMIT").expect("commit");
    (
        claimed,
        after.get::<_, i64>(0) - before.get::<_, i64>(0),
        after.get::<_, i64>(1) - before.get::<_, i64>(1),
    )
}

#[test]
fn a_held_snapshot_does_not_make_claims_walk_every_claimed_record() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    let _holder = hold_snapshot(&pg);
    for batch in 0..6 {
        writer
            .execute(
                "INSERT INTO t SELECT g, 0 FROM generate_series($1::int + 1, $1::int + 500) g",
                &[&(batch * 500)],
            )
            .expect("insert");
        assert_eq!(drain(&mut relay).len(), 500);
    }
    // A few ordinary rounds, as a relay under a steady load does.
    for i in 0..3 {
        writer
            .execute("UPDATE t SET v = v + 1 WHERE id = $1", &[&(i + 1)])
            .expect("update");
        assert_eq!(drain(&mut relay).len(), 1);
    }
    writer
        .execute("UPDATE t SET v = v + 1 WHERE id <= 10", &[])
        .expect("update");
    let (claimed, walked, seq_scans) = cost_of_claim(&mut relay, 100);
    assert_eq!(claimed, 10, "the claim must return the 10 new records");
    assert_eq!(
        seq_scans, 0,
        "a claim must not scan the whole outbox (its backlog and dead rows)"
    );
    // 3,003 records were claimed and deleted under the held snapshot; a claim that
    // starts from the left edge walks every one of them.
    assert!(
        walked < 100,
        "a claim of 10 records walked {walked} index entries of vset.outbox_pkey \
         (the dead entries of records claimed earlier)"
    );
}

#[test]
fn a_writer_that_commits_late_with_a_smaller_id_is_still_claimed() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    let _holder = hold_snapshot(&pg);
    let mut late = pg.client().expect("late writer");
    late.batch_execute("BEGIN").expect("begin");
    late.execute("INSERT INTO t VALUES (0, 0)", &[])
        .expect("insert, not committed");
    let mut earlier = Vec::new();
    for round in 0..20 {
        writer
            .execute(
                "INSERT INTO t SELECT g, 0 FROM generate_series($1::int + 1, $1::int + 50) g",
                &[&(round * 50 + 1)],
            )
            .expect("insert");
        let ids = drain(&mut relay);
        assert_eq!(ids.len(), 50, "round {round}");
        earlier.extend(ids);
        // Empty claims too: each one may try to move the mark.
        assert!(drain(&mut relay).is_empty());
    }
    late.batch_execute("COMMIT").expect("commit late");
    let ids = drain(&mut relay);
    assert_eq!(ids.len(), 1, "the late writer's record must be claimed");
    let smallest_earlier = earlier.iter().min().copied().unwrap_or_default();
    assert!(
        ids[0] < smallest_earlier,
        "the late record ({}) must have a smaller id than the 1,000 claimed before it ({smallest_earlier}..)",
        ids[0]
    );
}

#[test]
fn records_whose_claim_rolled_back_are_claimed_again() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    let mut other = pg.client().expect("second relay");
    let _holder = hold_snapshot(&pg);
    writer
        .execute(
            "INSERT INTO t SELECT g, 0 FROM generate_series(1, 20) g",
            &[],
        )
        .expect("insert");
    // Another relay holds the first 5 (claimed, not committed) while this one
    // claims, and claims again, everything else.
    other.batch_execute("BEGIN").expect("begin");
    let held = other
        .query("SELECT id FROM vset.claim(5)", &[])
        .expect("claim");
    assert_eq!(held.len(), 5);
    for _ in 0..5 {
        drain(&mut relay);
        writer
            .execute("UPDATE t SET v = v + 1 WHERE id = 20", &[])
            .expect("update");
    }
    other.batch_execute("ROLLBACK").expect("rollback");
    // This relay claims twice in one transaction, then rolls back too.
    writer
        .execute("UPDATE t SET v = v + 1 WHERE id BETWEEN 6 AND 15", &[])
        .expect("update");
    relay.batch_execute("BEGIN").expect("begin");
    let first = relay
        .query("SELECT id FROM vset.claim(7)", &[])
        .expect("claim");
    let second = relay
        .query("SELECT id FROM vset.claim(50)", &[])
        .expect("claim");
    assert_eq!(
        first.len() + second.len(),
        16,
        "5 rolled back + 10 + 1 update"
    );
    relay.batch_execute("ROLLBACK").expect("rollback");
    for _ in 0..3 {
        writer
            .execute("UPDATE t SET v = v + 1 WHERE id = 19", &[])
            .expect("update");
    }
    let again = drain(&mut relay);
    assert_eq!(
        again.len(),
        19,
        "the 16 rolled-back records and 3 new ones must be claimed: got {again:?}"
    );
    let left: i64 = writer
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
}

#[test]
fn a_sequence_moved_back_does_not_strand_records() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    insert_and_claim_100(&mut writer, &mut relay);
    // A DBA (or a restore) moves the sequence back; writers draw ids the relay has
    // already passed. Versions then break their promise anyway, but records must
    // still be claimed, not left in the outbox.
    writer
        .batch_execute("SELECT setval('vset.version_seq', 10)")
        .expect("setval");
    writer
        .execute("UPDATE t SET v = v + 1", &[])
        .expect("update every row");
    // Ids 101..110 at once; 11..100 are behind the mark, found by the rescan.
    let mut ids = drain_until(&mut relay, 100, Duration::from_secs(15));
    ids.sort_unstable();
    assert_eq!(ids, (11..=110).collect::<Vec<i64>>());
}

#[test]
fn claims_go_on_while_the_sequence_is_misconfigured() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    writer
        .execute(
            "INSERT INTO t SELECT g, 0 FROM generate_series(1, 10) g",
            &[],
        )
        .expect("insert");
    // Capture now refuses (versions would not follow commit order), but what was
    // captured before must still drain.
    writer
        .batch_execute("ALTER SEQUENCE vset.version_seq CACHE 5")
        .expect("alter sequence");
    assert_eq!(drain(&mut relay).len(), 10);
}

#[test]
fn a_recreated_extension_is_claimed_from_its_first_record() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    insert_and_claim_100(&mut writer, &mut relay);
    // The relay's transaction is open while the extension is dropped and created
    // again: the new outbox starts at id 1.
    relay.batch_execute("BEGIN").expect("begin");
    relay.batch_execute("SELECT 1").expect("select");
    writer
        .batch_execute(
            "DROP EXTENSION vset CASCADE; CREATE EXTENSION vset; SELECT vset.track('t');
             UPDATE t SET v = v + 1 WHERE id <= 60;",
        )
        .expect("recreate");
    let claimed = relay
        .query("SELECT id FROM vset.claim(500)", &[])
        .expect("claim")
        .len();
    relay.batch_execute("COMMIT").expect("commit");
    assert_eq!(claimed, 60);
}

#[test]
fn a_record_inserted_behind_the_mark_is_claimed_by_the_rescan() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    writer
        .batch_execute("SELECT setval('vset.version_seq', 1000)")
        .expect("setval");
    assert!(drain(&mut relay).is_empty());
    // A restore (or a hand-written INSERT) brings a record with an old id while
    // the relay moves its mark past it.
    let mut restore = pg.client().expect("restore session");
    restore.batch_execute("BEGIN").expect("begin");
    restore
        .batch_execute(
            "INSERT INTO vset.outbox (id, tbl, cache_key, op, version, payload)
             VALUES (995, 't'::regclass, 'public.t:995', 'del', 995, NULL)",
        )
        .expect("insert");
    for _ in 0..3 {
        assert!(drain(&mut relay).is_empty());
    }
    restore.batch_execute("COMMIT").expect("commit");
    assert_eq!(
        drain_until(&mut relay, 1, Duration::from_secs(15)),
        vec![995]
    );
}

#[test]
fn a_relay_session_on_a_standby_claims_everything_after_promotion() {
    let (pg, mut writer) = cluster();
    let mut relay = pg.client().expect("relay");
    writer
        .execute("INSERT INTO t VALUES (1, 0)", &[])
        .expect("insert");
    assert_eq!(drain(&mut relay).len(), 1);
    let standby = PgCluster::standby_of(&pg).expect("standby");
    let mut on_standby = standby.client().expect("standby relay");
    // A relay pointed at the standby: its claims fail (read-only), its session stays.
    for _ in 0..2 {
        assert!(on_standby
            .query("SELECT id FROM vset.claim(100)", &[])
            .is_err());
    }
    writer
        .execute(
            "INSERT INTO t SELECT g, 0 FROM generate_series(2, 10) g",
            &[],
        )
        .expect("insert");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replayed: i64 = on_standby
            .query_one("SELECT count(*) FROM vset.outbox", &[])
            .expect("count")
            .get(0);
        if replayed == 9 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "standby did not replay the 9 records"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    on_standby
        .batch_execute("SELECT pg_promote()")
        .expect("promote");
    assert_eq!(
        drain(&mut on_standby).len(),
        9,
        "the promoted session claims all"
    );
}
