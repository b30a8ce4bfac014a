//! `vset.fill` on committed rows, on a private PostgreSQL cluster (needs `make
//! install-pg`). These cannot be `#[pg_test]`s: a pg_test runs in one transaction,
//! and fill refuses rows its own transaction changed.
//!
//! - the committed row with a version above every captured one, or no row;
//!   composite keys escaped as capture escapes them;
//! - a re-track and an untrack in the same session (the prepared fill follows);
//! - a SELECT-only role fills what row-level security lets it see;
//! - keys and payloads independent of the session's settings;
//! - a row this transaction inserted or updated is refused (nothing else is: a row
//!   only locked, or changed in a rolled-back savepoint, fills).

use postgres::Client;
use vset_tests::postgres::{db_error_text, PgCluster};

fn cluster() -> (PgCluster, Client) {
    let pg = PgCluster::start().expect("start postgres");
    pg.create_extension()
        .expect("CREATE EXTENSION vset (run `make install-pg` first)");
    let mut c = pg.client().expect("client");
    c.batch_execute(
        "CREATE TABLE users(id int PRIMARY KEY, name text, pw text);
         SELECT vset.track('users', columns => ARRAY['id','name']);
         INSERT INTO users VALUES (42, 'ann', 'x'), (7, 'bob', 'y');",
    )
    .expect("setup");
    (pg, c)
}

/// `cache_key payload` of a fill, `none` for no row, `error: …` for a refusal.
fn fill(c: &mut Client, sql: &str) -> String {
    match c.query(sql, &[]) {
        Ok(rows) => match rows.first() {
            Some(r) => format!("{} {}", r.get::<_, String>(0), r.get::<_, String>(1)),
            None => "none".into(),
        },
        Err(e) => format!("error: {}", db_error_text(&e)),
    }
}

