//! `#[pg_test]`s: one per rule of the extension (run by `cargo pgrx test pg15`).
//! Each test runs in its own transaction, rolled back at the end. Refusals are
//! checked with `tests.try_sql`, which runs a statement in a subtransaction and
//! returns `ok` or `SQLSTATE: message`, so a test can also check that a refused
//! statement changed nothing.

use pgrx::prelude::*;

#[pg_schema]
pub(crate) mod tests {
    use pgrx::prelude::*;

    pgrx::extension_sql!(
        r#"
CREATE FUNCTION tests.try_sql(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
"#,
        name = "test_helpers",
        requires = ["vset_catalog"]
    );

    pub(crate) type Record = (String, String, i64, Option<String>);

    pub(crate) fn run(q: &str) {
        Spi::run(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }

    pub(crate) fn one<T: FromDatum + IntoDatum>(q: &str) -> Option<T> {
        Spi::get_one::<T>(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    pub(crate) fn try_sql(q: &str) -> String {
        Spi::get_one_with_args::<String>("SELECT tests.try_sql($1)", &[q.into()])
            .expect("try_sql")
            .expect("try_sql result")
    }

    /// Outbox records of `table`, in id order: (cache_key, op, version, payload).
    pub(crate) fn records(table: &str) -> Vec<Record> {
        Spi::connect(|c| {
            let rows = c
                .select(
                    "SELECT cache_key, op, version, payload FROM vset.outbox
                      WHERE tbl = $1::regclass ORDER BY id",
                    None,
                    &[table.into()],
                )
                .expect("select outbox");
            rows.map(|r| {
                (
                    r.get::<String>(1).unwrap().unwrap(),
                    r.get::<String>(2).unwrap().unwrap(),
                    r.get::<i64>(3).unwrap().unwrap(),
                    r.get::<String>(4).unwrap(),
                )
            })
            .collect()
        })
    }

    pub(crate) fn count(table: &str) -> i64 {
        one::<i64>(&format!(
            "SELECT count(*) FROM vset.outbox WHERE tbl = '{table}'::regclass"
        ))
        .unwrap_or(0)
    }

    pub(crate) fn users() {
        run("CREATE TABLE users(id int PRIMARY KEY, name text, pw text)");
        run("SELECT vset.track('users', columns => ARRAY['id','name'])");
    }

    // ------------------------------------------------------------------ capture

    #[pg_test]
    fn insert_writes_set_with_payload_of_the_columns() {
        users();
        run("INSERT INTO users VALUES (42, 'ann', 'hash')");
        let r = records("users");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, "public.users:42");
        assert_eq!(r[0].1, "set");
        assert_eq!(r[0].3.as_deref(), Some(r#"{"id":42,"name":"ann"}"#));
        assert!(
            !r[0].3.as_deref().unwrap_or("").contains("hash"),
            "columns excluded from the payload must not leak"
        );
        // id = version, created_at = transaction start, tbl = the table.
        assert_eq!(
            one::<bool>("SELECT id = version AND created_at = now() AND tbl = 'users'::regclass FROM vset.outbox WHERE tbl = 'users'::regclass"),
            Some(true)
        );
    }

    #[pg_test]
    fn delete_writes_del_without_payload() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        run("DELETE FROM users WHERE id = 1");
        let r = records("users");
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[1].0.as_str(), r[1].1.as_str(), r[1].3.clone()),
            ("public.users:1", "del", None)
        );
        assert!(r[1].2 > r[0].2, "versions increase");
    }

    #[pg_test]
    fn update_writes_set_and_key_change_writes_del_then_set() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        run("UPDATE users SET name = 'b' WHERE id = 1");
        run("UPDATE users SET id = 2 WHERE id = 1");
        let r = records("users");
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(
            (r[1].0.as_str(), r[1].1.as_str()),
            ("public.users:1", "set")
        );
        assert_eq!(r[1].3.as_deref(), Some(r#"{"id":1,"name":"b"}"#));
        assert_eq!(
            (r[2].0.as_str(), r[2].1.as_str(), r[2].3.clone()),
            ("public.users:1", "del", None)
        );
        assert_eq!(
            (r[3].0.as_str(), r[3].1.as_str()),
            ("public.users:2", "set")
        );
        assert_eq!(r[3].3.as_deref(), Some(r#"{"id":2,"name":"b"}"#));
        assert!(r[1].2 < r[2].2 && r[2].2 < r[3].2);
    }

    #[pg_test]
    fn update_changing_no_payload_column_writes_nothing() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        run("UPDATE users SET pw = 'y' WHERE id = 1");
        run("UPDATE users SET name = name WHERE id = 1");
        assert_eq!(records("users").len(), 1);
    }

    #[pg_test]
    fn composite_key_is_escaped_and_fill_reads_it_back() {
        run("CREATE TABLE pairs(a text, b text, v int, PRIMARY KEY (a, b))");
        assert_eq!(
            one::<String>("SELECT vset.track('pairs')").as_deref(),
            Some("public.pairs:{a}:{b}")
        );
        run(r"INSERT INTO pairs VALUES ('x:y', 'z', 1), ('x', 'y:z', 2), ('b\s', 'c', 3)");
        let keys: Vec<String> = records("pairs").into_iter().map(|r| r.0).collect();
        assert_eq!(
            keys,
            vec![
                r"public.pairs:x\:y:z",
                r"public.pairs:x:y\:z",
                r"public.pairs:b\\s:c"
            ]
        );
        // fill of such a key (after COMMIT): tests/tests/pg_fill.rs.
    }

    #[pg_test]
    fn key_template_over_a_unique_key() {
        run("CREATE TABLE acct(id int PRIMARY KEY, org text NOT NULL, login text NOT NULL, UNIQUE (org, login))");
        assert_eq!(
            one::<String>("SELECT vset.track('acct', key_template => 'acct/{org}/{login}')")
                .as_deref(),
            Some("acct/{org}/{login}")
        );
        run("INSERT INTO acct VALUES (1, 'a/b', 'c')");
        assert_eq!(records("acct")[0].0, r"acct/a\/b/c");
        assert_eq!(
            one::<String>(
                "SELECT key_columns::text FROM vset.tracked WHERE tbl = 'acct'::regclass"
            )
            .as_deref(),
            Some("{org,login}")
        );
    }

    #[pg_test]
    fn null_and_unicode_values_are_valid_json_equal_to_row_to_json() {
        run("CREATE TABLE docs(id bigint PRIMARY KEY, title text, body text, score numeric, at timestamptz, meta jsonb, tags text[], ok boolean)");
        run("SELECT vset.track('docs')");
        run(r#"INSERT INTO docs VALUES
            (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
            (2, 'żółw 🐢 日本', E'quote " backslash \\ tab \t newline \n', 1.50, '2024-02-29 12:00:00+00', '{"k": [1, null]}', ARRAY['a', NULL], true)"#);
        let r = records("docs");
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].3.as_deref(),
            Some(
                r#"{"id":1,"title":null,"body":null,"score":null,"at":null,"meta":null,"tags":null,"ok":null}"#
            )
        );
        // Byte-identical to row_to_json of the row, and valid json.
        assert_eq!(
            one::<bool>(
                "SELECT bool_and(o.payload = row_to_json(d)::text AND o.payload::jsonb IS NOT NULL)
                           FROM vset.outbox o JOIN docs d ON o.cache_key = 'public.docs:' || d.id
                          WHERE o.tbl = 'docs'::regclass"
            ),
            Some(true)
        );
        assert_eq!(
            one::<String>("SELECT payload::jsonb ->> 'title' FROM vset.outbox WHERE cache_key = 'public.docs:2'").as_deref(),
            Some("żółw 🐢 日本")
        );
    }

    #[pg_test]
    fn savepoint_rollback_drops_the_record() {
        users();
        run("INSERT INTO users VALUES (1, 'kept', 'x')");
        run("DO $$ BEGIN
                INSERT INTO users VALUES (2, 'rolled back', 'x');
                UPDATE users SET name = 'rolled back too' WHERE id = 1;
                RAISE EXCEPTION 'undo';
             EXCEPTION WHEN raise_exception THEN NULL;
             END $$");
        let r = records("users");
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].3.as_deref(), Some(r#"{"id":1,"name":"kept"}"#));
    }

    #[pg_test]
    fn invalidate_mode_writes_only_del() {
        run("CREATE TABLE bulk(id int PRIMARY KEY, v int)");
        run("SELECT vset.track('bulk', mode => 'invalidate')");
        run("INSERT INTO bulk VALUES (1, 1)");
        run("UPDATE bulk SET v = 2");
        run("UPDATE bulk SET id = 3");
        let r = records("bulk");
        let ops: Vec<(&str, &str)> = r.iter().map(|x| (x.0.as_str(), x.1.as_str())).collect();
        assert_eq!(
            ops,
            vec![
                ("public.bulk:1", "del"),
                ("public.bulk:1", "del"),
                ("public.bulk:1", "del"),
                ("public.bulk:3", "del")
            ]
        );
        assert!(r.iter().all(|x| x.3.is_none()));
    }

    #[pg_test]
    fn set_local_vset_mode_invalidate_applies_to_the_transaction() {
        users();
        run("SET LOCAL vset.mode = 'invalidate'");
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        run("SET LOCAL vset.mode = 'set'");
        run("INSERT INTO users VALUES (2, 'b', 'x')");
        let r = records("users");
        assert_eq!((r[0].1.as_str(), r[0].3.clone()), ("del", None));
        assert_eq!(r[1].1, "set");
        assert_eq!(
            try_sql("SET LOCAL vset.mode = 'bogus'"),
            r#"22023: invalid value for parameter "vset.mode": "bogus""#
        );
    }

    #[pg_test]
    fn partitioned_table_is_tracked_through_its_root() {
        run("CREATE TABLE ev(id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region)");
        run("CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu')");
        run("CREATE TABLE ev_us (v int, region text NOT NULL, id int NOT NULL)"); // other column order
        run("ALTER TABLE ev ATTACH PARTITION ev_us FOR VALUES IN ('us')");
        assert_eq!(
            try_sql("SELECT vset.track('ev_eu')"),
            "42809: vset: public.ev_eu is a partition of public.ev; track public.ev instead (its trigger covers every partition)"
        );
        run("SELECT vset.track('ev')");
        run("CREATE TABLE ev_ap PARTITION OF ev FOR VALUES IN ('ap')"); // after track
        run("INSERT INTO ev VALUES (1, 'eu', 1), (1, 'us', 2), (1, 'ap', 3)");
        run("UPDATE ev SET region = 'us' WHERE id = 1 AND region = 'ap' AND false");
        let r = records("ev");
        let got: Vec<(String, Option<String>)> = r.into_iter().map(|x| (x.0, x.3)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "public.ev:1:eu".to_string(),
                    Some(r#"{"id":1,"region":"eu","v":1}"#.to_string())
                ),
                (
                    "public.ev:1:us".to_string(),
                    Some(r#"{"id":1,"region":"us","v":2}"#.to_string())
                ),
                (
                    "public.ev:1:ap".to_string(),
                    Some(r#"{"id":1,"region":"ap","v":3}"#.to_string())
                ),
            ]
        );
        // fill finds the row through the root (and refuses it: this transaction wrote
        // it; the fill of a committed partitioned row is in tests/tests/pg_fill.rs).
        assert!(try_sql("SELECT payload FROM vset.fill('ev', '1', 'us')")
            .starts_with("25000: vset: fill of public.ev: this transaction inserted"));
        assert!(try_sql("TRUNCATE ev_eu")
            .starts_with("0A000: vset: TRUNCATE of public.ev_eu is refused"));
        // Partitions created or attached after track get the guard too.
        assert!(try_sql("TRUNCATE ev_ap")
            .starts_with("0A000: vset: TRUNCATE of public.ev_ap is refused"));
        run("CREATE TABLE ev_sa (id int NOT NULL, region text NOT NULL, v int)");
        run("ALTER TABLE ev ATTACH PARTITION ev_sa FOR VALUES IN ('sa')");
        assert!(try_sql("TRUNCATE ev_sa")
            .starts_with("0A000: vset: TRUNCATE of public.ev_sa is refused"));
        assert!(try_sql("TRUNCATE ev").starts_with("0A000: vset: TRUNCATE of public.ev is refused"));
    }

    #[pg_test]
    fn default_key_uses_a_unique_not_null_index_without_primary_key() {
        run(r#"CREATE SCHEMA "My Schema""#);
        run(r#"CREATE TABLE "My Schema"."T.x"(email text NOT NULL UNIQUE, n int)"#);
        assert_eq!(
            one::<String>(r#"SELECT vset.track('"My Schema"."T.x"')"#).as_deref(),
            Some("My Schema.T.x:{email}")
        );
        run(r#"INSERT INTO "My Schema"."T.x" VALUES ('a@b', 1)"#);
        assert_eq!(records(r#""My Schema"."T.x""#)[0].0, "My Schema.T.x:a@b");
    }

    // ------------------------------------------------------------------ refusals

    #[pg_test]
    fn refuses_tables_without_a_unique_not_null_key() {
        run("CREATE TABLE nokey(id int, v int)");
        run("CREATE TABLE nullable(id int UNIQUE, v int)");
        run("CREATE TABLE partial(id int NOT NULL, v int)");
        run("CREATE UNIQUE INDEX ON partial(id) WHERE v > 0");
        run("CREATE TABLE deferred(id int NOT NULL, CONSTRAINT u UNIQUE (id) DEFERRABLE)");
        for t in ["nokey", "nullable", "partial", "deferred"] {
            assert_eq!(
                try_sql(&format!("SELECT vset.track('{t}')")),
                format!("55000: vset: table public.{t} has no primary key or UNIQUE NOT NULL index, so its rows have no stable cache key; add one (or a key_template over one)")
            );
        }
        assert_eq!(one::<i64>("SELECT count(*) FROM vset.tracked"), Some(0));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'vset%'"),
            Some(0)
        );
    }

    #[pg_test]
    fn refuses_key_templates_not_over_exactly_a_unique_key() {
        run("CREATE TABLE k(a int, b int, c int, PRIMARY KEY (a, b))");
        assert_eq!(
            try_sql("SELECT vset.track('k', key_template => 'k:{a}')"),
            "22023: vset: the key template of public.k uses columns (a), which are not exactly the columns of a UNIQUE NOT NULL key; usable keys: (a, b)"
        );
        assert_eq!(
            try_sql("SELECT vset.track('k', key_template => 'k:{a}:{b}:{c}')"),
            "22023: vset: the key template of public.k uses columns (a, b, c), which are not exactly the columns of a UNIQUE NOT NULL key; usable keys: (a, b)"
        );
        assert_eq!(
            try_sql("SELECT vset.track('k', key_template => 'k:{a}{b}')"),
            r#"22023: vset: invalid key_template "k:{a}{b}": placeholders {a} and {b} need a separator between them"#
        );
        assert_eq!(
            try_sql("SELECT vset.track('k', key_template => 'k:{nope}:{b}')"),
            r#"42703: vset: column "nope" of table public.k does not exist"#
        );
        assert_eq!(
            try_sql("SELECT vset.track('k', key_template => 'k')"),
            r#"22023: vset: invalid key_template "k": no {column} placeholder: every row would get the same key"#
        );
        // Order of the placeholders is free.
        assert_eq!(
            try_sql("SELECT vset.track('k', key_template => 'k:{b}/{a}')"),
            "ok"
        );
    }

    #[pg_test]
    fn refuses_bad_arguments_and_changes_nothing() {
        run("CREATE TABLE t(id int PRIMARY KEY, v int)");
        let cases = [
            ("SELECT vset.track('t', columns => ARRAY['id','nope'])", r#"42703: vset: column "nope" of table public.t does not exist"#),
            ("SELECT vset.track('t', columns => ARRAY['id','id'])", r#"42701: vset: column "id" is listed twice"#),
            ("SELECT vset.track('t', columns => ARRAY[]::text[])", "22023: vset: columns must name at least one column (or be NULL for all columns)"),
            ("SELECT vset.track('t', mode => 'sometimes')", r#"22023: vset: mode must be 'set' or 'invalidate', not "sometimes""#),
            ("SELECT vset.track('t', channel => '')", r#"22023: vset: channel must be 1 to 63 bytes, not """#),
            ("SELECT vset.track(NULL)", "22004: vset: tbl must not be NULL"),
            ("SELECT vset.track('vset.outbox')", "42809: vset: vset.outbox belongs to vset or to the system catalogs and cannot be tracked"),
            ("SELECT vset.track('pg_class')", "42809: vset: pg_catalog.pg_class belongs to vset or to the system catalogs and cannot be tracked"),
        ];
        for (q, want) in cases {
            assert_eq!(try_sql(q), want, "{q}");
        }
        assert_eq!(one::<i64>("SELECT count(*) FROM vset.tracked"), Some(0));
        run("INSERT INTO t VALUES (1, 1)");
        assert_eq!(count("t"), 0, "an untracked table captures nothing");
    }

    #[pg_test]
    fn refuses_views_and_second_track_unless_replace() {
        run("CREATE TABLE t2(id int PRIMARY KEY, v int)");
        run("CREATE VIEW v2 AS SELECT * FROM t2");
        run("CREATE MATERIALIZED VIEW m2 AS SELECT * FROM t2");
        assert_eq!(
            try_sql("SELECT vset.track('v2')"),
            "42809: vset: public.v2 is a view; vset tracks ordinary and partitioned tables only"
        );
        assert_eq!(
            try_sql("SELECT vset.track('m2')"),
            "42809: vset: public.m2 is a materialized view; vset tracks ordinary and partitioned tables only"
        );
        run("SELECT vset.track('t2')");
        assert_eq!(
            try_sql("SELECT vset.track('t2', mode => 'invalidate')"),
            "42710: vset: table public.t2 is already tracked; pass replace => true to change how"
        );
        assert_eq!(
            one::<String>("SELECT mode FROM vset.tracked").as_deref(),
            Some("set")
        );
        run("SELECT vset.track('t2', mode => 'invalidate', replace => true)");
        assert_eq!(
            one::<String>("SELECT mode FROM vset.tracked").as_deref(),
            Some("invalidate")
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 't2'::regclass AND tgname LIKE 'vset%'"),
            Some(2)
        );
        run("INSERT INTO t2 VALUES (1, 1)");
        assert_eq!(records("t2")[0].1, "del");
    }

    #[pg_test]
    fn refuses_tables_the_caller_does_not_own() {
        run("CREATE TABLE owned_by_other(id int PRIMARY KEY)");
        run("CREATE ROLE vset_test_other");
        run("ALTER TABLE owned_by_other OWNER TO vset_test_other");
        run("CREATE ROLE vset_test_user");
        run("CREATE ROLE vset_test_nobody");
        run("GRANT USAGE ON SCHEMA tests TO vset_test_user, vset_test_nobody");
        run("GRANT USAGE ON SCHEMA vset TO vset_test_user");
        run("GRANT EXECUTE ON FUNCTION vset.track(regclass, text, text[], text, text, boolean) TO vset_test_user");
        run("GRANT EXECUTE ON FUNCTION vset._track(oid, text, text[], text, text, boolean) TO vset_test_user");
        run("SET LOCAL ROLE vset_test_user");
        let got = try_sql("SELECT vset.track('owned_by_other')");
        run("RESET ROLE");
        assert_eq!(
            got,
            "42501: vset: must be owner of table public.owned_by_other to track or untrack it"
        );
        // And without the grant, PUBLIC may not call track at all.
        run("SET LOCAL ROLE vset_test_nobody");
        let got = try_sql("SELECT vset.track('owned_by_other')");
        run("RESET ROLE");
        assert_eq!(got, "42501: permission denied for function track");
        assert_eq!(one::<i64>("SELECT count(*) FROM vset.tracked"), Some(0));
    }

    #[pg_test]
    fn truncate_of_a_tracked_table_is_refused_and_names_the_alternative() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        assert_eq!(
            try_sql("TRUNCATE users"),
            "0A000: vset: TRUNCATE of public.users is refused: vset tracks it and TRUNCATE fires no row triggers, so every cached row would stay stale. Use DELETE FROM public.users (captured row by row), or SELECT vset.untrack('public.users') first and flush the cache yourself"
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM users"), Some(1));
    }

    #[pg_test]
    fn injection_attempts_are_quoted_or_refused() {
        run("CREATE TABLE y(id int PRIMARY KEY)");
        run(
            r#"CREATE TABLE "x""; DROP TABLE y; --"(id int PRIMARY KEY, "v""; DROP TABLE y; --" text)"#,
        );
        let t = r#"'"x""; DROP TABLE y; --"'"#;
        assert_eq!(
            one::<String>(&format!("SELECT vset.track({t})")).as_deref(),
            Some(r#"public.x"; DROP TABLE y; --:{id}"#)
        );
        run(r#"INSERT INTO "x""; DROP TABLE y; --" VALUES (1, 'v')"#);
        // (A committed row of such a table fills: tests/tests/pg_fill.rs.)
        assert!(try_sql(&format!("SELECT vset.fill({t}, '1')")).starts_with(
            r#"25000: vset: fill of public."x""; DROP TABLE y; --": this transaction"#
        ));
        assert_eq!(
            try_sql(&format!("SELECT vset.fill({t}, '1; DROP TABLE y')")),
            r#"22P02: invalid input syntax for type integer: "1; DROP TABLE y""#
        );
        assert_eq!(
            try_sql(&format!("SELECT vset.track({t}, key_template => '{{id}}\"; DROP TABLE y; --', replace => true)")),
            "ok", "literal text in a template is data, not SQL"
        );
        assert_eq!(
            try_sql(&format!("SELECT vset.track({t}, columns => ARRAY['id); DROP TABLE y; --'], replace => true)")),
            r#"42703: vset: column "id); DROP TABLE y; --" of table public."x""; DROP TABLE y; --" does not exist"#
        );
        assert_eq!(
            try_sql("SELECT vset.track('y; DROP TABLE y')"),
            "42602: invalid name syntax"
        );
        run(&format!("SELECT vset.untrack({t})"));
        assert_eq!(
            one::<bool>("SELECT to_regclass('y') IS NOT NULL"),
            Some(true)
        );
    }

    #[pg_test]
    fn capture_refuses_to_run_outside_the_trigger_track_installs() {
        run("CREATE TABLE h(id int PRIMARY KEY)");
        run("CREATE TRIGGER before_row BEFORE INSERT ON h FOR EACH ROW EXECUTE FUNCTION vset.capture()");
        assert_eq!(
            try_sql("INSERT INTO h VALUES (1)"),
            "39P01: vset: vset.capture() must be an AFTER ... FOR EACH ROW trigger; install it with vset.track()"
        );
        run("DROP TRIGGER before_row ON h");
        run(
            "CREATE TRIGGER no_args AFTER INSERT ON h FOR EACH ROW EXECUTE FUNCTION vset.capture()",
        );
        assert_eq!(
            try_sql("INSERT INTO h VALUES (1)"),
            "39P01: vset: vset.capture() needs the arguments vset.track() gives it; create the trigger with vset.track()"
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM h"), Some(0));
    }

    // ------------------------------------------------------------------ untrack

    #[pg_test]
    fn untrack_removes_trigger_and_catalog_row() {
        users();
        run("SELECT vset.untrack('users')");
        assert_eq!(one::<i64>("SELECT count(*) FROM vset.tracked"), Some(0));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass"),
            Some(0)
        );
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        run("TRUNCATE users");
        assert_eq!(count("users"), 0);
        assert_eq!(
            try_sql("SELECT vset.untrack('users')"),
            "55000: vset: table public.users is not tracked by vset"
        );
    }

    #[pg_test]
    fn dropping_a_tracked_table_is_refused_until_it_is_untracked() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x'), (2, 'b', 'y')");
        assert_eq!(
            try_sql("DROP TABLE users"),
            "2BP01: vset: DROP of tracked table public.users is refused: its cached rows would stay in Redis, stale"
        );
        run("CREATE SCHEMA app");
        run("CREATE TABLE app.t(id int PRIMARY KEY)");
        run("SELECT vset.track('app.t')");
        assert!(try_sql("DROP SCHEMA app CASCADE")
            .starts_with("2BP01: vset: DROP of tracked table app.t is refused"));
        assert_eq!(one::<i64>("SELECT count(*) FROM users"), Some(2));
        // Untrack (which deletes the cached keys), then DROP.
        run("SELECT vset.untrack('users')");
        run("DROP TABLE users");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.outbox WHERE cache_key = 'public.users:1' AND op = 'set'"),
            Some(1),
            "records already waiting stay and are delivered"
        );
        // Dropping other things is unaffected.
        run("CREATE TABLE other(id int PRIMARY KEY); ALTER TABLE other ADD COLUMN x int; ALTER TABLE other DROP COLUMN x; DROP TABLE other");
    }

    #[pg_test]
    fn untrack_of_a_table_whose_key_column_was_renamed_warns_and_proceeds() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        assert!(try_sql("ALTER TABLE users RENAME COLUMN id TO user_id")
            .starts_with("55000: vset: RENAME COLUMN of column \"id\" of tracked table public.users is refused"));
        // A superuser can still get there with event triggers off.
        run("SET LOCAL session_replication_role = replica");
        run("ALTER TABLE users RENAME COLUMN id TO user_id");
        run("RESET session_replication_role");
        assert_eq!(try_sql("SELECT vset.untrack('users')"), "ok");
        assert_eq!(one::<i64>("SELECT count(*) FROM vset.tracked"), Some(0));
        assert_eq!(
            try_sql("DROP TABLE users"),
            "ok",
            "not stuck behind the drop guard"
        );
    }

    #[pg_test]
    fn a_catalog_row_left_by_a_table_dropped_without_event_triggers_blocks_nothing() {
        run("CREATE TABLE gone(id int PRIMARY KEY)");
        run("SELECT vset.track('gone')");
        run("SET LOCAL session_replication_role = replica");
        run("DROP TABLE gone");
        run("RESET session_replication_role");
        users();
        assert_eq!(try_sql("SELECT vset.track('users', replace => true)"), "ok");
    }

    #[pg_test]
    fn only_plain_btree_indexes_on_the_outbox_and_the_cache_follows_index_changes() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x')");
        run("CREATE INDEX outbox_by_version ON vset.outbox USING hash (version)");
        assert_eq!(
            try_sql("INSERT INTO users VALUES (2, 'b', 'y')"),
            "55000: vset: the extension's indexes of vset.outbox (only plain btree indexes are supported) is missing or was altered; reinstall the extension"
        );
        run("DROP INDEX vset.outbox_by_version");
        assert_eq!(try_sql("INSERT INTO users VALUES (2, 'b', 'y')"), "ok");
        run("CREATE INDEX outbox_by_key ON vset.outbox (cache_key)");
        run("INSERT INTO users VALUES (3, 'c', 'z')");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.outbox WHERE cache_key = 'public.users:3'"),
            Some(1)
        );
        run("SET LOCAL enable_seqscan = off");
        assert_eq!(
            one::<String>(
                "EXPLAIN (COSTS OFF) SELECT * FROM vset.outbox WHERE cache_key = 'public.users:3'"
            ),
            Some("Index Scan using outbox_by_key on outbox".into()),
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.outbox WHERE cache_key = 'public.users:3'"),
            Some(1),
            "the new index received the row (found through it)"
        );
    }

    #[pg_test]
    fn untrack_and_a_retrack_that_changes_keys_or_payload_delete_every_cached_key() {
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x'), (2, 'b', 'y')");
        let dels = |key: &str| {
            one::<i64>(&format!(
                "SELECT count(*) FROM vset.outbox WHERE op = 'del' AND cache_key = '{key}'"
            ))
            .unwrap_or(-1)
        };
        // Same template and columns (new channel): cached entries stay valid, nothing written.
        let before = count("users");
        run("SELECT vset.track('users', columns => ARRAY['id','name'], channel => 'other', replace => true)");
        assert_eq!(count("users"), before);
        // New payload columns: every key is deleted (the next change or fill brings the new shape).
        run("SELECT vset.track('users', columns => ARRAY['id','name','pw'], replace => true)");
        assert_eq!((dels("public.users:1"), dels("public.users:2")), (1, 1));
        // New template: the keys under the old one are deleted.
        run("SELECT vset.track('users', key_template => 'u:{id}', replace => true)");
        assert_eq!((dels("public.users:1"), dels("public.users:2")), (2, 2));
        assert_eq!(dels("u:1"), 0);
        // Untrack: nothing maintains the keys any more, they are deleted.
        run("SELECT vset.untrack('users')");
        assert_eq!((dels("u:1"), dels("u:2")), (1, 1));
        let last = records("users").last().map(|r| (r.0.clone(), r.1.clone()));
        assert_eq!(last, Some(("u:2".to_string(), "del".to_string())));
    }

    // ------------------------------------------------------------------ fill

    // Fills of committed rows (version order, retrack, roles, settings) are in
    // tests/tests/pg_fill.rs: a pg_test runs in one transaction, whose own rows
    // fill refuses.

    #[pg_test]
    fn fill_refuses_a_row_this_transaction_inserted_or_updated() {
        users();
        run("INSERT INTO users VALUES (42, 'ann', 'x')");
        let refusal = "25000: vset: fill of public.users: this transaction inserted or updated the row, so its value is not committed yet; fill after COMMIT (or from another transaction)";
        assert_eq!(try_sql("SELECT * FROM vset.fill('users', '42')"), refusal);
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.fill('users', '7')"),
            Some(0),
            "a row that does not exist is no row"
        );
        let before = one::<i64>("SELECT vset.current_version()");
        assert_eq!(try_sql("SELECT * FROM vset.fill('users', '42')"), refusal);
        assert_eq!(
            one::<i64>("SELECT vset.current_version()"),
            before,
            "a refused fill draws no version"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.outbox WHERE tbl = 'users'::regclass"),
            Some(1),
            "fill writes no outbox record"
        );
    }

    #[pg_test]
    fn fill_refusals() {
        users();
        run("CREATE TABLE plain(id int PRIMARY KEY)");
        assert_eq!(
            try_sql("SELECT * FROM vset.fill('plain', '1')"),
            "55000: vset: table public.plain is not tracked by vset"
        );
        assert_eq!(
            try_sql("SELECT * FROM vset.fill('users', '1', '2')"),
            "22023: vset: table public.users is keyed by 1 column(s) (id), but 2 key value(s) were given"
        );
        assert_eq!(
            try_sql("SELECT * FROM vset.fill('users', 'abc')"),
            r#"22P02: invalid input syntax for type integer: "abc""#
        );
        assert_eq!(
            try_sql("SELECT * FROM vset.fill('users', NULL::text)"),
            "22004: vset: a key value must not be NULL"
        );
    }

    // ------------------------------------------------------------------ relay API

    #[pg_test]
    fn claim_removes_and_returns_rows_in_id_order() {
        run("DELETE FROM vset.outbox");
        users();
        run("INSERT INTO users SELECT g, 'n' || g, 'x' FROM generate_series(1, 5) g");
        let ids: Vec<i64> = Spi::connect_mut(|c| {
            c.update("SELECT id FROM vset.claim(3)", None, &[])
                .unwrap()
                .map(|r| r.get::<i64>(1).unwrap().unwrap())
                .collect()
        });
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(count("users"), 2);
        assert_eq!(
            one::<String>("SELECT string_agg(cache_key, ',' ORDER BY id) FROM vset.outbox")
                .as_deref(),
            Some("public.users:4,public.users:5")
        );
        // Columns and their order are the contract.
        assert_eq!(
            one::<String>("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                             FROM pg_attribute WHERE attrelid = 'vset.outbox'::regclass AND attnum > 0").as_deref(),
            Some("id bigint, tbl regclass, cache_key text, op text, version bigint, payload text, created_at timestamp with time zone")
        );
        assert_eq!(
            try_sql("SELECT * FROM vset.claim(0)"),
            "22023: vset: claim(max) needs max >= 1, not 0"
        );
        assert_eq!(
            try_sql("SELECT * FROM vset.claim(NULL)"),
            "22023: vset: claim(max) needs max >= 1, not NULL"
        );
    }

    #[pg_test]
    fn status_and_current_version() {
        run("DELETE FROM vset.outbox");
        users();
        run("INSERT INTO users VALUES (1, 'a', 'x'), (2, 'b', 'x')");
        let (mode, waiting) = Spi::get_two::<String, i64>(
            "SELECT mode, rows_waiting FROM vset.status() WHERE tbl = 'users'::regclass",
        )
        .unwrap();
        assert_eq!((mode.as_deref(), waiting), (Some("set"), Some(2)));
        assert_eq!(
            one::<bool>("SELECT oldest_waiting >= interval '0' FROM vset.status() WHERE tbl = 'users'::regclass"),
            Some(true)
        );
        run("SELECT vset.untrack('users')");
        assert_eq!(
            one::<String>("SELECT mode || ' ' || rows_waiting FROM vset.status() WHERE tbl = 'users'::regclass").as_deref(),
            Some("untracked 4"),
            "the 2 sets, and untrack's 2 dels"
        );
        let max = one::<i64>("SELECT max(version) FROM vset.outbox").unwrap_or(0);
        assert!(one::<i64>("SELECT vset.current_version()").unwrap_or(0) >= max);
        assert_eq!(
            one::<bool>("SELECT has_table_privilege('public', 'vset.outbox', 'SELECT')"),
            Some(false),
            "the outbox is not readable by PUBLIC"
        );
    }
}
