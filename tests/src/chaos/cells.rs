//! The cells of the matrix. Every cell: start a world, start its relays and the
//! workload, inject the fault until the time is up, stop the writers, clear the
//! fault, wait until the outbox is empty, run `vset-verify`.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::oracle::{cached_versions, exact_state, Refusals};
use super::staging::{
    held_commit, install_commit_hold, late_fill, stalled_batch, CommitEnd, FillGap, Staged,
    WhileStalled,
};
use super::workload::{Fillers, Workload, WorkloadStats};
use super::world::{Route, World};
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

/// Which module a cell runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The real module: the cell must end exact and count its event.
    Real,
    /// The cell's control: the protection its fault targets is broken on purpose
    /// (see [`Cell::control`]); the cell must find stale entries.
    Control,
}

impl Cell {
    /// The event the cell is named for, as counted.
    pub fn event(self) -> &'static str {
        match self {
            Cell::RelaySigkill => "older replays refused (module, stale)",
            Cell::TwoRelaysBacklog => "reordered writes refused (module, stale)",
            Cell::RedisColdRestart => "writes refused cold or below the floor after restarts",
            Cell::RedisAofRestart => "older writes refused after AOF reloads (module, stale)",
            Cell::EvictionOutOfOrder => "late writes refused after an eviction (module, floor)",
            Cell::TombstoneExpiry => {
                "late writes refused after a tombstone expired (module, floor)"
            }
            Cell::PostgresRestart => "older replays refused (module, stale)",
            Cell::RelaySigstop => "late writes refused (module, stale)",
            Cell::FillRace => "fills refused by a newer version (module, stale + floor)",
        }
    }

    /// What the control breaks: the one protection the cell's fault targets.
    pub fn control(self) -> &'static str {
        match self {
            Cell::RedisColdRestart => "module not cold after an empty restart (cold-start no)",
            Cell::RedisAofRestart => "restart ignores the AOF, module not cold (cold-start no)",
            Cell::EvictionOutOfOrder | Cell::TombstoneExpiry => "floors off (control build)",
            _ => "version check off (control build)",
        }
    }

    /// Whether a live row may end uncached before the final touch (the fault
    /// makes Redis forget keys, or refuse writes it cannot order).
    fn misses_allowed(self) -> bool {
        !matches!(
            self,
            Cell::RelaySigkill
                | Cell::TwoRelaysBacklog
                | Cell::PostgresRestart
                | Cell::RelaySigstop
        )
    }

    /// Refusals the event counts.
    fn count(self, r: Refusals) -> u64 {
        match self {
            Cell::RedisColdRestart => r.cold + r.floor,
            Cell::EvictionOutOfOrder | Cell::TombstoneExpiry => r.floor,
            Cell::FillRace => r.stale + r.floor,
            _ => r.stale,
        }
    }
}

fn redis_options(cell: Cell, variant: Variant) -> Result<RedisOptions, ChaosError> {
    let mut args: Vec<&str> = Vec::new();
    let mut opts = match cell {
        // `appendfsync always`, as deploy/redis.conf: with `everysec` a SIGKILL can
        // lose a write Redis already acknowledged, which vset cannot see (the
        // documented limit of a lossy restart), and that is not what this cell tests.
        Cell::RedisAofRestart => RedisOptions::new()
            .config("appendonly", "yes")
            .config("appendfsync", "always"),
        Cell::EvictionOutOfOrder => RedisOptions::new().config("maxmemory-policy", "allkeys-lru"),
        Cell::TombstoneExpiry => {
            args.extend(["tombstone-ttl-ms", "200"]);
            RedisOptions::new()
        }
        _ => RedisOptions::new(),
    };
    if variant == Variant::Control {
        match cell {
            Cell::RedisColdRestart | Cell::RedisAofRestart => args.extend(["cold-start", "no"]),
            Cell::EvictionOutOfOrder | Cell::TombstoneExpiry => {
                opts = opts.module_path(crate::paths::redis_module_control()?);
                args.extend(["unsafe-test-disable-gate", "floor"]);
            }
            _ => {
                opts = opts.module_path(crate::paths::redis_module_control()?);
                args.extend(["unsafe-test-disable-gate", "version"]);
            }
        }
    }
    Ok(opts.module_args(args))
}

