//! Each cell's **final round**: after its random faults, the cell stages the exact
//! interleaving it is named for once more, on purpose, with the writers stopped,
//! so that nothing written afterwards can hide what the module did with it:
//!
//! | stager | the interleaving |
//! | --- | --- |
//! | [`held_commit`] | a relay's batch is in Redis, its COMMIT is held; newer versions of the same keys are applied and acknowledged by another relay; then the holder dies (relay SIGKILL or PostgreSQL crash) and its batch is replayed, older than what is cached |
//! | [`stalled_batch`] | a relay's writes are held in the network (see [`super::stall`]); newer versions are applied by another relay, then the keys are forgotten (evicted, tombstone expired) or the stalled relay's session is ended; then the late writes land |
//! | [`late_fill`] | a read-miss fill reads a row, a newer version is applied, (Redis restarts, cold or from its AOF), then the fill's `VSET` lands |
//!
//! With the gates on, each late write must be refused; in a control run (gate
//! off) it is stored and the cache ends stale, which the cell must detect.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::oracle::{cached_versions, Refusals};
use super::workload::Workload;
use super::world::{local_tcp_ports, World};
use super::ChaosError;

/// What a final round staged and how the module answered.
#[derive(Debug, Clone, Default)]
pub struct Staged {
    /// Keys put in the interleaving (each with one late write pending).
    pub keys: u64,
    /// Late writes the module refused (refusal counters across the landing).
    pub refused: u64,
    /// Late writes the module stored (only a broken module does).
    pub stored: u64,
    /// A check of the mechanism itself that failed (e.g. the held batch was not
    /// in the outbox after the kill, so no replay could happen).
    pub broken: Vec<String>,
    /// Cell-specific facts for the table (e.g. "3 keys reloaded from the AOF").
    pub notes: Vec<String>,
    /// After a restart from the AOF: keys that came back at their version, of how
    /// many (a restart that ignored the AOF brings back none).
    pub reloaded: Option<(u64, u64)>,
}

const ADVISORY_HOLD: i64 = 4242;
const ADVISORY_FIRST: i64 = 4243;
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the relays may take to drain what the writers left.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);

/// Test-only instrumentation of relays' commits: a deferred constraint trigger on
/// `vset.outbox` runs inside the COMMIT of every transaction that deleted outbox
/// rows (a relay's claim), i.e. after the relay applied the batch to Redis and
/// before the claim is committed. It sleeps `sleep_s` (so a random SIGKILL can land
/// there), and when the cell arms `chaos_hold`, the first such commit waits on an
/// advisory lock the cell holds: a batch held between Redis and COMMIT on purpose.
/// `client_connection_check_interval` makes the backend notice a killed relay and
/// roll back, as a real crash before COMMIT does.
pub fn install_commit_hold(world: &World, sleep_s: f64) -> Result<(), ChaosError> {
    // ALTER SYSTEM refuses to run inside the implicit transaction of a
    // multi-statement query: on its own first.
    world
        .pg
        .execute("ALTER SYSTEM SET client_connection_check_interval = '20ms'")?;
    world.pg.execute(&format!(
        "SELECT pg_reload_conf();
         CREATE TABLE chaos_hold(armed bool NOT NULL, sleep_s float8 NOT NULL);
         INSERT INTO chaos_hold VALUES (false, {sleep_s});
         CREATE FUNCTION chaos_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_setting('chaos.slept', true) IS DISTINCT FROM 'y' THEN
             PERFORM set_config('chaos.slept', 'y', true);
             IF (SELECT armed FROM chaos_hold) AND pg_try_advisory_xact_lock({ADVISORY_FIRST}) THEN
               PERFORM pg_advisory_xact_lock_shared({ADVISORY_HOLD});
             ELSE
               PERFORM pg_sleep((SELECT sleep_s FROM chaos_hold));
             END IF;
           END IF;
           RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER chaos_slow_commit AFTER DELETE ON vset.outbox
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION chaos_slow_commit();"
    ))?;
    Ok(())
}

/// A relay transaction caught holding claimed rows.
struct Held {
    backend: i32,
    /// (row id, version) of each claimed outbox row.
    rows: Vec<(i32, u64)>,
    outbox_ids: Vec<i64>,
}

impl Held {
    fn ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.rows.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Highest held version per row id.
    fn versions(&self) -> HashMap<i32, u64> {
        let mut m = HashMap::new();
        for (id, v) in &self.rows {
            let e = m.entry(*id).or_insert(0);
            *e = (*e).max(*v);
        }
        m
    }
}

