//! Short versions of every chaos cell (a few seconds of faults each), so CI keeps
//! the matrix honest. `make chaos` runs the same cells longer (`vset-chaos`).
//!
//! Each cell runs twice. Against the real module it must end with every key at
//! exactly its last committed payload and version (or a miss where the fault
//! forgets keys), warm after a final touch, with no regressed value seen by the
//! prober, having counted the event it is named for and refused every late write
//! of its staged final round. Its control breaks the one protection the fault
//! targets and must find stale entries: a cell whose control passes tests
//! nothing. Cells run one at a time (each starts its own PostgreSQL,
//! redis-server and relays; in parallel on two cores they would mostly measure
//! the machine).

use std::sync::Mutex;

use vset_tests::chaos::{run_variant, Cell, CellRow, CellSize, Variant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(cell: Cell, variant: Variant) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let row = run_variant(cell, &CellSize::short(), variant)
        .unwrap_or_else(|e| panic!("{} ({variant:?}): {e}", cell.name()));
    println!(
        "{}\n{}\nverify: {:?}; exact: {:?}; warm: {:?}; staged: {:?}; prober rounds {} (failed {}), regressions {} ({} ms stale)",
        CellRow::markdown_header(),
        row.markdown(cell.event(), None),
        row.verify,
        row.exact,
        row.warm,
        row.staged,
        row.probes,
        row.probe_errors,
        row.regressions,
        row.time_stale.as_millis()
    );
    let problems = row.problems();
    assert!(
        problems.is_empty(),
        "{} ({variant:?}):\n- {}",
        cell.name(),
        problems.join("\n- ")
    );
}

macro_rules! cells {
    ($($name:ident, $control:ident => $cell:expr;)*) => {$(
        #[test]
        fn $name() {
            run($cell, Variant::Real);
        }

        #[test]
        fn $control() {
            run($cell, Variant::Control);
        }
    )*};
}

cells! {
    chaos_relay_sigkill, chaos_relay_sigkill_control => Cell::RelaySigkill;
    chaos_two_relays_backlog, chaos_two_relays_backlog_control => Cell::TwoRelaysBacklog;
    chaos_redis_cold_restart, chaos_redis_cold_restart_control => Cell::RedisColdRestart;
    chaos_redis_aof_restart, chaos_redis_aof_restart_control => Cell::RedisAofRestart;
    chaos_eviction_out_of_order, chaos_eviction_out_of_order_control => Cell::EvictionOutOfOrder;
    chaos_tombstone_expiry, chaos_tombstone_expiry_control => Cell::TombstoneExpiry;
    chaos_postgres_restart, chaos_postgres_restart_control => Cell::PostgresRestart;
    chaos_relay_sigstop, chaos_relay_sigstop_control => Cell::RelaySigstop;
    chaos_fill_race, chaos_fill_race_control => Cell::FillRace;
}
