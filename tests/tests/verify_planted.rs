//! vset-verify against planted inconsistencies, on a real PostgreSQL (extension,
//! tracked table) and a real redis-server (module): it must find a planted stale
//! entry and a planted orphan, accept a planted miss and a tombstone of a deleted
//! row, let a mismatch that resolves within the grace period go, and exit with the
//! documented status codes.

use std::process::Command;
use std::time::Duration;

use vset_tests::paths;
use vset_tests::postgres::PgCluster;
use vset_tests::redis::{RedisOptions, RedisServer};
use vset_verify::cache::{CacheTarget, DEFAULT_MODULE_TYPE};
use vset_verify::{Counts, Options};

/// users 1..=5 tracked; 1..=4 cached through the real read path (vset.fill + VSET),
/// row 5 deleted and tombstoned, so the cache starts exactly consistent.
fn world() -> (PgCluster, RedisServer) {
    let pg = PgCluster::start().expect("postgres");
    pg.create_extension().expect("extension");
    pg.execute(
        "CREATE TABLE users(id int PRIMARY KEY, name text NOT NULL, email text);
         SELECT vset.track('users');
         INSERT INTO users VALUES (1, 'ada', 'a@x'), (2, 'bob', NULL), (3, 'cé', 'c@x'),
                                  (4, 'dan', 'd@x'), (5, 'eve', 'e@x');",
    )
    .expect("schema");
    let redis = RedisServer::start(RedisOptions::warm()).expect("redis");
    let mut c = pg.client().expect("client");
    let mut r = redis.client().expect("redis client");
    for id in 1..=4 {
        let row = c
            .query_one(
                "SELECT cache_key, version, payload FROM vset.fill('users', $1::text)",
                &[&id.to_string()],
            )
            .expect("fill");
        let (key, version, payload): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
        let stored: i64 = redis::cmd("VSET")
            .arg(&key)
            .arg(version)
            .arg(&payload)
            .query(&mut r)
            .expect("VSET");
        assert_eq!(stored, 1, "fill of {key} must store");
    }
    c.batch_execute("DELETE FROM users WHERE id = 5")
        .expect("delete");
    let v: i64 = c
        .query_one("SELECT vset.current_version()", &[])
        .expect("version")
        .get(0);
    let _: i64 = redis::cmd("VDEL")
        .arg("public.users:5")
        .arg(v)
        .query(&mut r)
        .expect("VDEL");
    (pg, redis)
}

fn options(pg: &PgCluster, redis: &RedisServer, grace: Duration) -> Options {
    Options {
        postgres: pg.url(),
        cache: CacheTarget::Single(redis.url()),
        sample: None,
        grace,
        fetch_size: 2, // several portal round trips even on five rows
        module_type: DEFAULT_MODULE_TYPE.to_string(),
        max_recheck: 1000,
        skip_orphans: false,
    }
}

fn vset(redis: &RedisServer, key: &str, version: u64, value: &str) {
    let stored: i64 = redis::cmd("VSET")
        .arg(key)
        .arg(version)
        .arg(value)
        .query(&mut redis.client().expect("client"))
        .expect("VSET");
    assert_eq!(stored, 1, "planting {key} must store");
}

#[test]
fn consistent_cache_is_reported_consistent() {
    let (pg, redis) = world();
    let report = vset_verify::run(&options(&pg, &redis, Duration::ZERO)).expect("verify runs");
    assert_eq!(report.tables.len(), 1);
    assert_eq!(report.tables[0].0, "users");
    assert_eq!(
        report.total(),
        Counts {
            checked: 4,
            matched: 4,
            ..Default::default()
        }
    );
    assert!(report.consistent());
}

#[test]
fn finds_planted_stale_and_orphan_and_accepts_planted_miss() {
    let (pg, redis) = world();
    // Stale: an old payload for row 2, at a version newer than anything real.
    vset(
        &redis,
        "public.users:2",
        1_000_000,
        r#"{"id":2,"name":"old bob","email":null}"#,
    );
    // Orphan: a value for a row that does not exist.
    vset(
        &redis,
        "public.users:99",
        1_000_000,
        r#"{"id":99,"name":"ghost","email":null}"#,
    );
    // Miss: row 4 is not cached at all (DEL raises its floor; that is fine).
    let _: i64 = redis::cmd("DEL")
        .arg("public.users:4")
        .query(&mut redis.client().expect("client"))
        .expect("DEL");

    let report =
        vset_verify::run(&options(&pg, &redis, Duration::from_millis(200))).expect("verify runs");
    assert_eq!(
        report.total(),
        Counts {
            checked: 5,  // 4 live rows + 1 cached key without a row
            matched: 2,  // 1 and 3
            missing: 1,  // 4
            stale: 1,    // 2
            orphaned: 1, // 99
            settled: 0,
        },
        "{}",
        report.render_text()
    );
    assert!(!report.consistent());
    let text = report.render_text();
    assert!(text.contains("stale public.users:2"), "{text}");
    assert!(text.contains("orphaned public.users:99"), "{text}");
    assert!(text.contains("INCONSISTENT"), "{text}");
}

