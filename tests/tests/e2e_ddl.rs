//! DDL on tracked tables against a running system: PostgreSQL with the extension, a
//! relay, Redis with the module. Each case caches every row (the relay writes each
//! insert), runs one DDL statement, writes a little more, drains the outbox and then
//! runs `vset-verify` over every tracked table: no cached entry may be stale or
//! orphaned. Statements that bypass capture for good (disabling or dropping vset's
//! trigger, `SET UNLOGGED`) or would break every later write (dropping or renaming a
//! column the key or payload names) must be refused with a clear error instead.
//!
//! The table of cases is the one in pg-extension/README.md ("DDL on tracked tables").

use std::time::Duration;

use postgres::Client;
use vset_tests::postgres::db_error_text;
use vset_tests::stack::Stack;
use vset_verify::cache::{CacheTarget, DEFAULT_MODULE_TYPE};
use vset_verify::Options;

/// What a DDL statement must do.
enum Expect {
    /// It runs; afterwards the cache is consistent.
    Applied,
    /// It fails with this SQLSTATE and changes nothing.
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    /// Creates and tracks the table(s) and inserts rows (cached by the relay).
    setup: &'static str,
    ddl: &'static str,
    expect: Expect,
    /// Writes after the DDL (capture must still work).
    after: &'static str,
    /// `del` records the DDL itself may write (None: any number).
    dels: Option<i64>,
}