pub fn run_variant(cell: Cell, size: &CellSize, variant: Variant) -> Result<CellRow, ChaosError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(size.seed ^ 0x5eed);
    let mut world = World::start(redis_options(cell, variant)?, size.keys)?;
    // Longer than any stall the final round can take (its waits add up to ~2 min on
    // a slow machine): PostgreSQL must not end the held session meanwhile.
    let stallable = [
        "--batch-size",
        "20",
        "--idle-in-transaction-timeout",
        "300s",
    ];
    match cell {
        Cell::RelaySigkill | Cell::PostgresRestart => {
            install_commit_hold(&world, if cell == Cell::RelaySigkill { 0.1 } else { 0.0 })?;
            world.add_relay(&[])?;
            world.add_relay(&[])?;
        }
        Cell::EvictionOutOfOrder | Cell::TombstoneExpiry => {
            world.add_relay_routed(&stallable, Route::Stallable)?;
            world.add_relay(&["--batch-size", "20"])?;
        }
        Cell::RelaySigstop => {
            let args = ["--batch-size", "50", "--idle-in-transaction-timeout", "1s"];
            world.add_relay_routed(&args, Route::Stallable)?;
            world.add_relay(&args)?;
        }
        _ => {
            world.add_relay(&[])?;
        }
    }
    if cell == Cell::EvictionOutOfOrder {
        prepare_eviction(&mut world)?;
    }
    let fillers = match cell {
        Cell::FillRace => Fillers {
            count: 3,
            evict: true,
        },
        // After a restart every read is a miss: the fill storm. No DELs, so that what
        // the AOF gives back is exactly what was there.
        Cell::RedisColdRestart | Cell::RedisAofRestart => Fillers {
            count: 3,
            evict: false,
        },
        _ => Fillers::default(),
    };
    let mut workload = Workload::start(&world.pg.url(), &world.redis.url(), size, fillers);
    let deadline = Instant::now() + size.duration;
    let mut tally = Tally::default();
    let explain = |world: &World, e: ChaosError| {
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
    };
    let injected = inject(
        cell,
        &mut world,
        &mut workload,
        deadline,
        size,
        &mut rng,
        &mut tally,
        variant,
    );
    let mut faults = injected.map_err(|e| explain(&world, e))?;
    // The final round: the named interleaving once more, staged on purpose.
    let staged = match cell {
        Cell::RelaySigkill => held_commit(&mut world, &mut workload, CommitEnd::KillRelay),
        Cell::PostgresRestart => held_commit(&mut world, &mut workload, CommitEnd::CrashPostgres),
        Cell::EvictionOutOfOrder => {
            stalled_batch(&mut world, &mut workload, WhileStalled::Evict, 0)
        }
        Cell::TombstoneExpiry => {
            stalled_batch(&mut world, &mut workload, WhileStalled::DeleteAndExpire, 0)
        }
        Cell::RelaySigstop => stalled_batch(
            &mut world,
            &mut workload,
            WhileStalled::StopUntilSessionEnds,
            0,
        ),
        Cell::FillRace => late_fill(&mut world, &mut workload, FillGap::None),
        Cell::RedisColdRestart => {
            tally.bank(Refusals::read(&world)?);
            late_fill(&mut world, &mut workload, FillGap::Restart { wipe: true })
        }
        Cell::RedisAofRestart => {
            tally.bank(Refusals::read(&world)?);
            late_fill(
                &mut world,
                &mut workload,
                FillGap::Restart {
                    wipe: variant == Variant::Control,
                },
            )
        }
        Cell::TwoRelaysBacklog => Ok(std::mem::take(&mut tally.staged)),
    }
    .map_err(|e| explain(&world, e))?;
    let stats: WorkloadStats = workload.stop();
    // Clear the fault: every relay running and continued.
    for slot in 0..world.relay_count() {
        world.signal_relay(slot, libc::SIGCONT);
    }
    if cell == Cell::FillRace {
        faults = stats.fills;
    }
    let converge = world.wait_drained(DRAIN_TIMEOUT)?;
    if cell == Cell::EvictionOutOfOrder {
        faults = evicted(&world)?;
    }
    tally.bank(Refusals::read(&world)?);
    let report = world.verify(GRACE)?;
    let total = report.total();
    let exact = exact_state(&world, None)?;
    // Warm: every hot row, written once more now (re-inserted if deleted), must be
    // cached exactly. A module that stores nothing, or a floor stuck too high,
    // fails here.
    let warm = if variant == Variant::Real {
        // Deleted hot rows come back, so that every hot key has a live row to show.
        world.pg.execute(&format!(
            "INSERT INTO chaos SELECT i, 0, repeat('w', 16) FROM generate_series(1, {}) i
             ON CONFLICT (id) DO UPDATE SET v = chaos.v + 1",
            world.keys
        ))?;
        world.wait_drained(DRAIN_TIMEOUT)?;
        Some(exact_state(&world, Some(world.keys))?)
    } else {
        None
    };
    let row = CellRow {
        cell: cell.name(),
        fault: cell.fault(),
        variant,
        writes: stats.writes,
        faults,
        stale: total.bad(),
        verify: total,
        exact,
        warm,
        misses_allowed: cell.misses_allowed(),
        events: cell.count(tally.total),
        staged,
        reload_lost: tally.reload_lost,
        reloaded: tally.reloaded,
        per_relay_stored: tally.per_relay_stored.clone(),
        regressions: stats.regressions,
        time_stale: stats.time_stale,
        worst_window: stats.worst_window,
        converge,
        probes: stats.probes,
        probe_errors: stats.probe_errors,
    };
    if !row.problems().is_empty() && variant == Variant::Real {
        eprintln!("{}\n{}", report.render_text(), world.relay_log_tail());
    }
    Ok(row)
}

