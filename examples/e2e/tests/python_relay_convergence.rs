//! The relay's end-to-end convergence scenario (as `tests/tests/e2e_convergence.rs`
//! runs it for vset-relay: the shared [`Stack`], its writer workload, and the key by
//! key comparison against the audit trigger's record of every change's version)
//! with `examples/python-relay/relay.py` as the relay, one, two and four at once.
//!
//! One difference, on purpose: the stack's module starts cold and the Python
//! interpreter starts slower than the Rust binary, so the workload only begins once
//! a relay has set the floor; keys whose last change is at or below that floor are
//! allowed to miss (invariant 4: a miss, never stale), every later one must be exact.

mod common;

use common::*;
use vset_tests::relay::RelayCommand;
use vset_tests::stack::Stack;
use vset_tests::workload::WorkloadSpec;

const KEYS: i32 = 200;
/// Commits the workload must reach (a count, not a duration: slow machines just
/// take longer).
const COMMITS: u64 = 1500;

fn converge_with_python_relays(relays: usize) {
    if let Some(reason) = skip_reason("VSET_SKIP_PYTHON_EXAMPLE") {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    // Stack takes its relay from VSET_E2E_RELAY (set by `make test-examples`), else
    // it wants the vset-relay binary; the command is set explicitly below anyway.
    let mut stack = Stack::standalone(KEYS).expect("stack (run via `make test-examples`)");
    stack.relay_command = RelayCommand::new(
        python(),
        vec![example_dir("python-relay")
            .join("relay.py")
            .display()
            .to_string()],
    )
    .env("PYTHONUNBUFFERED", "1");
    for _ in 0..relays {
        stack
            .spawn_relay(&["--batch-size", "100"])
            .expect("spawn relay.py");
    }
    eventually("a relay to set the floor of the cold module", || {
        vfloor(stack.redis()).0 == 0
    });
    let floor = vfloor(stack.redis()).1;

    let writers = stack.workload(&WorkloadSpec {
        writers: 8,
        keys: KEYS,
        pace: None,
        seed: relays as u64,
    });
    let reached = writers.wait_for_commits(COMMITS, PATIENCE);
    let stats = writers.stop();
    assert!(
        reached,
        "the workload must reach {COMMITS} commits ({stats:?})"
    );
    stack.drain(PATIENCE).expect("outbox drained");

    let report = stack.check().expect("compare Redis with PostgreSQL");
    let context = format!("{relays} Python relay(s)\n{}", stack.relay_logs(2000));
    report.assert_no_stale_misses_below(floor, &context);
    assert!(
        report.exact > 0 && report.deleted > 0,
        "the workload must leave both live and deleted keys: {report:?}"
    );
    for relay in &mut stack.relays {
        assert!(
            relay.is_running(),
            "{} died:\n{}",
            relay.name(),
            relay.log()
        );
        assert!(
            !relay.log().contains("Traceback"),
            "{} raised:\n{}",
            relay.name(),
            relay.log()
        );
    }
}

#[test]
fn many_writers_one_python_relay_converge() {
    converge_with_python_relays(1);
}

#[test]
fn two_python_relays_share_the_outbox_and_converge() {
    converge_with_python_relays(2);
}

#[test]
fn four_python_relays_share_the_outbox_and_converge() {
    converge_with_python_relays(4);
}
