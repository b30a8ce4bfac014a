//! Short versions of every chaos cell (a few seconds of faults each), so CI keeps
//! the matrix honest. `make chaos` runs the same cells longer (`vset-chaos`).
//!
//! Each test asserts what the matrix promises: writes happened, the fault was
//! really injected, and after convergence `vset-verify` finds no stale and no
//! orphaned key. Cells run one at a time (each starts its own PostgreSQL,
//! redis-server and relays; in parallel on two cores they would mostly measure
//! the machine).

use std::sync::Mutex;

use vset_tests::chaos::{run_cell, Cell, CellRow, CellSize};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn cell(cell: Cell) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let row = run_cell(cell, &CellSize::short()).unwrap_or_else(|e| panic!("{}: {e}", cell.name()));
    println!(
        "{}\n{}\nverify: {:?}; prober rounds {} (failed {})",
        CellRow::markdown_header(),
        row.markdown(),
        row.verify,
        row.probes,
        row.probe_errors
    );
    assert!(row.writes > 0, "{}: no writes happened", cell.name());
    assert!(row.faults > 0, "{}: no fault was injected", cell.name());
    assert_eq!(
        row.stale,
        0,
        "{}: {} stale/orphaned keys after convergence ({:?})",
        cell.name(),
        row.stale,
        row.verify
    );
    assert!(
        row.verify.checked > 0,
        "{}: verify checked nothing",
        cell.name()
    );
}

#[test]
fn chaos_relay_sigkill() {
    cell(Cell::RelaySigkill);
}

#[test]
fn chaos_two_relays_backlog() {
    cell(Cell::TwoRelaysBacklog);
}

#[test]
fn chaos_redis_cold_restart() {
    cell(Cell::RedisColdRestart);
}

#[test]
fn chaos_redis_aof_restart() {
    cell(Cell::RedisAofRestart);
}

#[test]
fn chaos_eviction_out_of_order() {
    cell(Cell::EvictionOutOfOrder);
}

#[test]
fn chaos_tombstone_expiry() {
    cell(Cell::TombstoneExpiry);
}

#[test]
fn chaos_postgres_restart() {
    cell(Cell::PostgresRestart);
}

#[test]
fn chaos_relay_sigstop() {
    cell(Cell::RelaySigstop);
}

#[test]
fn chaos_fill_race() {
    cell(Cell::FillRace);
}