#[test]
fn a_miss_alone_is_consistent() {
    let (pg, redis) = world();
    let _: i64 = redis::cmd("DEL")
        .arg("public.users:1")
        .query(&mut redis.client().expect("client"))
        .expect("DEL");
    let report = vset_verify::run(&options(&pg, &redis, Duration::ZERO)).expect("verify runs");
    assert_eq!(
        report.total(),
        Counts {
            checked: 4,
            matched: 3,
            missing: 1,
            ..Default::default()
        }
    );
    assert!(report.consistent());
}

#[test]
fn mismatch_that_settles_within_grace_is_not_stale() {
    let (pg, redis) = world();
    // The row changes; its new value reaches Redis a second later (a relay's lag),
    // while verify waits out its grace period. On a stalled machine verify may start
    // so late that the write lands before its first look (nothing to settle): then
    // the scene is played again with a newer change.
    let mut last = None;
    for attempt in 0..3 {
        pg.execute(&format!(
            "UPDATE users SET name = 'bobby-{attempt}' WHERE id = 2"
        ))
        .expect("update");
        let mut c = pg.client().expect("client");
        let row = c
            .query_one(
                "SELECT cache_key, version, payload FROM vset.fill('users', '2')",
                &[],
            )
            .expect("fill");
        let (key, version, payload): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
        let url = redis.url();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            let mut r = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .expect("redis");
            let _: i64 = redis::cmd("VSET")
                .arg(&key)
                .arg(version)
                .arg(&payload)
                .query(&mut r)
                .expect("late VSET");
        });
        let report =
            vset_verify::run(&options(&pg, &redis, Duration::from_secs(6))).expect("verify runs");
        late.join().expect("late writer");
        let t = report.total();
        let writer_won = (t.matched, t.stale, t.settled) == (4, 0, 0);
        last = Some(report);
        if !writer_won {
            break;
        }
    }
    let report = last.expect("at least one attempt");
    let t = report.total();
    assert_eq!(
        (t.matched, t.stale, t.settled),
        (4, 0, 1),
        "{}",
        report.render_text()
    );
    assert!(report.consistent());
}

#[test]
fn sample_mode_prints_nines() {
    let (pg, redis) = world();
    let mut opts = options(&pg, &redis, Duration::from_millis(100));
    opts.sample = Some(3);
    let report = vset_verify::run(&opts).expect("verify runs");
    let t = report.total();
    assert_eq!(t.bad(), 0);
    // 3 sampled rows + up to 3 random cached keys (4 live values and a tombstone exist).
    assert!((3..=6).contains(&t.checked), "{}", report.render_text());
    let line = report.nines_line();
    assert!(
        line.contains("nines consistent after 0.1 seconds"),
        "{line}"
    );
}

