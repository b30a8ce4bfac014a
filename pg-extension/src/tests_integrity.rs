//! `#[pg_test]`s of what the capture trigger must get right whatever the session,
//! the other triggers or later DDL do: the highest version of a key carries the
//! row's last image; keys and payloads do not depend on session settings; a key that
//! stops being a key stops capture with an error instead of rendering garbage.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::tests::tests::{one, records, run, try_sql};

    /// The payload of the highest-versioned record of `key`, and the row's JSON now.
    fn last_set_and_row(
        table: &str,
        key: &str,
        row_query: &str,
    ) -> (Option<String>, Option<String>) {
        let last = records(table)
            .into_iter()
            .filter(|r| r.0 == key)
            .max_by_key(|r| r.2)
            .and_then(|r| r.3);
        (last, one::<String>(row_query))
    }

    /// An AFTER INSERT OR UPDATE trigger `name` on `table` (sorting before
    /// `vset_capture`) that updates the same row's `touched` column once more.
    fn touch_again_trigger(table: &str, name: &str) {
        run(&format!(
            "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF pg_trigger_depth() = 1 THEN
                 UPDATE {table} SET touched = touched + 1 WHERE id = NEW.id;
               END IF;
               RETURN NULL;
             END $$"
        ));
        run(&format!(
            "CREATE TRIGGER {name} AFTER INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        ));
    }

    #[pg_test]
    fn a_nested_update_by_another_trigger_does_not_leave_the_older_image_newest() {
        run("CREATE TABLE acct(id int PRIMARY KEY, name text, touched int NOT NULL DEFAULT 0)");
        run("SELECT vset.track('acct')");
        // "a_touch" sorts before "vset_capture": its nested UPDATE is captured first.
        touch_again_trigger("acct", "a_touch");
        run("INSERT INTO acct VALUES (1, 'alice')");
        let (last, row) = last_set_and_row(
            "acct",
            "public.acct:1",
            "SELECT row_to_json(a)::text FROM acct a WHERE id = 1",
        );
        assert_eq!(
            row.as_deref(),
            Some(r#"{"id":1,"name":"alice","touched":1}"#)
        );
        assert_eq!(last, row, "after INSERT");
        run("UPDATE acct SET name = 'bob' WHERE id = 1");
        let (last, row) = last_set_and_row(
            "acct",
            "public.acct:1",
            "SELECT row_to_json(a)::text FROM acct a WHERE id = 1",
        );
        assert_eq!(row.as_deref(), Some(r#"{"id":1,"name":"bob","touched":2}"#));
        assert_eq!(last, row, "after UPDATE");
    }

    #[pg_test]
    fn a_self_referencing_cascade_does_not_leave_the_older_image_newest() {
        run("CREATE TABLE node(id int PRIMARY KEY, parent int REFERENCES node(id) ON UPDATE CASCADE, name text)");
        run("SELECT vset.track('node')");
        run("INSERT INTO node VALUES (1, 1, 'root')");
        run("UPDATE node SET id = 10 WHERE id = 1");
        let (last, row) = last_set_and_row(
            "node",
            "public.node:10",
            "SELECT row_to_json(n)::text FROM node n WHERE id = 10",
        );
        assert_eq!(
            row.as_deref(),
            Some(r#"{"id":10,"parent":10,"name":"root"}"#)
        );
        assert_eq!(last, row);
        let old = records("node")
            .into_iter()
            .filter(|r| r.0 == "public.node:1")
            .max_by_key(|r| r.2)
            .map(|r| r.1);
        assert_eq!(old.as_deref(), Some("del"));
    }

    #[pg_test]
    fn keys_and_payloads_do_not_depend_on_session_settings() {
        run("CREATE TABLE ev(at timestamptz PRIMARY KEY, day date, f float8, b bytea, span interval)");
        run("SELECT vset.track('ev')");
        run("SET LOCAL TimeZone = 'UTC'");
        run("INSERT INTO ev VALUES ('2024-01-01 00:00:00+00', '2024-02-03', 0.1, '\\x0102', '1 day 2 hours')");
        run("SET LOCAL TimeZone = 'Europe/Paris'");
        run("SET LOCAL DateStyle = 'SQL, DMY'");
        run("SET LOCAL IntervalStyle = 'sql_standard'");
        run("SET LOCAL extra_float_digits = -3");
        run("SET LOCAL bytea_output = 'escape'");
        run("UPDATE ev SET f = 0.1 + 0 * f WHERE at = '2024-01-01 00:00:00+00'");
        run("DELETE FROM ev");
        let recs = records("ev");
        let want_key = "public.ev:2024-01-01 00:00:00+00";
        let want_payload = r#"{"at":"2024-01-01T00:00:00+00:00","day":"2024-02-03","f":0.1,"b":"\\x0102","span":"1 day 02:00:00"}"#;
        assert_eq!(recs.first().map(|r| r.0.as_str()), Some(want_key));
        assert_eq!(
            recs.first().and_then(|r| r.3.as_deref()),
            Some(want_payload)
        );
        assert_eq!(
            recs.last().map(|r| (r.0.as_str(), r.1.as_str())),
            Some((want_key, "del")),
            "the DELETE from another time zone names the same key"
        );
        // fill renders the same under other settings: tests/tests/pg_fill.rs.
        // And the session's own settings are back after each rendering.
        assert_eq!(
            one::<String>("SHOW TimeZone").as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(
            one::<String>("SELECT '2024-02-03'::date::text").as_deref(),
            Some("03/02/2024")
        );
    }

    #[pg_test]
    fn a_key_column_that_loses_not_null_stops_capture_with_an_error() {
        run("CREATE TABLE person(email text NOT NULL UNIQUE, name text)");
        run("SELECT vset.track('person')");
        run("INSERT INTO person VALUES ('a@x', 'a')");
        run("ALTER TABLE person ALTER email DROP NOT NULL");
        let before = records("person").len();
        assert_eq!(
            try_sql("INSERT INTO person VALUES ('b@x', 'b')"),
            "55000: vset: the key (email) of person is no longer a primary key or UNIQUE NOT NULL, immediate, non-partial index, so it cannot order writers of a row; nothing was written. Restore the key, or vset.track() the table again over a usable key (usable now: none)"
        );
        assert_eq!(records("person").len(), before);
        assert_eq!(one::<i64>("SELECT count(*) FROM person"), Some(1));
        run("ALTER TABLE person ALTER email SET NOT NULL");
        assert_eq!(try_sql("INSERT INTO person VALUES ('b@x', 'b')"), "ok");
        assert_eq!(records("person").len(), before + 1);
    }

    #[pg_test]
    fn a_dropped_or_deferrable_key_stops_capture_with_an_error() {
        run("CREATE TABLE tag(name text NOT NULL, n int, CONSTRAINT tag_name UNIQUE (name))");
        run("SELECT vset.track('tag')");
        run("INSERT INTO tag VALUES ('a', 1)");
        run("ALTER TABLE tag DROP CONSTRAINT tag_name");
        assert!(try_sql("UPDATE tag SET n = 2")
            .starts_with("55000: vset: the key (name) of tag is no longer"));
        run("ALTER TABLE tag ADD CONSTRAINT tag_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED");
        assert!(try_sql("UPDATE tag SET n = 2")
            .starts_with("55000: vset: the key (name) of tag is no longer"));
        run("ALTER TABLE tag DROP CONSTRAINT tag_name");
        run("ALTER TABLE tag ADD CONSTRAINT tag_name UNIQUE (name)");
        assert_eq!(try_sql("UPDATE tag SET n = 2"), "ok");
    }

    #[pg_test]
    fn an_altered_version_sequence_stops_capture_with_an_error() {
        run("CREATE TABLE s(id int PRIMARY KEY)");
        run("SELECT vset.track('s')");
        run("INSERT INTO s VALUES (1)");
        for (alter, restore) in [
            ("CACHE 20", "CACHE 1"),
            ("CYCLE", "NO CYCLE"),
            ("INCREMENT -1", "INCREMENT 1"),
        ] {
            run(&format!("ALTER SEQUENCE vset.version_seq {alter}"));
            assert_eq!(
                try_sql("INSERT INTO s VALUES (2)"),
                "55000: vset: vset.version_seq must have CACHE 1, a positive INCREMENT and NO CYCLE, or versions stop following commit order; nothing was written. Run: ALTER SEQUENCE vset.version_seq CACHE 1 INCREMENT 1 NO CYCLE",
                "{alter}"
            );
            assert_eq!(
                try_sql("SELECT vset.fill('s', '1')"),
                "55000: vset: vset.version_seq must have CACHE 1, a positive INCREMENT and NO CYCLE, or versions stop following commit order; nothing was written. Run: ALTER SEQUENCE vset.version_seq CACHE 1 INCREMENT 1 NO CYCLE",
                "fill with {alter}"
            );
            run(&format!("ALTER SEQUENCE vset.version_seq {restore}"));
        }
        assert_eq!(try_sql("INSERT INTO s VALUES (2)"), "ok");
    }

    /// Audit finding: a nested update that changes no captured column captures
    /// nothing, so the outer event must still write its change.
    #[pg_test]
    fn a_nested_update_of_an_uncaptured_column_does_not_lose_the_change() {
        run("CREATE TABLE doc(id int PRIMARY KEY, body text, touched int NOT NULL DEFAULT 0)");
        run("SELECT vset.track('doc', columns => ARRAY['id', 'body'])");
        touch_again_trigger("doc", "audit_touch");
        run("INSERT INTO doc VALUES (1, 'v1')");
        let (last, _) = last_set_and_row("doc", "public.doc:1", "SELECT 1::text");
        assert_eq!(
            last.as_deref(),
            Some(r#"{"id":1,"body":"v1"}"#),
            "after INSERT"
        );
        run("UPDATE doc SET body = 'v2' WHERE id = 1");
        let (last, _) = last_set_and_row("doc", "public.doc:1", "SELECT 1::text");
        assert_eq!(
            last.as_deref(),
            Some(r#"{"id":1,"body":"v2"}"#),
            "after UPDATE"
        );
        // A nested DELETE: no set after the del.
        run(
            "CREATE OR REPLACE FUNCTION audit_touch() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF pg_trigger_depth() = 1 THEN DELETE FROM doc WHERE id = NEW.id; END IF;
               RETURN NULL;
             END $$",
        );
        run("UPDATE doc SET body = 'v3' WHERE id = 1");
        let last_op = records("doc")
            .into_iter()
            .filter(|r| r.0 == "public.doc:1")
            .max_by_key(|r| r.2)
            .map(|r| r.1);
        assert_eq!(last_op.as_deref(), Some("del"));
    }
}
