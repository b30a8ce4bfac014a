//! The cells of the matrix. Every cell: start a world, start its relays and the
//! workload, inject the fault until the time is up, stop the writers, clear the
//! fault, wait until the outbox is empty, run `vset-verify`.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::workload::{Workload, WorkloadStats};
use super::world::World;
use super::{CellRow, CellSize, ChaosError};
use crate::redis::{parse_info_field, RedisOptions};

/// The cells, in the order of issue 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    RelaySigkill,
    TwoRelaysBacklog,
    RedisColdRestart,
    RedisAofRestart,
    EvictionOutOfOrder,
    TombstoneExpiry,
    PostgresRestart,
    RelaySigstop,
    FillRace,
}

impl Cell {
    pub const ALL: [Cell; 9] = [
        Cell::RelaySigkill,
        Cell::TwoRelaysBacklog,
        Cell::RedisColdRestart,
        Cell::RedisAofRestart,
        Cell::EvictionOutOfOrder,
        Cell::TombstoneExpiry,
        Cell::PostgresRestart,
        Cell::RelaySigstop,
        Cell::FillRace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cell::RelaySigkill => "relay-sigkill",
            Cell::TwoRelaysBacklog => "two-relays-backlog",
            Cell::RedisColdRestart => "redis-cold-restart",
            Cell::RedisAofRestart => "redis-aof-restart",
            Cell::EvictionOutOfOrder => "eviction-out-of-order",
            Cell::TombstoneExpiry => "tombstone-expiry",
            Cell::PostgresRestart => "postgres-restart",
            Cell::RelaySigstop => "relay-sigstop",
            Cell::FillRace => "fill-race",
        }
    }

    /// What the "faults injected" column counts.
    pub fn fault(self) -> &'static str {
        match self {
            Cell::RelaySigkill => "relay SIGKILLed between VSET and COMMIT, restarted (kills)",
            Cell::TwoRelaysBacklog => "two relays started at once on a backlog (rows waiting)",
            Cell::RedisColdRestart => "redis SIGKILLed, restarted empty and cold (restarts)",
            Cell::RedisAofRestart => "redis SIGKILLed, restarted from AOF (restarts)",
            Cell::EvictionOutOfOrder => "maxmemory + allkeys-lru, 2 relays (keys evicted)",
            Cell::TombstoneExpiry => "200 ms tombstones, relay SIGSTOPped 600 ms (stops)",
            Cell::PostgresRestart => "PostgreSQL SIGKILLed + crash recovery (restarts)",
            Cell::RelaySigstop => "relay SIGSTOPped mid-batch until idle_in_transaction timeout ended its session (stops)",
            Cell::FillRace => "read-miss fills via vset.fill + evictions (fills)",
        }
    }

    pub fn by_name(name: &str) -> Option<Cell> {
        Cell::ALL.iter().copied().find(|c| c.name() == name)
    }
}

/// How long convergence may take before the cell fails.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);
/// vset-verify's grace period for mismatches.
const GRACE: Duration = Duration::from_secs(1);