/// The binary: exit 1 with stale/orphaned, 0 when only a miss remains, 2 on bad options.
#[test]
fn binary_exit_codes() {
    let bin = paths::target_dir().join("debug/vset-verify");
    assert!(
        bin.exists(),
        "{} missing: build it with `cargo build -p vset-verify` (make test-verify does)",
        bin.display()
    );
    let (pg, redis) = world();
    let run = |extra: &[&str]| {
        Command::new(&bin)
            .args([
                "--postgres",
                &pg.url(),
                "--redis",
                &redis.url(),
                "--grace",
                "100ms",
            ])
            .args(extra)
            .output()
            .expect("vset-verify runs")
    };
    let ok = run(&[]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("CONSISTENT: 0 stale, 0 orphaned"));

    vset(
        &redis,
        "public.users:3",
        1_000_000,
        r#"{"id":3,"name":"stale","email":null}"#,
    );
    let bad = run(&["--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json output");
    assert_eq!(json["total"]["stale"], 1);
    assert_eq!(json["consistent"], false);

    let usage = run(&["--fetch-size", "0"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--fetch-size"));
}

/// A composite key with separators inside the values, and a payload restricted to
/// some columns: verify renders keys and payloads exactly as the extension does.
#[test]
fn composite_keys_and_column_subsets_match_the_extension() {
    let pg = PgCluster::start().expect("postgres");
    pg.create_extension().expect("extension");
    pg.execute(
        "CREATE TABLE members(org text, uid int, role text, secret text, PRIMARY KEY (org, uid));
         SELECT vset.track('members', columns => ARRAY['org', 'uid', 'role']);
         INSERT INTO members VALUES ('a:b', 1, 'admin', 's1'), ('a', 2, 'user', 's2'), ('x\\y', 3, 'r', 's3');",
    )
    .expect("schema");
    let redis = RedisServer::start(RedisOptions::warm()).expect("redis");
    let mut c = pg.client().expect("client");
    let mut r = redis.client().expect("redis client");
    let rows = c
        .query("SELECT org, uid::text FROM members ORDER BY uid", &[])
        .expect("rows");
    for row in rows {
        let (org, uid): (String, String) = (row.get(0), row.get(1));
        let f = c
            .query_one(
                "SELECT cache_key, version, payload FROM vset.fill('members', $1, $2)",
                &[&org, &uid],
            )
            .expect("fill");
        let payload: String = f.get(2);
        assert!(
            !payload.contains("secret"),
            "payload leaks a column: {payload}"
        );
        let _: i64 = redis::cmd("VSET")
            .arg(f.get::<_, String>(0))
            .arg(f.get::<_, i64>(1))
            .arg(&payload)
            .query(&mut r)
            .expect("VSET");
    }
    let report = vset_verify::run(&options(&pg, &redis, Duration::ZERO)).expect("verify runs");
    assert_eq!(
        report.total(),
        Counts {
            checked: 3,
            matched: 3,
            ..Default::default()
        },
        "{}",
        report.render_text()
    );
}

/// `--redis-cluster`: reads routed by key, orphans found by scanning every primary.
#[test]
fn cluster_finds_planted_stale_and_orphan() {
    use vset_tests::redis::RedisCluster;
    let pg = PgCluster::start().expect("postgres");
    pg.create_extension().expect("extension");
    pg.execute(
        "CREATE TABLE users(id int PRIMARY KEY, name text NOT NULL);
         SELECT vset.track('users');
         INSERT INTO users SELECT i, 'user ' || i FROM generate_series(1, 30) i;",
    )
    .expect("schema");
    let cluster = RedisCluster::start_with(3, RedisOptions::warm()).expect("cluster");
    let mut routed = redis::cluster::ClusterClient::new(cluster.urls())
        .and_then(|c| c.get_connection())
        .expect("cluster client");
    let mut c = pg.client().expect("client");
    for id in 1..=30 {
        let row = c
            .query_one(
                "SELECT cache_key, version, payload FROM vset.fill('users', $1::text)",
                &[&id.to_string()],
            )
            .expect("fill");
        let _: i64 = redis::cmd("VSET")
            .arg(row.get::<_, String>(0))
            .arg(row.get::<_, i64>(1))
            .arg(row.get::<_, String>(2))
            .query(&mut routed)
            .expect("VSET");
    }
    let plant = |con: &mut redis::cluster::ClusterConnection, key: &str, value: &str| {
        let stored: i64 = redis::cmd("VSET")
            .arg(key)
            .arg(1_000_000)
            .arg(value)
            .query(con)
            .expect("VSET");
        assert_eq!(stored, 1);
    };
    plant(&mut routed, "public.users:7", r#"{"id":7,"name":"old"}"#);
    plant(
        &mut routed,
        "public.users:404",
        r#"{"id":404,"name":"ghost"}"#,
    );
    plant(
        &mut routed,
        "public.users:405",
        r#"{"id":405,"name":"ghost"}"#,
    );
    let report = vset_verify::run(&Options {
        cache: CacheTarget::Cluster(cluster.urls()),
        ..options(&pg, &cluster.nodes()[0], Duration::from_millis(100))
    })
    .expect("verify runs");
    assert_eq!(
        report.total(),
        Counts {
            checked: 32,
            matched: 29,
            stale: 1,
            orphaned: 2,
            ..Default::default()
        },
        "{}",
        report.render_text()
    );
}
