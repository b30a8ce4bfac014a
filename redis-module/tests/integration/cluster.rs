//! A 3-master Redis Cluster on loopback routes VSET/VGET/VDEL by key.

use vset_tests::redis::{RedisCluster, RedisOptions};

use crate::common::*;

#[test]
fn cluster_routes_vset_by_key() {
    let cluster = RedisCluster::start_with(3, RedisOptions::warm()).unwrap();
    assert_eq!(cluster.urls().len(), 3);
    let mut seen_ports = std::collections::BTreeSet::new();
    for i in 0..30 {
        let key = format!("user:{i}");
        let owner = cluster.node_for_key(&key).unwrap();
        seen_ports.insert(owner.port());
        for node in cluster.nodes() {
            let mut con = node.client().unwrap();
            if node.port() == owner.port() {
                assert_eq!(vset(&mut con, &key, "5", "v"), 1, "{key}");
                assert_eq!(vset(&mut con, &key, "4", "old"), 0, "{key}");
                assert_eq!(vget_int(&mut con, &key), (Some("v".into()), 5));
                assert_eq!(vdel(&mut con, &key, "6"), 1);
            } else {
                for cmd in [
                    redis::cmd("VSET").arg(&key).arg("5").arg("v").clone(),
                    redis::cmd("VGET").arg(&key).clone(),
                    redis::cmd("VDEL").arg(&key).arg("6").clone(),
                ] {
                    let e = err(cmd.query(&mut con));
                    assert!(e.contains("MOVED"), "{key}: {e}");
                    assert!(
                        e.contains(&format!("127.0.0.1:{}", owner.port())),
                        "{key}: {e}"
                    );
                }
            }
        }
    }
    assert_eq!(seen_ports.len(), 3, "keys spread over all masters");
}