/// The outbox rows transaction `xid` (text) deleted and has not committed.
fn rows_of(c: &mut postgres::Client, backend: i32) -> Result<Option<Held>, ChaosError> {
    let rows = c.query(
        "SELECT o.id, o.cache_key, o.version FROM vset.outbox o, pg_stat_activity a
          WHERE a.pid = $1 AND a.backend_xid IS NOT NULL AND o.xmax::text = a.backend_xid::text",
        &[&backend],
    )?;
    let mut held = Held {
        backend,
        rows: Vec::new(),
        outbox_ids: Vec::new(),
    };
    for r in rows {
        let key: String = r.try_get(1)?;
        let Some(id) = key
            .strip_prefix("public.chaos:")
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        held.outbox_ids.push(r.try_get(0)?);
        held.rows.push((id, r.try_get::<_, i64>(2)? as u64));
    }
    Ok((!held.rows.is_empty()).then_some(held))
}

/// Gives every row in `ids` a newer version (re-inserting deleted ones).
fn write_newer(world: &World, ids: &[i32]) -> Result<(), ChaosError> {
    let mut c = world.pg.client()?;
    c.execute(
        "INSERT INTO chaos SELECT i, 1000000000 + i, repeat('n', 16) FROM unnest($1::int[]) i
         ON CONFLICT (id) DO UPDATE SET v = chaos.v + 1",
        &[&ids],
    )?;
    Ok(())
}

/// Waits until every id is cached (value or tombstone) above its held version.
fn wait_newer_applied(
    world: &World,
    held: &HashMap<i32, u64>,
    what: &str,
) -> Result<(), ChaosError> {
    wait_newer(world, held, what, false)
}

/// [`wait_newer_applied`], where a key Redis no longer holds also counts.
fn wait_newer_applied_or_evicted(
    world: &World,
    held: &HashMap<i32, u64>,
    what: &str,
) -> Result<(), ChaosError> {
    wait_newer(world, held, what, true)
}

