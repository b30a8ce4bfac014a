//! `#[pg_test]`s of the security model (pg-extension README, "Security model"): one
//! per route by which a role could put a change record for a key it does not own
//! into the outbox, or learn about tables it cannot read. Each runs as an ordinary
//! role (`SET LOCAL ROLE`) inside the test's transaction.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::tests::tests::{count, one, run, try_sql, users};

    /// `users` tracked by the superuser, and a plain login role with nothing on it.
    fn victim_and_attacker() {
        users();
        run("INSERT INTO users VALUES (42, 'alice', 'x')");
        run("CREATE ROLE vset_attacker");
        run("GRANT USAGE ON SCHEMA tests TO vset_attacker");
        run("GRANT CREATE ON SCHEMA public TO vset_attacker");
    }

    fn as_role(role: &str, q: &str) -> String {
        run(&format!("SET LOCAL ROLE {role}"));
        let got = try_sql(q);
        run("RESET ROLE");
        got
    }

    #[pg_test]
    fn a_plain_role_cannot_attach_capture_to_its_own_table() {
        victim_and_attacker();
        let before = count("users");
        run("SET LOCAL ROLE vset_attacker");
        assert_eq!(
            try_sql("CREATE TEMP TABLE t(id int, name text, is_admin bool)"),
            "ok"
        );
        let got = try_sql(
            "CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW
               EXECUTE FUNCTION vset.capture('public.users:{id}', 'set', 'vset')",
        );
        let insert = try_sql("INSERT INTO t VALUES (42, 'alice', true)");
        run("RESET ROLE");
        assert_eq!(got, "42501: permission denied for function vset.capture");
        assert_eq!(insert, "ok");
        assert_eq!(count("users"), before);
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.outbox WHERE cache_key = 'public.users:42'"),
            Some(1),
            "only the real row's record"
        );
    }

    #[pg_test]
    fn a_capture_trigger_track_did_not_install_writes_nothing() {
        // Even when a superuser creates the forged trigger (or EXECUTE was granted),
        // the trigger's arguments are checked against vset.tracked.
        victim_and_attacker();
        let outbox = || one::<i64>("SELECT count(*) FROM vset.outbox").unwrap_or(-1);
        let before = outbox();
        run("CREATE TABLE t(id int PRIMARY KEY, name text, is_admin bool)");
        run("CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW
               EXECUTE FUNCTION vset.capture('public.users:{id}', 'set', 'vset')");
        assert_eq!(
            try_sql("INSERT INTO t VALUES (42, 'alice', true)"),
            "42501: vset: trigger \"x\" on t calls vset.capture() but is not the trigger vset.track() installed for it (its arguments differ from vset.tracked, or the table is not tracked); nothing was written. Use vset.track() to capture a table"
        );
        assert_eq!(outbox(), before);
        // A table owner who tracks their own table and adds a second trigger with
        // someone else's key prefix: refused the same way.
        run("DROP TRIGGER x ON t");
        run("SELECT vset.track('t')");
        run("CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW
               EXECUTE FUNCTION vset.capture('public.users:{id}', 'set', 'vset')");
        assert!(try_sql("INSERT INTO t VALUES (43, 'mallory', true)")
            .starts_with("42501: vset: trigger \"x\" on t"));
        // vset's own trigger with altered arguments (same name): refused too.
        run("DROP TRIGGER x ON t");
        assert!(try_sql("DROP TRIGGER vset_capture ON t")
            .starts_with("2BP01: vset: DROP TRIGGER vset_capture on public.t is refused"));
        // A superuser with event triggers off gets past the DDL guard.
        run("SET LOCAL session_replication_role = replica");
        run("DROP TRIGGER vset_capture ON t");
        run("RESET session_replication_role");
        run("CREATE TRIGGER vset_capture AFTER INSERT ON t FOR EACH ROW
               EXECUTE FUNCTION vset.capture('public.users:{id}', 'set', 'vset')");
        assert!(try_sql("INSERT INTO t VALUES (44, 'mallory', true)")
            .starts_with("42501: vset: trigger \"vset_capture\" on t"));
        assert_eq!(outbox(), before);
    }

    #[pg_test]
    fn vset_tracked_and_the_outbox_are_not_writable_by_other_roles() {
        victim_and_attacker();
        run("CREATE TABLE mine(id int PRIMARY KEY)");
        run("ALTER TABLE mine OWNER TO vset_attacker");
        assert_eq!(
            as_role(
                "vset_attacker",
                "INSERT INTO vset.tracked (tbl, key_template, key_columns, mode, channel)
                 VALUES ('mine', 'public.users:{id}', '{id}', 'set', 'vset')"
            ),
            "42501: permission denied for table tracked"
        );
        // A DBA who grants INSERT anyway still does not open it: only vset.track
        // (as the extension owner) writes it.
        run("GRANT INSERT, UPDATE, DELETE ON vset.tracked TO vset_attacker");
        assert_eq!(
            as_role(
                "vset_attacker",
                "INSERT INTO vset.tracked (tbl, key_template, key_columns, mode, channel)
                 VALUES ('mine', 'public.users:{id}', '{id}', 'set', 'vset')"
            ),
            "42501: new row violates row-level security policy for table \"tracked\""
        );
        assert_eq!(
            as_role(
                "vset_attacker",
                "UPDATE vset.tracked SET key_template = 'public.users:{id}'"
            ),
            "ok",
            "an UPDATE sees no row to change"
        );
        assert_eq!(
            one::<String>("SELECT key_template FROM vset.tracked WHERE tbl = 'users'::regclass")
                .as_deref(),
            Some("public.users:{id}")
        );
        assert_eq!(
            as_role(
                "vset_attacker",
                "INSERT INTO vset.outbox (id, tbl, cache_key, op, version, payload)
                 VALUES (999999, 'users', 'public.users:42', 'set', 999999, '{}')"
            ),
            "42501: permission denied for table outbox"
        );
        assert_eq!(
            as_role("vset_attacker", "SELECT nextval('vset.version_seq')"),
            "42501: permission denied for sequence version_seq"
        );
    }

    #[pg_test]
    fn an_owner_tracks_through_track_without_rights_on_vset_internals() {
        victim_and_attacker();
        run("CREATE TABLE mine(id int PRIMARY KEY, v text)");
        run("ALTER TABLE mine OWNER TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset.track(regclass, text, text[], text, text, boolean) TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset._track(oid, text, text[], text, text, boolean) TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset.untrack(regclass) TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset._untrack(oid) TO vset_attacker");
        assert_eq!(as_role("vset_attacker", "SELECT vset.track('mine')"), "ok");
        assert_eq!(
            as_role("vset_attacker", "INSERT INTO mine VALUES (1, 'a')"),
            "ok"
        );
        assert_eq!(count("mine"), 1);
        // The caller's search_path does not follow it into the owner's rights.
        run("CREATE SCHEMA evil AUTHORIZATION vset_attacker");
        assert_eq!(
            as_role(
                "vset_attacker",
                "CREATE FUNCTION evil.quote_ident(text) RETURNS text LANGUAGE sql AS 'SELECT ''x'''"
            ),
            "ok"
        );
        run("SET LOCAL search_path = evil, pg_catalog, public, tests");
        assert_eq!(
            as_role(
                "vset_attacker",
                "SELECT vset.track('mine', replace => true)"
            ),
            "ok"
        );
        run("RESET search_path");
        assert_eq!(
            as_role("vset_attacker", "SELECT vset.untrack('mine')"),
            "ok"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.tracked WHERE tbl = 'mine'::regclass"),
            Some(0)
        );
        assert_eq!(
            as_role("vset_attacker", "SELECT vset.untrack('users')"),
            "42501: vset: must be owner of table public.users to track or untrack it"
        );
    }

    #[pg_test]
    fn status_and_tracked_show_only_tables_the_role_may_read() {
        victim_and_attacker();
        let seen = |role: &str, q: &str| -> i64 {
            run(&format!("SET LOCAL ROLE {role}"));
            let n = one::<i64>(q).unwrap_or(-1);
            run("RESET ROLE");
            n
        };
        let status = "SELECT count(*) FROM vset.status()";
        let tracked = "SELECT count(*) FROM vset.tracked";
        assert_eq!(seen("vset_attacker", status), 0);
        assert_eq!(seen("vset_attacker", tracked), 0);
        run("GRANT SELECT ON users TO vset_attacker");
        assert_eq!(seen("vset_attacker", status), 1);
        assert_eq!(seen("vset_attacker", tracked), 1);
        // A relay role reads the whole outbox, so it sees every table's backlog.
        run("CREATE ROLE vset_relay_role");
        run("GRANT USAGE ON SCHEMA tests TO vset_relay_role");
        run("GRANT SELECT, UPDATE, DELETE ON vset.outbox TO vset_relay_role");
        assert_eq!(seen("vset_relay_role", status), 1);
        assert_eq!(seen("vset_relay_role", tracked), 0);
    }

    #[pg_test]
    fn a_template_that_can_render_another_tables_keys_is_refused() {
        victim_and_attacker();
        // A table owner asking for someone else's prefix: refused, without naming a
        // table the owner may not read.
        run("CREATE TABLE mine(id int PRIMARY KEY, v text)");
        run("ALTER TABLE mine OWNER TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset.track(regclass, text, text[], text, text, boolean) TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset._track(oid, text, text[], text, text, boolean) TO vset_attacker");
        assert_eq!(
            as_role("vset_attacker", "SELECT vset.track('mine', 'public.users:{id}')"),
            "42710: vset: key template \"public.users:{id}\" for public.mine can render the same cache key as that of a tracked table you may not read, so one table's changes would overwrite the other's cached rows; give it a distinct literal prefix (e.g. the default '<schema>.<table>:{key}')"
        );
        assert_eq!(
            as_role(
                "vset_attacker",
                "SELECT vset.track('mine', 'public.user{id}')"
            ),
            "ok",
            "'public.user' + integer never prints 'public.users:'"
        );
        // The superuser is told which table.
        run("CREATE TABLE users_copy(id int PRIMARY KEY)");
        assert_eq!(
            try_sql("SELECT vset.track('users_copy', 'public.users:{id}')"),
            "42710: vset: key template \"public.users:{id}\" for public.users_copy can render the same cache key as public.users (template \"public.users:{id}\"), so one table's changes would overwrite the other's cached rows; give it a distinct literal prefix (e.g. the default '<schema>.<table>:{key}')"
        );
        // Two default names that spell the same: schema "a.x" table "b" and schema
        // "a" table "x.b" both default to a.x.b:{id}.
        run(r#"CREATE SCHEMA "a.x""#);
        run("CREATE SCHEMA a");
        run(r#"CREATE TABLE "a.x".b(id int PRIMARY KEY)"#);
        run(r#"CREATE TABLE a."x.b"(id int PRIMARY KEY)"#);
        assert_eq!(try_sql(r#"SELECT vset.track('"a.x".b')"#), "ok");
        assert!(try_sql(r#"SELECT vset.track('a."x.b"')"#)
            .starts_with("42710: vset: key template \"a.x.b:{id}\""));
        // Integer keys under one prefix with different suffixes cannot meet; text can.
        run("CREATE TABLE posts(user_id int PRIMARY KEY)");
        run("CREATE TABLE handles(user_id text PRIMARY KEY)");
        assert_eq!(
            try_sql("SELECT vset.track('posts', 'u:{user_id}:posts')"),
            "ok"
        );
        assert_eq!(
            try_sql("SELECT vset.track('users', 'u:{id}', replace => true)"),
            "ok"
        );
        assert!(try_sql("SELECT vset.track('handles', 'u:{user_id}')").starts_with("42710: "));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.tracked WHERE tbl = 'handles'::regclass"),
            Some(0)
        );
        // A lone text placeholder can print any key at all.
        run("CREATE TABLE lone(name text PRIMARY KEY)");
        assert!(try_sql("SELECT vset.track('lone', '{name}')").starts_with("42710: "));
    }

    /// Audit finding: TableInfo::load ran under the caller's search_path, so a
    /// caller's `=(oid, oid)` could answer "who owns this table".
    #[pg_test]
    fn the_callers_operators_cannot_answer_vsets_catalog_questions() {
        victim_and_attacker();
        run("CREATE TABLE mine(id int PRIMARY KEY)");
        run("ALTER TABLE mine OWNER TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset.untrack(regclass) TO vset_attacker");
        run("GRANT EXECUTE ON FUNCTION vset._untrack(oid) TO vset_attacker");
        run("CREATE SCHEMA evil AUTHORIZATION vset_attacker");
        let victim = one::<i64>("SELECT 'users'::regclass::oid::bigint").unwrap_or(0);
        let mine = one::<i64>("SELECT 'mine'::regclass::oid::bigint").unwrap_or(0);
        // "users" answers as "mine" (which the attacker owns) to evil's `=`.
        run("SET LOCAL ROLE vset_attacker");
        run(&format!(
            "CREATE FUNCTION evil.oideq(a oid, b oid) RETURNS bool LANGUAGE sql IMMUTABLE AS
               $$ SELECT CASE WHEN b OPERATOR(pg_catalog.=) {victim}::oid
                              THEN a OPERATOR(pg_catalog.=) {mine}::oid
                              ELSE a OPERATOR(pg_catalog.=) b END $$"
        ));
        run("CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.oideq)");
        run("SET LOCAL search_path = evil, pg_catalog, tests");
        let got = try_sql(&format!("SELECT vset._untrack({victim})"));
        run("RESET search_path");
        run("RESET ROLE");
        assert_eq!(
            got,
            "42501: vset: must be owner of table public.users to track or untrack it"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vset.tracked WHERE tbl = 'users'::regclass"),
            Some(1)
        );
    }

    /// Audit finding: the capture plan's catalog queries ran as the writer under
    /// the writer's search_path, so a superuser's first write to a tracked table
    /// could run a function any role with CREATE on public had defined.
    #[pg_test]
    fn a_privileged_writer_runs_no_function_of_another_role() {
        victim_and_attacker();
        run("CREATE TABLE pwned(who text)");
        run("GRANT INSERT ON pwned TO PUBLIC");
        run("SET LOCAL ROLE vset_attacker");
        run(
            "CREATE FUNCTION public.unnest(int2[]) RETURNS SETOF int2 LANGUAGE sql AS
               $$ INSERT INTO public.pwned VALUES (current_user); SELECT pg_catalog.unnest($1) $$",
        );
        run("RESET ROLE");
        run("CREATE TABLE fresh(id int PRIMARY KEY)");
        run("SELECT vset.track('fresh')");
        run("SET LOCAL search_path = public, pg_catalog, tests");
        run("INSERT INTO fresh VALUES (1)");
        run("RESET search_path");
        assert_eq!(one::<i64>("SELECT count(*) FROM pwned"), Some(0));
        assert_eq!(count("fresh"), 1);
    }

    /// Audit finding: the namespace check ran only at track time and classified
    /// types by name.
    #[pg_test]
    fn a_key_type_changed_or_spoofed_after_track_cannot_reach_another_namespace() {
        victim_and_attacker();
        run("CREATE TABLE n(id int PRIMARY KEY, v text)");
        assert_eq!(
            try_sql("SELECT vset.track('n', '{id}')"),
            "ok",
            "integers never print 'public.users:'"
        );
        run("ALTER TABLE n ALTER COLUMN id TYPE text");
        let before = one::<i64>("SELECT count(*) FROM vset.outbox").unwrap_or(-1);
        assert!(
            try_sql("INSERT INTO n VALUES ('public.users:42', 'forged')").starts_with(
                "42710: vset: key template \"{id}\" for n can render the same cache key as"
            )
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM vset.outbox"), Some(before));
        // A type spelled like a built-in one, in another schema, is not one.
        run("CREATE SCHEMA spoof");
        run("CREATE TYPE spoof.int8 AS ENUM ('public.users:7')");
        run("CREATE TABLE s2(id spoof.int8 PRIMARY KEY)");
        assert!(try_sql("SELECT vset.track('s2', '{id}')").starts_with("42710: "));
        // Key types whose text follows search_path are refused outright.
        run("CREATE TABLE cfg(rel regclass PRIMARY KEY, v text)");
        assert_eq!(
            try_sql("SELECT vset.track('cfg')"),
            "0A000: vset: key column \"rel\" of public.cfg has a type whose text form depends on session settings (reg* types follow search_path, money follows lc_monetary), so two sessions could render different keys for one row; key the template on another unique column"
        );
    }

    #[pg_test]
    fn temporary_and_unlogged_tables_are_refused() {
        run("CREATE TEMP TABLE tmp(id int PRIMARY KEY)");
        assert!(try_sql("SELECT vset.track('tmp')").starts_with("0A000: vset: pg_temp_"));
        assert!(try_sql("SELECT vset.track('tmp')").contains("is a temporary table"));
        run("CREATE UNLOGGED TABLE ul(id int PRIMARY KEY)");
        assert_eq!(
            try_sql("SELECT vset.track('ul')"),
            "0A000: vset: public.ul is a unlogged table: crash recovery or the end of its session empties it without a row trigger firing, which would leave its cached rows stale; ALTER TABLE … SET LOGGED first"
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM vset.tracked"), Some(0));
    }

    // Item 7 (a SELECT-only role fills, under row-level security): tests/tests/pg_fill.rs.

    /// Audit finding: the DDL guard acts only for the table's owner; anyone else gets
    /// PostgreSQL's own refusal before vset locks, reads or writes anything.
    #[pg_test]
    fn ddl_by_a_role_that_does_not_own_the_table_gets_postgresqls_own_refusal() {
        victim_and_attacker();
        let outbox = || one::<i64>("SELECT count(*) FROM vset.outbox").unwrap_or(-1);
        let before = outbox();
        for ddl in [
            "ALTER TABLE users ADD COLUMN c int",
            "ALTER TABLE users RENAME COLUMN id TO uid",
            "ALTER TABLE users DISABLE TRIGGER vset_capture",
        ] {
            assert_eq!(
                as_role("vset_attacker", ddl),
                "42501: must be owner of table users",
                "{ddl}"
            );
        }
        assert_eq!(outbox(), before);
    }

    /// Audit finding: a table owner who is not a superuser can still add partitions
    /// to a tracked table (cloning vset's row trigger checks EXECUTE on it).
    #[pg_test]
    fn a_table_owner_without_superuser_can_add_partitions_to_a_tracked_table() {
        // Locks in the order the other tests take them (vset.tracked, by track; then
        // the schemas' catalog rows, by GRANT): tests run concurrently.
        run("LOCK TABLE vset.tracked IN SHARE ROW EXCLUSIVE MODE");
        run("CREATE ROLE vset_owner");
        run("GRANT USAGE ON SCHEMA tests TO vset_owner");
        run("GRANT CREATE, USAGE ON SCHEMA public TO vset_owner");
        run("SET LOCAL ROLE vset_owner");
        run("CREATE TABLE public.pt(id int PRIMARY KEY, v int) PARTITION BY RANGE (id)");
        run("CREATE TABLE public.pt_a PARTITION OF public.pt FOR VALUES FROM (0) TO (100)");
        run("RESET ROLE");
        run("SELECT vset.track('public.pt')");
        run("SET LOCAL ROLE vset_owner");
        assert_eq!(
            try_sql(
                "CREATE TABLE public.pt_b PARTITION OF public.pt FOR VALUES FROM (100) TO (200)"
            ),
            "ok"
        );
        run("INSERT INTO public.pt VALUES (150, 1)");
        run("RESET ROLE");
        assert_eq!(
            one::<String>("SELECT cache_key FROM vset.outbox WHERE tbl = 'public.pt'::regclass"),
            Some("public.pt:150".to_string())
        );
    }
}
