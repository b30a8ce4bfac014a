//! End to end on a 3-node Redis Cluster (loopback): every node starts cold, the
//! relay must end the cold start on *each* primary, route every key to its slot's
//! node, and converge exactly. Reference relay only (`--redis-cluster`).

use std::time::Duration;

use vset_tests::stack::Stack;
use vset_tests::workload::WorkloadSpec;

#[test]
fn three_node_cluster_converges_exactly() {
    let mut stack = Stack::cluster(3, 300).expect("cluster stack");
    if !stack.relay_command.is_reference() {
        eprintln!(
            "SKIPPED: {} has no --redis-cluster",
            stack.relay_command.describe()
        );
        return;
    }
    // spawn_relay waits until every node has left cold state (VFLOOR on all three).
    stack.spawn_relay(&["--batch-size", "200"]).expect("relay");
    assert!(stack.is_warm().expect("VFLOOR on every node"));

    let writers = stack.workload(&WorkloadSpec {
        writers: 6,
        keys: 300,
        pace: None,
        seed: 3,
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(writers.wait_for_commits(300, Duration::from_secs(30)));
    let stats = writers.stop();
    assert!(stats.commits >= 300, "{stats:?}");
    stack.drain(Duration::from_secs(60)).expect("drained");

    let report = stack.check().expect("check");
    eprintln!("cluster: {}", report.summary());
    report.assert_exact(&format!("3-node cluster\n{}", stack.relay_logs(3000)));

    // The keys really are spread over the three nodes.
    let vset_cluster = match &stack.cache {
        vset_tests::stack::Cache::Cluster(c) => c,
        vset_tests::stack::Cache::Standalone(_) => unreachable!(),
    };
    for node in vset_cluster.nodes() {
        let mut con = node.client().expect("node");
        let keys: i64 = redis::cmd("DBSIZE").query(&mut con).expect("DBSIZE");
        assert!(keys > 0, "node {} holds no key", node.port());
    }
}