/// What a cell counts while it runs.
#[derive(Debug, Default)]
struct Tally {
    /// Module refusals banked before each Redis restart (its counters restart at 0).
    banked: Refusals,
    total: Refusals,
    /// Keys whose version went down (or vanished) across an AOF restart.
    reload_lost: u64,
    /// Keys that came back from the AOF at (at least) their version.
    reloaded: u64,
    per_relay_stored: Vec<u64>,
    /// The two-relays cell stages its interleaving (the backlog) while injecting.
    staged: Staged,
}

impl Tally {
    /// Adds the module's counters as read now, before they restart with Redis.
    fn bank(&mut self, now: Refusals) {
        self.total = Refusals {
            stale: self.banked.stale + now.stale,
            floor: self.banked.floor + now.floor,
            cold: self.banked.cold + now.cold,
            applied: self.banked.applied + now.applied,
        };
    }

    /// Call right before a restart: what was counted so far is kept.
    fn restarting(&mut self, now: Refusals) {
        self.bank(now);
        self.banked = self.total;
    }
}

/// Injects `cell`'s fault until `deadline`; returns how many times.
#[allow(clippy::too_many_arguments)]
fn inject(
    cell: Cell,
    world: &mut World,
    workload: &mut Workload,
    deadline: Instant,
    size: &CellSize,
    rng: &mut rand::rngs::StdRng,
    tally: &mut Tally,
    variant: Variant,
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
                let in_flight = match wait_for_commit_in_flight(world, &mut c, deadline) {
                    Ok(found) => found,
                    Err(e) => {
                        c = reconnect(world, &e)?;
                        None
                    }
                };
                if let Some(slot) = in_flight {
                    world.kill_relay(slot);
                    faults += 1;
                    world.respawn_relay(slot)?;
                }
            }
        }
        Cell::TwoRelaysBacklog => {
            // Warm first: one relay ends the cold start and fills the cache, then
            // stops (SIGTERM: it finishes its batch), and a backlog builds up.
            sleep_until(deadline - size.duration * 2 / 3);
            world.stop_relay(0);
            sleep_until(deadline - size.duration / 3);
            workload.halt_writers();
            let mut c = world.pg.client()?;
            let backlog: i64 = c
                .query_one("SELECT count(*) FROM vset.outbox", &[])?
                .try_get(0)?;
            let before = Refusals::read(world)?;
            // Relay A reaches Redis through the stall proxy: once both have raced for
            // a while, one of A's batches is held in the network while B drains the
            // rest of the backlog, newer versions of the same keys included; then it
            // lands. Reordering by chance happens all along; this one is certain.
            let a = world.add_relay_routed(&["--batch-size", "50"], Route::Stallable)?;
            let b = world.add_relay(&["--batch-size", "50"])?;
            let mut c = world.pg.client()?;
            let half = Instant::now() + Duration::from_secs(10);
            while Instant::now() < half {
                let left: i64 = c
                    .query_one("SELECT count(*) FROM vset.outbox", &[])?
                    .try_get(0)?;
                if left * 2 < backlog {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let mut staged = stalled_batch(world, workload, WhileStalled::Nothing, a)?;
            world.wait_drained(DRAIN_TIMEOUT)?;
            let refused = Refusals::read(world)?.since(before);
            // The relays count a batch after its COMMIT: poll until both counts settle.
            let mut stored = vec![0u64; 2];
            let settle = Instant::now() + Duration::from_secs(10);
            loop {
                let now: Vec<u64> = [a, b]
                    .iter()
                    .map(|s| {
                        world
                            .relay_metric(*s, "vset_relay_applied_total")
                            .unwrap_or(0.0) as u64
                    })
                    .collect();
                let acked: u64 = [a, b]
                    .iter()
                    .map(|s| {
                        world
                            .relay_metric(*s, "vset_relay_acked_total")
                            .unwrap_or(0.0) as u64
                    })
                    .sum();
                stored = now;
                if acked >= backlog.max(0) as u64 || Instant::now() > settle {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            tally.per_relay_stored = stored.clone();
            staged.notes.push(format!(
                "backlog {backlog} rows; stored by relay A {}, by relay B {}; {} reordered writes refused in all",
                stored[0], stored[1], refused.stale
            ));
            tally.staged = staged;
            faults = backlog.max(0) as u64;
        }
        Cell::RedisColdRestart | Cell::RedisAofRestart => {
            let step = size.duration / 3;
            let ids: Vec<i32> = (1..=world.keys).collect();
            for i in 1..=2u32 {
                sleep_until(deadline - size.duration + step * i);
                let before = cached_versions(world, &ids)?;
                tally.restarting(Refusals::read(world)?);
                world.redis.kill();
                // The AOF cell's control: a restart that ignores the AOF.
                if cell == Cell::RedisColdRestart || variant == Variant::Control {
                    world.redis.wipe_data()?;
                }
                world.redis.start_again()?;
                faults += 1;
                if cell == Cell::RedisAofRestart {
                    // Read before any relay or fill could write: what the AOF gave back.
                    let after = cached_versions(world, &ids)?;
                    for id in &ids {
                        let (was, now) = (before[id].1, after[id].1);
                        if was > 0 && now >= was {
                            tally.reloaded += 1;
                        } else if was > 0 {
                            tally.reload_lost += 1;
                        }
                    }
                }
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

/// Waits (until `deadline`) for a session sleeping in `chaos_slow_commit`, i.e. a
/// relay between its VSETs and the end of its COMMIT; returns that relay's slot.
fn wait_for_commit_in_flight(
    world: &World,
    c: &mut postgres::Client,
    deadline: Instant,
) -> Result<Option<usize>, ChaosError> {
    while Instant::now() < deadline {
        let sleeping: Vec<i32> = c
            .query(
                "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND pid <> pg_backend_pid()",
                &[],
            )?
            .iter()
            .filter_map(|r| r.try_get(0).ok())
            .collect();
        for pid in sleeping {
            if let Some(slot) = world.relay_of_backend(c, pid)? {
                return Ok(Some(slot));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(None)
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