pub fn run_cell(cell: Cell, size: &CellSize) -> Result<CellRow, ChaosError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(size.seed ^ 0x5eed);
    let redis = match cell {
        // `appendfsync always`, as deploy/redis.conf: with `everysec` a SIGKILL can
        // lose a write Redis already acknowledged, which vset cannot see (the
        // documented limit of a lossy restart), and that is not what this cell tests.
        Cell::RedisAofRestart => RedisOptions::new()
            .config("appendonly", "yes")
            .config("appendfsync", "always"),
        Cell::EvictionOutOfOrder => RedisOptions::new().config("maxmemory-policy", "allkeys-lru"),
        Cell::TombstoneExpiry => RedisOptions::new().module_args(["tombstone-ttl-ms", "200"]),
        _ => RedisOptions::new(),
    };
    let mut world = World::start(redis, size.keys)?;
    let relays: &[&[&str]] = match cell {
        Cell::TwoRelaysBacklog => &[],
        Cell::EvictionOutOfOrder => &[&["--batch-size", "20"], &["--batch-size", "20"]],
        Cell::TombstoneExpiry => &[
            &["--batch-size", "20", "--idle-in-transaction-timeout", "10s"],
            &["--batch-size", "20", "--idle-in-transaction-timeout", "10s"],
        ],
        Cell::RelaySigstop => &[
            &["--batch-size", "50", "--idle-in-transaction-timeout", "1s"],
            &["--batch-size", "50", "--idle-in-transaction-timeout", "1s"],
        ],
        _ => &[&[]],
    };
    for args in relays {
        world.add_relay(args)?;
    }
    if cell == Cell::EvictionOutOfOrder {
        prepare_eviction(&mut world)?;
    }
    if cell == Cell::RelaySigkill {
        slow_relay_commits(&world)?;
    }
    let fillers = if cell == Cell::FillRace { 3 } else { 0 };
    let workload = Workload::start(&world.pg.url(), &world.redis.url(), size, fillers);
    let deadline = Instant::now() + size.duration;
    let injected = inject(cell, &mut world, &workload, deadline, size, &mut rng);
    let stats: WorkloadStats = workload.stop();
    // A failure while injecting is explained with both servers' last words.
    let mut faults = injected.map_err(|e| {
        ChaosError::Stuck(format!(
            "{e}\n--- postgres log:\n{}\n--- redis log:\n{}\n--- relays:\n{}",
            world.pg.log_tail(3000),
            world
                .redis
                .log()
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .join("\n"),
            world.relay_log_tail()
        ))
    })?;
    // Clear the fault: every relay running and continued.
    for slot in 0..relays.len() {
        world.signal_relay(slot, libc::SIGCONT);
    }
    if cell == Cell::FillRace {
        faults = stats.fills;
    }
    let converge = world.wait_drained(DRAIN_TIMEOUT)?;
    if cell == Cell::EvictionOutOfOrder {
        // Counted after the drain: only then has all of the big rows' 3 MB reached a
        // Redis capped at 1 MB above its start, so evictions must have happened.
        faults = evicted(&world)?;
    }
    let report = world.verify(GRACE)?;
    let total = report.total();
    let row = CellRow {
        cell: cell.name(),
        fault: cell.fault(),
        writes: stats.writes,
        faults,
        stale: total.bad(),
        verify: total,
        worst_window: stats.worst_window,
        converge,
        probes: stats.probes,
        probe_errors: stats.probe_errors,
    };
    if row.stale > 0 {
        eprintln!("{}\n{}", report.render_text(), world.relay_log_tail());
    }
    Ok(row)
}

