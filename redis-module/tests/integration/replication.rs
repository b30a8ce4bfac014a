//! Replication: accepted writes and floors reach replicas, which apply what the
//! master decided even when they would be cold themselves.

use redis::Value;
use vset_tests::redis::{RedisOptions, RedisServer};

use crate::common::*;

#[test]
fn replica_sees_master_writes_and_floors() {
    let master = RedisServer::start(RedisOptions::new()).unwrap(); // cold start on
    let replica = RedisServer::start(RedisOptions::new()).unwrap(); // cold, empty
    let mut m = master.client().unwrap();
    raise_floor(&mut m, "3");
    assert_eq!(vset(&mut m, "before-sync", "4", "b"), 1);
    replica.replica_of(&master).unwrap();
    let mut r = replica.client().unwrap();
    // The full sync carried the master's warm state and floors.
    assert_eq!(vfloor(&mut r), (0, Value::Int(3), 65_536));
    assert_eq!(vget_int(&mut r, "before-sync"), (Some("b".into()), 4));

    assert_eq!(vset(&mut m, "a", "5", "x"), 1);
    assert_eq!(vset(&mut m, "a", "4", "stale"), 0);
    assert_eq!(vset_with(&mut m, "ttl", "6", "t", &["EX", "1000"]), 1);
    assert_eq!(vdel(&mut m, "c", "7"), 1);
    assert_eq!(vset(&mut m, "d", "50", "z"), 1);
    let _: i64 = redis::cmd("DEL").arg("d").query(&mut m).unwrap();
    raise_floor(&mut m, "20");
    master.wait_for_replicas(1).unwrap();

    assert_eq!(vget_int(&mut r, "a"), (Some("x".into()), 5));
    assert_eq!(vget_int(&mut r, "ttl"), (Some("t".into()), 6));
    let m_at: i64 = redis::cmd("PEXPIRETIME").arg("ttl").query(&mut m).unwrap();
    let r_at: i64 = redis::cmd("PEXPIRETIME").arg("ttl").query(&mut r).unwrap();
    assert_eq!(r_at, m_at, "same absolute expiry on the replica");
    assert_eq!(vget_int(&mut r, "c"), (None, 7));
    let m_at: i64 = redis::cmd("PEXPIRETIME").arg("c").query(&mut m).unwrap();
    let r_at: i64 = redis::cmd("PEXPIRETIME").arg("c").query(&mut r).unwrap();
    assert!(m_at > 0);
    assert_eq!(r_at, m_at, "same tombstone expiry on the replica");
    assert_eq!(exists(&mut r, "d"), 0);
    assert_eq!(
        vfloor(&mut r),
        vfloor(&mut m),
        "floors match (d's 50, VFLOOR 20)"
    );
    assert_eq!(vfloor(&mut r).1, Value::Int(50));
    // DEBUG DIGEST compares whole datasets: equal, and it sees vset values.
    let digest = |con: &mut redis::Connection| -> String {
        redis::cmd("DEBUG").arg("DIGEST").query(con).unwrap()
    };
    assert_eq!(
        digest(&mut r),
        digest(&mut m),
        "master and replica digest alike"
    );
    let before = digest(&mut m);
    assert_eq!(
        vset(&mut m, "a", "60", "x"),
        1,
        "same payload, newer version"
    );
    master.wait_for_replicas(1).unwrap();
    assert_ne!(
        digest(&mut m),
        before,
        "a version change shows in the digest"
    );
    assert_eq!(digest(&mut r), digest(&mut m));

    // Replicas refuse writes from clients, floors included.
    let e = vset_err(&mut r, "a", "9", "no");
    assert!(e.starts_with("READONLY"), "{e}");
    let e = err(redis::cmd("VFLOOR").arg("99").query(&mut r));
    assert!(e.starts_with("READONLY"), "{e}");
    assert_eq!(vfloor(&mut r).1, Value::Int(50));

    // After promotion the former replica decides by the floors it received.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut r)
        .unwrap();
    assert_eq!(vset(&mut r, "d", "50", "late"), 0);
    assert_eq!(vset(&mut r, "a", "5", "dup"), 0);
    assert_eq!(vset(&mut r, "a", "61", "new"), 1);
}

#[test]
fn flush_on_master_raises_replica_floors() {
    let master = warm_server();
    let replica = RedisServer::start(RedisOptions::new()).unwrap();
    replica.replica_of(&master).unwrap();
    let mut m = master.client().unwrap();
    assert_eq!(vset(&mut m, "a", "30", "x"), 1);
    let _: () = redis::cmd("FLUSHALL").query(&mut m).unwrap();
    master.wait_for_replicas(1).unwrap();
    let mut r = replica.client().unwrap();
    assert_eq!(vfloor(&mut r).1, Value::Int(30));
    assert_eq!(vfloor(&mut r), vfloor(&mut m));
}