#[test]
fn fill_returns_the_committed_row_with_a_newer_version_or_nothing() {
    let (_pg, mut c) = cluster();
    let last: i64 = c
        .query_one("SELECT max(version) FROM vset.outbox", &[])
        .expect("outbox")
        .get(0);
    let row = c
        .query_one(
            "SELECT cache_key, version, payload FROM vset.fill('users', '042')",
            &[],
        )
        .expect("fill");
    assert_eq!(row.get::<_, String>(0), "public.users:42");
    assert!(row.get::<_, i64>(1) > last);
    assert_eq!(row.get::<_, String>(2), r#"{"id":42,"name":"ann"}"#);
    assert_eq!(
        fill(
            &mut c,
            "SELECT cache_key, payload FROM vset.fill('users', '8')"
        ),
        "none"
    );
    let records: i64 = c
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("outbox")
        .get(0);
    assert_eq!(records, 2, "fill writes no outbox record");
    // Composite keys: escaped as capture escapes them.
    c.batch_execute(
        r"CREATE TABLE pairs(a text, b text, v int, PRIMARY KEY (a, b));
          SELECT vset.track('pairs');
          INSERT INTO pairs VALUES ('x:y', 'z', 1), ('x', 'y:z', 2);",
    )
    .expect("pairs");
    assert_eq!(
        fill(
            &mut c,
            "SELECT cache_key, payload FROM vset.fill('pairs', 'x', 'y:z')"
        ),
        r#"public.pairs:x:y\:z {"a":"x","b":"y:z","v":2}"#
    );
}

#[test]
fn fill_follows_a_retrack_and_an_untrack_in_the_same_session() {
    let (_pg, mut c) = cluster();
    let key = |c: &mut Client| fill(c, "SELECT cache_key, payload FROM vset.fill('users', '7')");
    assert_eq!(key(&mut c), r#"public.users:7 {"id":7,"name":"bob"}"#);
    c.batch_execute("SELECT vset.track('users', key_template => 'u:{id}', replace => true)")
        .expect("retrack");
    assert_eq!(
        key(&mut c),
        r#"u:7 {"id":7,"name":"bob","pw":"y"}"#,
        "the prepared fill was dropped"
    );
    c.batch_execute("SELECT vset.untrack('users')")
        .expect("untrack");
    assert_eq!(
        key(&mut c),
        "error: 55000: vset: table public.users is not tracked by vset"
    );
}

#[test]
fn a_select_only_role_fills_what_row_level_security_lets_it_see() {
    let (pg, mut c) = cluster();
    c.batch_execute(
        "CREATE ROLE vset_reader LOGIN;
         GRANT SELECT ON users TO vset_reader;
         CREATE ROLE vset_nobody LOGIN;",
    )
    .expect("roles");
    let as_role = |role: &str, id: &str| -> String {
        let mut r = Client::connect(&format!("{} user={role}", pg.conninfo()), postgres::NoTls)
            .expect("connect as role");
        fill(
            &mut r,
            &format!("SELECT cache_key, payload FROM vset.fill('users', '{id}')"),
        )
    };
    assert_eq!(
        as_role("vset_reader", "42"),
        r#"public.users:42 {"id":42,"name":"ann"}"#
    );
    c.batch_execute(
        "ALTER TABLE users ENABLE ROW LEVEL SECURITY;
         CREATE POLICY only_bob ON users FOR SELECT TO vset_reader USING (name = 'bob');",
    )
    .expect("policy");
    assert_eq!(
        as_role("vset_reader", "42"),
        "none",
        "hidden by row-level security"
    );
    assert_eq!(
        as_role("vset_reader", "7"),
        r#"public.users:7 {"id":7,"name":"bob"}"#
    );
    // Without SELECT: vset.tracked does not even show the table as tracked.
    assert_eq!(
        as_role("vset_nobody", "42"),
        "error: 55000: vset: table public.users is not tracked by vset"
    );
}

#[test]
fn fill_renders_like_capture_whatever_the_session_settings() {
    let (_pg, mut c) = cluster();
    c.batch_execute(
        "CREATE TABLE ev(at timestamptz PRIMARY KEY, day date, f float8, b bytea, span interval);
         SELECT vset.track('ev');
         SET TimeZone = 'UTC';
         INSERT INTO ev VALUES ('2024-01-01 00:00:00+00', '2024-02-03', 0.1, '\\x0102', '1 day 2 hours');
         SET TimeZone = 'Europe/Paris';
         SET DateStyle = 'SQL, DMY';
         SET IntervalStyle = 'sql_standard';
         SET extra_float_digits = -3;
         SET bytea_output = 'escape';",
    )
    .expect("setup");
    let captured: (String, String) = {
        let r = c
            .query_one(
                "SELECT cache_key, payload FROM vset.outbox WHERE tbl = 'ev'::regclass",
                &[],
            )
            .expect("record");
        (r.get(0), r.get(1))
    };
    assert_eq!(
        fill(
            &mut c,
            "SELECT cache_key, payload FROM vset.fill('ev', '2024-01-01 01:00:00+01')"
        ),
        format!("{} {}", captured.0, captured.1)
    );
    assert_eq!(captured.0, "public.ev:2024-01-01 00:00:00+00");
}

#[test]
fn fill_refuses_a_row_its_own_transaction_changed_and_nothing_else() {
    let (_pg, mut c) = cluster();
    let refused = "error: 25000: vset: fill of public.users: this transaction inserted or updated the row, so its value is not committed yet; fill after COMMIT (or from another transaction)";
    let sql = |id: i32| format!("SELECT cache_key, payload FROM vset.fill('users', '{id}')");
    let mut in_transaction = |setup: &str, id: i32| -> String {
        c.batch_execute("BEGIN").expect("begin");
        c.batch_execute(setup).expect("setup");
        let got = fill(&mut c, &sql(id));
        c.batch_execute("ROLLBACK").expect("rollback");
        got
    };
    assert_eq!(
        in_transaction("UPDATE users SET name = 'ann2' WHERE id = 42", 42),
        refused
    );
    assert_eq!(
        in_transaction("INSERT INTO users VALUES (8, 'new', 'z')", 8),
        refused
    );
    assert_eq!(
        in_transaction(
            "SAVEPOINT s; UPDATE users SET name = 'x' WHERE id = 42; RELEASE s",
            42
        ),
        refused,
        "a released savepoint's change is the transaction's"
    );
    // Not refused: another row, a row only locked, a change rolled back to a savepoint.
    assert_eq!(
        in_transaction("UPDATE users SET name = 'ann2' WHERE id = 42", 7),
        r#"public.users:7 {"id":7,"name":"bob"}"#
    );
    assert_eq!(
        in_transaction("SELECT * FROM users WHERE id = 42 FOR UPDATE", 42),
        r#"public.users:42 {"id":42,"name":"ann"}"#
    );
    assert_eq!(
        in_transaction(
            "SAVEPOINT s; UPDATE users SET name = 'x' WHERE id = 42; ROLLBACK TO s",
            42
        ),
        r#"public.users:42 {"id":42,"name":"ann"}"#
    );
    // Committed: fills.
    c.batch_execute("UPDATE users SET name = 'ann3' WHERE id = 42")
        .expect("update");
    assert_eq!(
        fill(&mut c, &sql(42)),
        r#"public.users:42 {"id":42,"name":"ann3"}"#
    );
}

#[test]
fn fill_on_a_hot_standby_is_refused_with_a_clear_error() {
    let (pg, mut c) = cluster();
    c.batch_execute("CHECKPOINT").expect("checkpoint");
    let standby = PgCluster::standby_of(&pg).expect("standby");
    let mut s = standby.client().expect("standby client");
    assert_eq!(
        fill(&mut s, "SELECT cache_key, payload FROM vset.fill('users', '42')"),
        "error: 25006: vset: fill runs on the primary only: its version comes from the primary's vset.version_seq and its row lock orders it against writers there; send read-miss fills to the primary (cache reads from Redis need no database)"
    );
}

#[test]
fn fill_reads_partitions_through_the_root_and_quotes_every_name() {
    let (_pg, mut c) = cluster();
    c.batch_execute(
        r#"CREATE TABLE ev(id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
           CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu');
           CREATE TABLE ev_us PARTITION OF ev FOR VALUES IN ('us');
           SELECT vset.track('ev');
           INSERT INTO ev VALUES (1, 'eu', 1), (1, 'us', 2);
           CREATE TABLE y(id int PRIMARY KEY);
           CREATE TABLE "x""; DROP TABLE y; --"(id int PRIMARY KEY, "v""; DROP TABLE y; --" text);
           SELECT vset.track('"x""; DROP TABLE y; --"');
           INSERT INTO "x""; DROP TABLE y; --" VALUES (1, 'v');"#,
    )
    .expect("setup");
    assert_eq!(
        fill(
            &mut c,
            "SELECT cache_key, payload FROM vset.fill('ev', '1', 'us')"
        ),
        r#"public.ev:1:us {"id":1,"region":"us","v":2}"#
    );
    assert_eq!(
        fill(
            &mut c,
            r#"SELECT cache_key, payload FROM vset.fill('"x""; DROP TABLE y; --"', '1')"#
        ),
        r#"public.x"; DROP TABLE y; --:1 {"id":1,"v\"; DROP TABLE y; --":"v"}"#
    );
    let y_exists: bool = c
        .query_one("SELECT to_regclass('y') IS NOT NULL", &[])
        .expect("y")
        .get(0);
    assert!(y_exists);
}

#[test]
fn fill_does_not_hand_out_rows_of_inheritance_children() {
    // A child's rows are not captured with its parent (the trigger does not fire for
    // them), so a fill must not cache them under the parent's keys either.
    let (_pg, mut c) = cluster();
    c.batch_execute(
        "CREATE TABLE kid () INHERITS (users); INSERT INTO kid VALUES (99, 'child', 'z');",
    )
    .expect("child");
    assert_eq!(
        fill(
            &mut c,
            "SELECT cache_key, payload FROM vset.fill('users', '99')"
        ),
        "none"
    );
}