/// Injects `cell`'s fault until `deadline`; returns how many times.
fn inject(
    cell: Cell,
    world: &mut World,
    workload: &Workload,
    deadline: Instant,
    size: &CellSize,
    rng: &mut rand::rngs::StdRng,
) -> Result<u64, ChaosError> {
    let mut faults = 0u64;
    let sleep_until = |t: Instant| {
        let now = Instant::now();
        if t > now {
            std::thread::sleep(t - now);
        }
    };
    match cell {
        Cell::RelaySigkill => {
            // Kill only while a relay sits in its COMMIT (see `slow_relay_commits`):
            // its VSETs are in Redis, its claim is not yet committed.
            let mut c = world.pg.client()?;
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(rng.random_range(50..250)));
                let in_flight = match wait_for_commit_in_flight(&mut c, deadline) {
                    Ok(found) => found,
                    Err(e) => {
                        c = reconnect(world, &e)?;
                        false
                    }
                };
                if in_flight {
                    world.kill_relay(0);
                    faults += 1;
                    world.respawn_relay(0)?;
                }
            }
        }
        Cell::TwoRelaysBacklog => {
            sleep_until(deadline - size.duration / 2);
            let mut c = world.pg.client()?;
            // The writers may still be connecting on a stalled machine: wait (bounded)
            // for a backlog to exist, since the cell is about relays starting on one.
            let mut backlog: i64 = 0;
            let give_up = Instant::now() + Duration::from_secs(20);
            while backlog == 0 && Instant::now() < give_up {
                backlog = c
                    .query_one("SELECT count(*) FROM vset.outbox", &[])?
                    .try_get(0)?;
                if backlog == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            world.add_relay(&["--batch-size", "50"])?;
            world.add_relay(&["--batch-size", "50"])?;
            faults = backlog.max(0) as u64;
            sleep_until(deadline);
        }
        Cell::RedisColdRestart | Cell::RedisAofRestart => {
            let step = size.duration / 3;
            for i in 1..=2u32 {
                sleep_until(deadline - size.duration + step * i);
                world.redis.kill();
                if cell == Cell::RedisColdRestart {
                    world.redis.wipe_data()?;
                }
                world.redis.start_again()?;
                faults += 1;
            }
            sleep_until(deadline);
        }
        Cell::EvictionOutOfOrder => {
            // Keep big rows changing so the relays keep writing into a full cache.
            let mut c = world.pg.client()?;
            let mut at = 0i32;
            while Instant::now() < deadline {
                let lo = world.keys + 1 + (at % BIG_ROWS);
                if let Err(e) = c.execute(
                    "UPDATE chaos SET v = v + 1 WHERE id BETWEEN $1 AND $1 + 99",
                    &[&lo],
                ) {
                    c = reconnect(world, &e)?;
                }
                at += 100;
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        Cell::TombstoneExpiry => {
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(300));
                world.signal_relay(0, libc::SIGSTOP);
                std::thread::sleep(Duration::from_millis(600));
                world.signal_relay(0, libc::SIGCONT);
                faults += 1;
            }
        }
        Cell::PostgresRestart => {
            let step = size.duration / 3;
            for i in 1..=2u32 {
                sleep_until(deadline - size.duration + step * i);
                world.pg.kill();
                world.pg.restart()?;
                faults += 1;
            }
            sleep_until(deadline);
        }
        Cell::RelaySigstop => {
            // Stop relay 0 only while one of its sessions is idle in transaction
            // (claimed, applying to Redis, not committed): a hang mid-batch. Keep
            // it stopped until PostgreSQL's idle_in_transaction_session_timeout
            // has ended that session (its rows go back to relay 1), then let it
            // run on: its late VSETs and its COMMIT must do no harm.
            let mut c = world.pg.client()?;
            while Instant::now() + Duration::from_secs(3) < deadline || faults == 0 {
                if Instant::now() > deadline + Duration::from_secs(20) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(rng.random_range(50..200)));
                match stop_mid_batch(world, &mut c) {
                    Ok(true) => faults += 1,
                    Ok(false) => {}
                    Err(e) => {
                        world.signal_relay(0, libc::SIGCONT);
                        c = reconnect(world, &e)?;
                    }
                }
            }
            sleep_until(deadline);
        }
        Cell::FillRace => sleep_until(deadline),
    }
    let _ = workload.writes();
    Ok(faults)
}

/// Big rows beyond the hot keys, so the cache outgrows `maxmemory`.
const BIG_ROWS: i32 = 3000;

/// Adds `BIG_ROWS` rows of 1 kB and caps Redis at 1 MB above what it uses now.
/// Waits for a relay to end the module's cold start first: rows written before
/// the relay's `VFLOOR` would only ever be rejected, never fill the cache.
fn prepare_eviction(world: &mut World) -> Result<(), ChaosError> {
    wait_warm(world)?;
    let used: u64 = world
        .redis
        .info_field("memory", "used_memory")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut con = world.redis.client()?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 1_000_000)
        .query::<()>(&mut con)?;
    world.pg.execute(&format!(
        "INSERT INTO chaos SELECT i, 0, repeat('z', 1000) FROM generate_series({}, {}) i",
        world.keys + 1,
        world.keys + BIG_ROWS
    ))?;
    Ok(())
}