const CASES: &[Case] = &[
    Case {
        name: "ADD COLUMN, payload of every column",
        setup: "CREATE TABLE add_col(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('add_col');
                INSERT INTO add_col SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE add_col ADD COLUMN extra int NOT NULL DEFAULT 7",
        expect: Expect::Applied,
        after: "UPDATE add_col SET v = -v WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "DROP COLUMN, payload of every column",
        setup: "CREATE TABLE drop_col(id int PRIMARY KEY, v int NOT NULL, gone text);
                SELECT vset.track('drop_col');
                INSERT INTO drop_col SELECT g, g, 'x' FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE drop_col DROP COLUMN gone",
        expect: Expect::Applied,
        after: "UPDATE drop_col SET v = -v WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "RENAME COLUMN, payload of every column",
        setup: "CREATE TABLE rename_col(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('rename_col');
                INSERT INTO rename_col SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE rename_col RENAME COLUMN v TO w",
        expect: Expect::Applied,
        after: "UPDATE rename_col SET w = -w WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "ALTER COLUMN TYPE of a payload column",
        setup: "CREATE TABLE type_col(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('type_col');
                INSERT INTO type_col SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE type_col ALTER COLUMN v TYPE text",
        expect: Expect::Applied,
        after: "UPDATE type_col SET v = 'new' WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "ALTER COLUMN TYPE of the key column (its text changes)",
        setup: "CREATE TABLE type_key(k numeric PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('type_key');
                INSERT INTO type_key SELECT g + 0.50, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE type_key ALTER COLUMN k TYPE numeric(10, 1)",
        expect: Expect::Applied,
        after: "UPDATE type_key SET v = -v WHERE k < 5",
        dels: Some(20),
    },
    Case {
        name: "DETACH PARTITION",
        setup: "CREATE TABLE detach_p(id int PRIMARY KEY, v int NOT NULL) PARTITION BY RANGE (id);
                CREATE TABLE detach_p_a PARTITION OF detach_p FOR VALUES FROM (0) TO (100);
                CREATE TABLE detach_p_b PARTITION OF detach_p FOR VALUES FROM (100) TO (200);
                SELECT vset.track('detach_p');
                INSERT INTO detach_p SELECT g, g FROM generate_series(1, 10) g;
                INSERT INTO detach_p SELECT g, g FROM generate_series(101, 110) g;",
        ddl: "ALTER TABLE detach_p DETACH PARTITION detach_p_b",
        expect: Expect::Applied,
        after: "UPDATE detach_p SET v = -v WHERE id <= 5; UPDATE detach_p_b SET v = -v",
        dels: Some(10),
    },
    Case {
        name: "DROP TABLE of one partition",
        setup: "CREATE TABLE drop_p(id int PRIMARY KEY, v int NOT NULL) PARTITION BY RANGE (id);
                CREATE TABLE drop_p_a PARTITION OF drop_p FOR VALUES FROM (0) TO (100);
                CREATE TABLE drop_p_b PARTITION OF drop_p FOR VALUES FROM (100) TO (200);
                SELECT vset.track('drop_p');
                INSERT INTO drop_p SELECT g, g FROM generate_series(1, 10) g;
                INSERT INTO drop_p SELECT g, g FROM generate_series(101, 110) g;",
        ddl: "DROP TABLE drop_p_b",
        expect: Expect::Applied,
        after: "UPDATE drop_p SET v = -v WHERE id <= 5",
        dels: Some(10),
    },
    Case {
        name: "ADD COLUMN, explicit payload columns (nothing to do)",
        setup: "CREATE TABLE add_listed(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('add_listed', columns => ARRAY['id', 'v']);
                INSERT INTO add_listed SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE add_listed ADD COLUMN extra int; ALTER TABLE add_listed ALTER COLUMN extra TYPE bigint",
        expect: Expect::Applied,
        after: "UPDATE add_listed SET v = -v, extra = 1 WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "DISABLE TRIGGER vset_capture",
        setup: "CREATE TABLE disable_one(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('disable_one');
                INSERT INTO disable_one SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE disable_one DISABLE TRIGGER vset_capture",
        expect: Expect::Refused("55000"),
        after: "UPDATE disable_one SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "DISABLE TRIGGER ALL / USER",
        setup: "CREATE TABLE disable_all(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('disable_all');
                INSERT INTO disable_all SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE disable_all DISABLE TRIGGER USER",
        expect: Expect::Refused("55000"),
        after: "UPDATE disable_all SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "DISABLE TRIGGER on one partition",
        setup: "CREATE TABLE disable_p(id int PRIMARY KEY, v int NOT NULL) PARTITION BY RANGE (id);
                CREATE TABLE disable_p_a PARTITION OF disable_p FOR VALUES FROM (0) TO (100);
                SELECT vset.track('disable_p');
                INSERT INTO disable_p SELECT g, g FROM generate_series(1, 10) g;",
        ddl: "ALTER TABLE disable_p_a DISABLE TRIGGER ALL",
        expect: Expect::Refused("55000"),
        after: "UPDATE disable_p SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "ENABLE REPLICA TRIGGER vset_capture",
        setup: "CREATE TABLE replica_trig(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('replica_trig');
                INSERT INTO replica_trig SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE replica_trig ENABLE REPLICA TRIGGER vset_capture",
        expect: Expect::Refused("55000"),
        after: "UPDATE replica_trig SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "DROP TRIGGER vset_capture",
        setup: "CREATE TABLE drop_trig(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('drop_trig');
                INSERT INTO drop_trig SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "DROP TRIGGER vset_capture ON drop_trig",
        expect: Expect::Refused("2BP01"),
        after: "UPDATE drop_trig SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "ALTER TRIGGER vset_capture RENAME",
        setup: "CREATE TABLE rename_trig(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('rename_trig');
                INSERT INTO rename_trig SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TRIGGER vset_capture ON rename_trig RENAME TO x",
        expect: Expect::Refused("55000"),
        after: "UPDATE rename_trig SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "SET UNLOGGED",
        setup: "CREATE TABLE unlogged_later(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('unlogged_later');
                INSERT INTO unlogged_later SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE unlogged_later SET UNLOGGED",
        expect: Expect::Refused("0A000"),
        after: "UPDATE unlogged_later SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "DROP COLUMN named in the payload list",
        setup: "CREATE TABLE drop_listed(id int PRIMARY KEY, v int, note text);
                SELECT vset.track('drop_listed', columns => ARRAY['id', 'v']);
                INSERT INTO drop_listed SELECT g, g, 'n' FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE drop_listed DROP COLUMN v",
        expect: Expect::Refused("55000"),
        after: "UPDATE drop_listed SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "RENAME COLUMN of the key",
        setup: "CREATE TABLE rename_key(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('rename_key');
                INSERT INTO rename_key SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE rename_key RENAME COLUMN id TO uid",
        expect: Expect::Refused("55000"),
        after: "UPDATE rename_key SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "two ALTER TABLE subcommands: one del per row, not two",
        setup: "CREATE TABLE two_cmds(id int PRIMARY KEY, v int NOT NULL, gone int);
                SELECT vset.track('two_cmds');
                INSERT INTO two_cmds SELECT g, g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE two_cmds ADD COLUMN extra int, DROP COLUMN gone",
        expect: Expect::Applied,
        after: "UPDATE two_cmds SET v = -v WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "ALTER VIEW … RENAME COLUMN on a table",
        setup: "CREATE TABLE view_rename(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('view_rename');
                INSERT INTO view_rename SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER VIEW view_rename RENAME COLUMN v TO w",
        expect: Expect::Applied,
        after: "UPDATE view_rename SET w = -w WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "ADD COLUMN on the inheritance parent of a tracked table",
        setup: "CREATE TABLE inh_parent(id int NOT NULL, v int);
                CREATE TABLE inh_child(PRIMARY KEY (id)) INHERITS (inh_parent);
                SELECT vset.track('inh_child');
                INSERT INTO inh_child SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TABLE inh_parent ADD COLUMN extra int NOT NULL DEFAULT 3",
        expect: Expect::Applied,
        after: "UPDATE inh_child SET v = -v WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "RENAME COLUMN of a tracked table's key through an untracked parent",
        setup: "CREATE TABLE ren_parent(id int NOT NULL, v int) PARTITION BY RANGE (id);
                CREATE TABLE ren_child(id int NOT NULL, v int, PRIMARY KEY (id));
                SELECT vset.track('ren_child');
                INSERT INTO ren_child SELECT g, g FROM generate_series(1, 20) g;
                ALTER TABLE ren_parent ATTACH PARTITION ren_child FOR VALUES FROM (0) TO (100);",
        ddl: "ALTER TABLE ren_parent RENAME COLUMN id TO id2",
        expect: Expect::Refused("55000"),
        after: "UPDATE ren_child SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "CREATE OR REPLACE TRIGGER vset_capture",
        setup: "CREATE TABLE replace_trig(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('replace_trig');
                INSERT INTO replace_trig SELECT g, g FROM generate_series(1, 20) g;
                CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';",
        ddl: "CREATE OR REPLACE TRIGGER vset_capture AFTER INSERT OR UPDATE OR DELETE ON replace_trig FOR EACH ROW EXECUTE FUNCTION noop()",
        expect: Expect::Refused("55000"),
        after: "UPDATE replace_trig SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "ALTER TRIGGER vset_capture DEPENDS ON EXTENSION",
        setup: "CREATE TABLE depends_trig(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('depends_trig');
                INSERT INTO depends_trig SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "ALTER TRIGGER vset_capture ON depends_trig DEPENDS ON EXTENSION vset",
        expect: Expect::Refused("55000"),
        after: "UPDATE depends_trig SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "ALTER TYPE … RENAME VALUE of an enum key",
        setup: "CREATE TYPE mood AS ENUM ('happy', 'sad');
                CREATE TABLE enum_key(m mood PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('enum_key');
                INSERT INTO enum_key VALUES ('happy', 1), ('sad', 2);",
        ddl: "ALTER TYPE mood RENAME VALUE 'happy' TO 'glad'",
        expect: Expect::Refused("55000"),
        after: "UPDATE enum_key SET v = -v",
        dels: Some(0),
    },
    Case {
        name: "DROP TYPE … CASCADE dropping a payload column",
        setup: "CREATE TYPE color AS ENUM ('red', 'blue');
                CREATE TABLE drop_type(id int PRIMARY KEY, c color, v int NOT NULL);
                SELECT vset.track('drop_type');
                INSERT INTO drop_type SELECT g, 'red', g FROM generate_series(1, 20) g;",
        ddl: "DROP TYPE color CASCADE",
        expect: Expect::Refused("55000"),
        after: "UPDATE drop_type SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "CREATE UNLOGGED TABLE … PARTITION OF a tracked table",
        setup: "CREATE TABLE unlogged_p(id int PRIMARY KEY, v int NOT NULL) PARTITION BY RANGE (id);
                CREATE TABLE unlogged_p_a PARTITION OF unlogged_p FOR VALUES FROM (0) TO (100);
                SELECT vset.track('unlogged_p');
                INSERT INTO unlogged_p SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "CREATE UNLOGGED TABLE unlogged_p_b PARTITION OF unlogged_p FOR VALUES FROM (100) TO (200)",
        expect: Expect::Refused("0A000"),
        after: "UPDATE unlogged_p SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "ATTACH PARTITION of an unlogged table",
        setup: "CREATE TABLE attach_unlogged(id int PRIMARY KEY, v int NOT NULL) PARTITION BY RANGE (id);
                CREATE TABLE attach_unlogged_a PARTITION OF attach_unlogged FOR VALUES FROM (0) TO (100);
                SELECT vset.track('attach_unlogged');
                INSERT INTO attach_unlogged SELECT g, g FROM generate_series(1, 20) g;
                CREATE UNLOGGED TABLE attach_unlogged_b(id int PRIMARY KEY, v int NOT NULL);",
        ddl: "ALTER TABLE attach_unlogged ATTACH PARTITION attach_unlogged_b FOR VALUES FROM (100) TO (200)",
        expect: Expect::Refused("0A000"),
        after: "UPDATE attach_unlogged SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "TRUNCATE",
        setup: "CREATE TABLE trunc(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('trunc');
                INSERT INTO trunc SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "TRUNCATE trunc",
        expect: Expect::Refused("0A000"),
        after: "UPDATE trunc SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "DROP TABLE of a tracked table",
        setup: "CREATE TABLE dropped(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('dropped');
                INSERT INTO dropped SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "DROP TABLE dropped",
        expect: Expect::Refused("2BP01"),
        after: "UPDATE dropped SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "untrack, then track again",
        setup: "CREATE TABLE retracked(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('retracked');
                INSERT INTO retracked SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "SELECT vset.untrack('retracked'); UPDATE retracked SET v = v * 10; SELECT vset.track('retracked')",
        expect: Expect::Applied,
        after: "UPDATE retracked SET v = -v WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "track(…, replace => true) with another template",
        setup: "CREATE TABLE replaced(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('replaced');
                INSERT INTO replaced SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "SELECT vset.track('replaced', key_template => 'rep:{id}', replace => true)",
        expect: Expect::Applied,
        after: "UPDATE replaced SET v = -v WHERE id <= 5",
        dels: Some(20),
    },
    Case {
        name: "track(…, replace => true) with another channel only (nothing to do)",
        setup: "CREATE TABLE rechanneled(id int PRIMARY KEY, v int NOT NULL);
                SELECT vset.track('rechanneled');
                INSERT INTO rechanneled SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "SELECT vset.track('rechanneled', channel => 'other', replace => true)",
        expect: Expect::Applied,
        after: "UPDATE rechanneled SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
    Case {
        name: "track of an unlogged table",
        setup: "CREATE UNLOGGED TABLE unlogged_t(id int PRIMARY KEY, v int NOT NULL);
                INSERT INTO unlogged_t SELECT g, g FROM generate_series(1, 20) g;",
        ddl: "SELECT vset.track('unlogged_t')",
        expect: Expect::Refused("0A000"),
        after: "UPDATE unlogged_t SET v = -v WHERE id <= 5",
        dels: Some(0),
    },
];

fn outbox_len(c: &mut Client) -> i64 {
    c.query_one("SELECT count(*) FROM vset.outbox", &[])
        .expect("outbox")
        .get(0)
}

fn verify(stack: &mut Stack) -> Result<vset_verify::Report, String> {
    let options = Options {
        postgres: stack.pg.url(),
        cache: CacheTarget::Single(stack.redis().url()),
        sample: None,
        // The outbox is drained first (the relay commits a claim after Redis
        // answered), so nothing is in flight: no grace period to wait out.
        grace: Duration::ZERO,
        fetch_size: 500,
        module_type: DEFAULT_MODULE_TYPE.to_string(),
        max_recheck: 10_000,
        skip_orphans: false,
    };
    vset_verify::run(&options).map_err(|e| e.to_string())
}

#[test]
fn every_ddl_case_leaves_the_cache_consistent_or_is_refused() {
    let mut stack = Stack::standalone(0).expect("stack");
    stack.spawn_relay(&[]).expect("relay");
    stack.wait_warm(Duration::from_secs(30)).expect("warm");
    let mut c = stack.pg.client().expect("client");
    let mut failures = Vec::new();
    let mut inconsistent: Vec<String> = Vec::new();
    for case in CASES {
        let started = std::time::Instant::now();
        c.batch_execute(case.setup)
            .unwrap_or_else(|e| panic!("{}: setup: {}", case.name, db_error_text(&e)));
        stack.drain(Duration::from_secs(30)).expect("drain");
        // Hold the relay off while the DDL runs, to count what it wrote.
        c.batch_execute("BEGIN").expect("begin");
        let result = c.batch_execute(case.ddl);
        let outcome = match (&case.expect, &result) {
            (Expect::Applied, Ok(())) => None,
            (Expect::Applied, Err(e)) => Some(format!("refused: {}", db_error_text(e))),
            (Expect::Refused(code), Err(e)) => {
                let got = e.code().map(|c| c.code().to_string()).unwrap_or_default();
                (got != *code)
                    .then(|| format!("refused with {}, expected {code}", db_error_text(e)))
            }
            (Expect::Refused(code), Ok(())) => Some(format!("applied, expected refusal {code}")),
        };
        if result.is_err() {
            c.batch_execute("ROLLBACK").expect("rollback");
        } else {
            let written = outbox_len(&mut c);
            c.batch_execute("COMMIT").expect("commit");
            if let Some(expected) = case.dels {
                if written != expected {
                    failures.push(format!(
                        "{}: the DDL wrote {written} outbox record(s), expected {expected}",
                        case.name
                    ));
                }
            }
        }
        if let Some(problem) = outcome {
            failures.push(format!("{}: {problem}", case.name));
        }
        if let Err(e) = c.batch_execute(case.after) {
            failures.push(format!(
                "{}: writes after the DDL failed: {}",
                case.name,
                db_error_text(&e)
            ));
        }
        stack.drain(Duration::from_secs(30)).expect("drain");
        let report = match verify(&mut stack) {
            Ok(report) => report,
            Err(e) => {
                failures.push(format!("{}: vset-verify failed: {e}", case.name));
                break; // it would fail on this table from now on
            }
        };
        eprintln!("{}: {:?}", case.name, started.elapsed());
        for (table, counts) in &report.tables {
            if counts.bad() > 0 && !inconsistent.contains(table) {
                inconsistent.push(table.clone());
                failures.push(format!(
                    "{}: vset-verify found {table} inconsistent: {counts:?} (e.g. {:?})",
                    case.name,
                    report
                        .examples
                        .iter()
                        .filter(|e| e.contains(&format!("public.{table}:")))
                        .take(3)
                        .collect::<Vec<_>>()
                ));
            }
        }
        if report.consistent() {
            // Done with this case's tables: untracking deletes their cached keys, and
            // keeps every later check to the table under test (vset-verify costs a
            // scan of Redis per tracked table).
            c.batch_execute(
                "SELECT vset.untrack(tbl) FROM vset.tracked WHERE tbl <> 'public.users'::regclass",
            )
            .unwrap_or_else(|e| panic!("{}: untrack: {}", case.name, db_error_text(&e)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