fn wait_newer(
    world: &World,
    held: &HashMap<i32, u64>,
    what: &str,
    miss_counts: bool,
) -> Result<(), ChaosError> {
    let ids: Vec<i32> = held.keys().copied().collect();
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let cached = cached_versions(world, &ids)?;
        let done = |id: &i32| {
            let (payload, version) = &cached[id];
            *version > held[id] || (miss_counts && payload.is_none() && *version == 0)
        };
        if ids.iter().all(done) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ChaosError::Stuck(format!(
                "{what}: newer versions not applied after {}s (held {held:?}, cached {cached:?}); relays:\n{}",
                STEP_TIMEOUT.as_secs(),
                world.relay_log_tail()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The version of each id's last captured change (from the audit).
fn last_versions(c: &mut postgres::Client, ids: &[i32]) -> Result<HashMap<i32, u64>, ChaosError> {
    let rows = c.query(
        "SELECT id, max(version) FROM chaos_audit WHERE id = ANY($1) GROUP BY id",
        &[&ids],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
        .collect()
}

/// Waits until none of `ids` is in Redis (`VGET` reads an expired key, which
/// makes Redis drop it and the module raise its floor).
fn wait_all_gone(world: &World, ids: &[i32], what: &str) -> Result<(), ChaosError> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while cached_versions(world, ids)?.values().any(|(_, v)| *v > 0) {
        if Instant::now() > deadline {
            return Err(ChaosError::Stuck(format!("stalled_batch: {what}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Waits until the outbox holds exactly `n` rows (the held ones: every other
/// change applied and acknowledged).
fn wait_outbox_len(world: &World, n: usize, what: &str) -> Result<(), ChaosError> {
    let mut c = world.pg.client()?;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let have: i64 = c
            .query_one("SELECT count(*) FROM vset.outbox", &[])?
            .try_get(0)?;
        if have as usize == n {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ChaosError::Stuck(format!(
                "{what}: outbox holds {have} rows, expected {n}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_backend_gone(
    c: &mut postgres::Client,
    backend: i32,
    limit: Duration,
) -> Result<bool, ChaosError> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&backend],
            )?
            .try_get(0)?;
        if n == 0 {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(false)
}

/// How a held COMMIT ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitEnd {
    /// The holding relay is SIGKILLed (and respawned).
    KillRelay,
    /// PostgreSQL is SIGKILLed and runs crash recovery.
    CrashPostgres,
}

/// See the module docs. Needs [`install_commit_hold`] and at least two relays.
pub fn held_commit(
    world: &mut World,
    workload: &mut Workload,
    end: CommitEnd,
) -> Result<Staged, ChaosError> {
    let mut lock = world.pg.client()?;
    lock.query_one("SELECT pg_advisory_lock($1)", &[&ADVISORY_HOLD])?;
    lock.execute("UPDATE chaos_hold SET armed = true", &[])?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    let held = loop {
        let waiting = lock.query(
            "SELECT pid FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND pid <> pg_backend_pid()",
            &[],
        )?;
        let mut found = None;
        for w in waiting {
            if let Some(h) = rows_of(&mut lock, w.try_get(0)?)? {
                found = Some(h);
                break;
            }
        }
        if let Some(h) = found {
            break h;
        }
        if Instant::now() > deadline {
            return Err(ChaosError::Stuck(
                "held_commit: no relay commit reached the hold".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    lock.execute("UPDATE chaos_hold SET armed = false", &[])?;
    workload.halt_writers();
    let versions = held.versions();
    let ids = held.ids();
    write_newer(world, &ids)?;
    wait_newer_applied(world, &versions, "held_commit")?;
    wait_outbox_len(world, held.rows.len(), "held_commit")?;
    if end == CommitEnd::CrashPostgres {
        // The relay commits its acks with `synchronous_commit = off`: a crash can
        // roll back the newer rows' acks too, and then they are replayed after the
        // held batch, in order (safe, but not the interleaving staged here: a
        // control run would end fresh). Flush the WAL so that only the held batch
        // comes back.
        lock.execute("CHECKPOINT", &[])?;
    }
    let mut staged = Staged {
        keys: ids.len() as u64,
        ..Default::default()
    };
    let before = Refusals::read(world)?;
    let mut watch = world.pg.client()?;
    #[allow(clippy::drop_non_drop)]
    match end {
        CommitEnd::KillRelay => {
            let Some(slot) = world.relay_of_backend(&mut watch, held.backend)? else {
                return Err(ChaosError::Stuck(
                    "held_commit: the held session belongs to no relay".into(),
                ));
            };
            world.kill_relay(slot);
            if !wait_backend_gone(&mut watch, held.backend, Duration::from_secs(5))? {
                staged
                    .notes
                    .push("backend outlived its killed relay: terminated".into());
                watch.execute("SELECT pg_terminate_backend($1)", &[&held.backend])?;
                wait_backend_gone(&mut watch, held.backend, Duration::from_secs(5))?;
            }
            world.respawn_relay(slot)?;
        }
        CommitEnd::CrashPostgres => {
            drop(watch);
            world.pg.kill();
            world.pg.restart()?;
        }
    }
    drop(lock);
    world.wait_drained(STEP_TIMEOUT)?;
    let after = Refusals::read(world)?.since(before);
    // The kill must have landed before COMMIT ended, so that the batch came back:
    // with the writers stopped and everything else acknowledged, every write Redis
    // received since is a replay of a held row.
    let replayed = after.stale + after.floor + after.cold + after.applied;
    if replayed < held.outbox_ids.len() as u64 {
        staged.broken.push(format!(
            "only {replayed} writes reached Redis after the {end:?} for {} held rows: the COMMIT was not held",
            held.outbox_ids.len()
        ));
    }
    staged.refused = after.stale + after.floor;
    staged.stored = count_older_now(world, &versions)?;
    staged
        .notes
        .push(format!("{} held rows replayed", held.outbox_ids.len()));
    Ok(staged)
}

/// Keys now cached at exactly a held (older) version: late writes that were stored.
fn count_older_now(world: &World, held: &HashMap<i32, u64>) -> Result<u64, ChaosError> {
    let ids: Vec<i32> = held.keys().copied().collect();
    let cached = cached_versions(world, &ids)?;
    Ok(ids
        .iter()
        .filter(|id| cached[id].0.is_some() && cached[id].1 <= held[id])
        .count() as u64)
}

/// What happens to the keys of a stalled batch before its writes land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhileStalled {
    /// Newer versions applied, then every key evicted (maxmemory squeezed to 1 byte).
    Evict,
    /// The rows deleted (tombstones applied), then the tombstones expire.
    DeleteAndExpire,
    /// The stalled relay SIGSTOPped until PostgreSQL ends its session; its rows and
    /// newer versions applied by the other relay; then it is continued.
    StopUntilSessionEnds,
    /// Nothing more: the other relay drains what is waiting (a backlog holding
    /// newer versions of the held keys), then the late writes land.
    Nothing,
}

/// See the module docs. Relay `slot` must be [`super::world::Route::Stallable`].
pub fn stalled_batch(
    world: &mut World,
    workload: &mut Workload,
    what: WhileStalled,
    slot: usize,
) -> Result<Staged, ChaosError> {
    let proxy = world
        .stall()
        .cloned()
        .ok_or_else(|| ChaosError::Stuck("stalled_batch: no stallable relay".into()))?;
    let mut c = world.pg.client()?;
    // Except when the race is the backlog itself, stop the writers and let the
    // relays catch up first: the stall then holds a fresh batch, and a long run's
    // backlog cannot outlast the step timeouts below.
    let nudge = what != WhileStalled::Nothing;
    if nudge {
        workload.halt_writers();
        world.wait_drained(DRAIN_TIMEOUT)?;
    }
    proxy.pause();
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut last_nudge: Option<Instant> = None;
    let held = loop {
        let mut found = None;
        if let (Some(pid), true) = (world.relay_pid(slot), proxy.held_bytes() > 0) {
            let ports = local_tcp_ports(pid);
            let sessions = c.query(
                "SELECT pid FROM pg_stat_activity
                  WHERE state = 'idle in transaction' AND client_port = ANY($1)",
                &[&ports],
            )?;
            for s in sessions {
                if let Some(h) = rows_of(&mut c, s.try_get(0)?)? {
                    found = Some(h);
                }
            }
        }
        if let Some(h) = found {
            break h;
        }
        if Instant::now() > deadline {
            proxy.resume();
            return Err(ChaosError::Stuck(
                "stalled_batch: the relay never held a claimed batch in the stalled network".into(),
            ));
        }
        if nudge && last_nudge.is_none_or(|t| t.elapsed() > Duration::from_millis(300)) {
            if proxy.held_bytes() > 0 {
                // Held, but not a batch (an idle relay's cold-start check): let it
                // through, or the relay waits for its answer and never claims.
                proxy.resume();
                std::thread::sleep(Duration::from_millis(20));
                proxy.pause();
            }
            // Changes for the relays to claim; whichever relay claims them, only the
            // stallable one's writes are held.
            c.execute("UPDATE chaos SET v = v + 1 WHERE id <= $1", &[&world.keys])?;
            last_nudge = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    workload.halt_writers();
    let mut versions = held.versions();
    let ids = held.ids();
    let mut staged = Staged {
        keys: ids.len() as u64,
        ..Default::default()
    };
    match what {
        WhileStalled::Evict => {
            write_newer(world, &ids)?;
            // The eviction cell's own memory pressure may evict a newer value before
            // it is seen: a miss counts here, and the outbox wait below says that the
            // newer rows were all applied.
            wait_newer_applied_or_evicted(world, &versions, "stalled_batch")?;
            // Everything but the held batch acknowledged first: a batch still in
            // flight during the squeeze would fail on OOM and be retried after it.
            wait_outbox_len(world, held.outbox_ids.len(), "stalled_batch")?;
            let mut con = world.redis.client()?;
            let saved: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory")
                .query(&mut con)?;
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory")
                .arg(1)
                .query::<()>(&mut con)?;
            wait_all_gone(world, &ids, "keys not evicted")?;
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory")
                .arg(saved.get(1).map(String::as_str).unwrap_or("0"))
                .query::<()>(&mut con)?;
            staged
                .notes
                .push(format!("{} held keys evicted", ids.len()));
        }
        WhileStalled::DeleteAndExpire => {
            // A newer version first, so the DELETE is newer than the held write even
            // when the held row was itself a delete.
            write_newer(world, &ids)?;
            c.execute("DELETE FROM chaos WHERE id = ANY($1)", &[&ids])?;
            // The tombstones are newer than anything held: wait for them, then for
            // their expiry (reading an expired key makes Redis drop it, which raises
            // its floor).
            // Not waited for one by one: a 200 ms tombstone can expire before the
            // last one is applied. The outbox holding only the held rows says the
            // other relay applied them all.
            wait_outbox_len(world, held.outbox_ids.len(), "stalled_batch")?;
            wait_all_gone(world, &ids, "tombstones did not expire")?;
            staged.notes.push(format!(
                "{} tombstones expired under the held batch",
                ids.len()
            ));
            versions = ids.iter().map(|id| (*id, u64::MAX)).collect();
        }
        WhileStalled::StopUntilSessionEnds => {
            world.signal_relay(slot, libc::SIGSTOP);
            if !wait_backend_gone(&mut c, held.backend, STEP_TIMEOUT)? {
                world.signal_relay(slot, libc::SIGCONT);
                proxy.resume();
                return Err(ChaosError::Stuck(
                    "stalled_batch: idle_in_transaction_session_timeout did not end the stopped relay's session".into(),
                ));
            }
            write_newer(world, &ids)?;
            wait_newer_applied(world, &versions, "stalled_batch")?;
        }
        WhileStalled::Nothing => {
            // Only keys with a newer change waiting make a late write older.
            let newest = last_versions(&mut c, &ids)?;
            versions.retain(|id, v| newest.get(id).is_some_and(|n| n > v));
            staged.keys = versions.len() as u64;
            let mut held_at: HashMap<i32, u64> = HashMap::new();
            for (id, v) in &versions {
                held_at.insert(*id, *v);
            }
            wait_outbox_len(world, held.outbox_ids.len(), "stalled_batch")?;
            wait_newer_applied(world, &held_at, "stalled_batch")?;
        }
    }
    let still_held = match what {
        WhileStalled::StopUntilSessionEnds => 0,
        _ => held.outbox_ids.len(),
    };
    wait_outbox_len(world, still_held, "stalled_batch")?;
    let before = Refusals::read(world)?;
    proxy.resume();
    world.signal_relay(slot, libc::SIGCONT);
    let deadline = Instant::now() + STEP_TIMEOUT;
    while proxy.held_bytes() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    world.wait_drained(STEP_TIMEOUT)?;
    let after = Refusals::read(world)?.since(before);
    staged.refused = after.stale + after.floor;
    staged.stored = match what {
        // Any value for a deleted row is a resurrection.
        WhileStalled::DeleteAndExpire => cached_versions(world, &ids)?
            .values()
            .filter(|(v, _)| v.is_some())
            .count() as u64,
        _ => count_older_now(world, &versions)?,
    };
    Ok(staged)
}

/// How Redis goes away between a fill's read and its `VSET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillGap {
    /// It does not.
    None,
    /// SIGKILL, restarted empty (`wipe`) or from its AOF.
    Restart { wipe: bool },
}

/// See the module docs. Stops the writers (and fillers) first.
pub fn late_fill(
    world: &mut World,
    workload: &mut Workload,
    gap: FillGap,
) -> Result<Staged, ChaosError> {
    workload.halt_writers();
    let mut c = world.pg.client()?;
    let ids: Vec<i32> = c
        .query(
            "SELECT id FROM chaos WHERE id <= $1 ORDER BY id LIMIT 5",
            &[&world.keys],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut fills = Vec::new();
    for id in &ids {
        let r = c.query_one(
            "SELECT cache_key, version, payload FROM vset.fill('chaos'::regclass, $1::text)",
            &[&id.to_string()],
        )?;
        let (key, version, payload): (String, i64, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        fills.push((*id, key, version as u64, payload));
    }
    let versions: HashMap<i32, u64> = fills.iter().map(|(id, _, v, _)| (*id, *v)).collect();
    write_newer(world, &ids)?;
    wait_newer_applied(world, &versions, "late_fill")?;
    world.wait_drained(STEP_TIMEOUT)?;
    let mut staged = Staged {
        keys: ids.len() as u64,
        ..Default::default()
    };
    let newest = cached_versions(world, &ids)?;
    if let FillGap::Restart { wipe } = gap {
        world.redis.kill();
        if wipe {
            world.redis.wipe_data()?;
        }
        world.redis.start_again()?;
        // What the restart kept: the newer versions, when it loaded its AOF.
        let after = cached_versions(world, &ids)?;
        let kept = ids
            .iter()
            .filter(|id| after[id].1 >= newest[id].1 && newest[id].1 > 0)
            .count();
        staged.reloaded = Some((kept as u64, ids.len() as u64));
    }
    let mut con = world.redis.client()?;
    for (_, key, version, payload) in &fills {
        let stored: i64 = redis::cmd("VSET")
            .arg(key)
            .arg(*version)
            .arg(payload)
            .query(&mut con)?;
        if stored == 1 {
            staged.stored += 1;
        } else {
            staged.refused += 1;
        }
    }
    Ok(staged)
}