/// Test-only instrumentation for the SIGKILL cell: a deferred constraint trigger
/// on `vset.outbox` makes every transaction that deleted outbox rows (a relay's
/// claim) sleep 100 ms inside COMMIT, i.e. after the relay applied the batch to
/// Redis and before the claim is committed. `client_connection_check_interval`
/// makes the backend notice a killed relay during that sleep and roll back, as
/// a real crash before COMMIT does.
fn slow_relay_commits(world: &World) -> Result<(), ChaosError> {
    // ALTER SYSTEM refuses to run inside the implicit transaction of a
    // multi-statement query: on its own first.
    world
        .pg
        .execute("ALTER SYSTEM SET client_connection_check_interval = '20ms'")?;
    world.pg.execute(
        "SELECT pg_reload_conf();
         CREATE FUNCTION chaos_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_setting('chaos.slept', true) IS DISTINCT FROM 'y' THEN
             PERFORM set_config('chaos.slept', 'y', true);
             PERFORM pg_sleep(0.1);
           END IF;
           RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER chaos_slow_commit AFTER DELETE ON vset.outbox
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION chaos_slow_commit();",
    )?;
    Ok(())
}

/// Waits (until `deadline`) for a session sleeping in `chaos_slow_commit`, i.e. a
/// relay between its VSETs and the end of its COMMIT.
fn wait_for_commit_in_flight(
    c: &mut postgres::Client,
    deadline: Instant,
) -> Result<bool, ChaosError> {
    while Instant::now() < deadline {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND pid <> pg_backend_pid()",
                &[],
            )?
            .try_get(0)?;
        if n > 0 {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(false)
}

/// One attempt to freeze relay 0 mid-batch; true if the stop landed while one
/// of its sessions was idle in transaction, and that session was then ended.
fn stop_mid_batch(world: &World, c: &mut postgres::Client) -> Result<bool, ChaosError> {
    let Some(pid) = world.relay_pid(0) else {
        return Ok(false);
    };
    let in_tx = |c: &mut postgres::Client| -> Result<Vec<i32>, ChaosError> {
        let ports = super::world::local_tcp_ports(pid);
        let rows = c.query(
            "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction' AND client_port = ANY($1)",
            &[&ports],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, i32>(0).ok())
            .collect())
    };
    let give_up = Instant::now() + Duration::from_secs(2);
    while Instant::now() < give_up {
        if in_tx(c)?.is_empty() {
            continue;
        }
        world.signal_relay(0, libc::SIGSTOP);
        // Frozen now: if its session is still idle in transaction, the stop
        // landed mid-batch.
        let frozen = in_tx(c)?;
        if frozen.is_empty() {
            world.signal_relay(0, libc::SIGCONT);
            continue;
        }
        let ended = Instant::now() + Duration::from_secs(10);
        loop {
            let alive: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                    &[&frozen],
                )?
                .try_get(0)?;
            if alive == 0 || Instant::now() > ended {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        world.signal_relay(0, libc::SIGCONT);
        return Ok(true);
    }
    Ok(false)
}

/// The fault injector lost its PostgreSQL session (the server crashed and is
/// recovering, e.g. a backend died): say so, and connect again. The cell goes on;
/// its verdict still comes from vset-verify after convergence.
fn reconnect(world: &World, why: &dyn std::fmt::Display) -> Result<postgres::Client, ChaosError> {
    eprintln!(
        "chaos: injector lost PostgreSQL ({why}); reconnecting. postgres log:\n{}",
        world.pg.log_tail(1500)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match world.pg.client() {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Waits until `VFLOOR` reports the module warm (a relay has set the floor).
fn wait_warm(world: &World) -> Result<(), ChaosError> {
    let mut con = world.redis.client()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: Vec<redis::Value> = redis::cmd("VFLOOR").query(&mut con)?;
        if matches!(state.get(1), Some(redis::Value::Int(0))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ChaosError::Stuck(format!(
                "module still cold after 30s ({state:?}); relay logs:\n{}",
                world.relay_log_tail()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn evicted(world: &World) -> Result<u64, ChaosError> {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut world.redis.client()?)?;
    Ok(parse_info_field(&info, "evicted_keys")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}
