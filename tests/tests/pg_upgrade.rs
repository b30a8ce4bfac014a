//! `ALTER EXTENSION vset UPDATE` from the released 0.1.0 (needs `make install-pg`,
//! which installs `pg-extension/sql/*.sql` beside the current script): a database
//! with tracked tables and undelivered records is upgraded, keeps capturing,
//! claiming and filling with nothing lost, and ends with exactly the objects,
//! privileges and policies of a fresh install.

use postgres::Client;
use vset_tests::postgres::PgCluster;

/// Every vset object with what matters about it, one line each, sorted.
fn schema_of(c: &mut Client) -> String {
    c.query_one(
        "SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
           SELECT 'function ' || p.oid::regprocedure::text || ' returns ' || pg_get_function_result(p.oid)
                  || ' secdef=' || p.prosecdef || ' strict=' || p.proisstrict || ' volatile=' || p.provolatile::text
                  || ' acl=' || coalesce(p.proacl::text, 'default')
                  || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
                  || ' body=' || md5(p.prosrc) || ' config=' || coalesce(p.proconfig::text, '')
             FROM pg_proc p WHERE p.pronamespace = 'vset'::regnamespace
           UNION ALL
           SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
                  || ' acl=' || coalesce(c.relacl::text, 'default') || ' options=' || coalesce(c.reloptions::text, '')
             FROM pg_class c WHERE c.relnamespace = 'vset'::regnamespace
           UNION ALL
           SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                  || ' notnull=' || a.attnotnull
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'vset'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
           UNION ALL
           SELECT 'policy ' || pol.polname || ' on ' || pol.polrelid::regclass || ' ' || pol.polcmd::text || ' '
                  || pg_get_expr(pol.polqual, pol.polrelid)
             FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
            WHERE c.relnamespace = 'vset'::regnamespace
           UNION ALL
           SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtfoid::regproc FROM pg_event_trigger
         ) s(x)",
        &[],
    )
    .expect("schema query")
    .get(0)
}

#[test]
fn update_from_0_1_0_keeps_everything_and_matches_a_fresh_install() {
    let pg = PgCluster::start().expect("start postgres");
    let mut admin = pg.client().expect("client");
    for db in ["fresh", "upgraded"] {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .expect("database");
    }
    let connect = |db: &str| Client::connect(&pg.url_for(db), postgres::NoTls).expect("connect");

    let mut old = connect("upgraded");
    old.batch_execute(
        "CREATE EXTENSION vset VERSION '0.1.0';
         CREATE TABLE users(id int PRIMARY KEY, name text NOT NULL);
         SELECT vset.track('users');
         INSERT INTO users VALUES (1, 'before'), (2, 'before');
         UPDATE users SET name = 'before, updated' WHERE id = 2;",
    )
    .expect("0.1.0 with data");
    let version = |c: &mut Client| -> String {
        c.query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'vset'",
            &[],
        )
        .expect("version")
        .get(0)
    };
    assert_eq!(version(&mut old), "0.1.0");
    let waiting_before: i64 = old
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("count")
        .get(0);
    assert_eq!(waiting_before, 3);

    old.batch_execute("ALTER EXTENSION vset UPDATE")
        .expect("ALTER EXTENSION vset UPDATE");
    assert_eq!(version(&mut old), "0.2.0");

    // Capture, claim and fill go on; nothing waiting was lost.
    old.batch_execute("INSERT INTO users VALUES (3, 'after'); DELETE FROM users WHERE id = 1;")
        .expect("writes after the update");
    old.batch_execute("BEGIN").expect("begin");
    let claimed: Vec<(String, String)> = old
        .query("SELECT cache_key, op FROM vset.claim(100)", &[])
        .expect("claim")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    old.batch_execute("COMMIT").expect("commit");
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        claimed,
        pairs(&[
            ("public.users:1", "set"),
            ("public.users:2", "set"),
            ("public.users:2", "set"),
            ("public.users:3", "set"),
            ("public.users:1", "del"),
        ])
    );
    let fill: String = old
        .query_one(
            "SELECT cache_key || ' ' || payload FROM vset.fill('users', '2')",
            &[],
        )
        .expect("fill")
        .get(0);
    assert_eq!(fill, r#"public.users:2 {"id":2,"name":"before, updated"}"#);
    let status: String = old
        .query_one("SELECT tbl::text || ' ' || mode FROM vset.status()", &[])
        .expect("status")
        .get(0);
    assert_eq!(status, "users set");
    let wakeup: String = old
        .query_one("SELECT vset.wakeup()", &[])
        .expect("wakeup")
        .get(0);
    assert_eq!(wakeup, "notify");

    let mut new = connect("fresh");
    new.batch_execute("CREATE EXTENSION vset")
        .expect("fresh install");
    assert_eq!(version(&mut new), "0.2.0");
    let (upgraded, fresh) = (schema_of(&mut old), schema_of(&mut new));
    if upgraded != fresh {
        let a: Vec<&str> = upgraded.lines().collect();
        let b: Vec<&str> = fresh.lines().collect();
        let only_upgraded: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
        let only_fresh: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
        panic!("upgraded and fresh schemas differ\nonly after the upgrade: {only_upgraded:#?}\nonly in a fresh install: {only_fresh:#?}");
    }
}
