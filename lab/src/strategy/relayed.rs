//! The three strategies where the cache write is a consequence of the committed
//! transaction: a trigger writes an outbox row in the same transaction and a relay
//! moves it to Redis. They differ in the last hop:
//! - `outbox-set`, the hand-rolled outbox: a plain `SET`;
//! - `outbox-lua-cas`, the strongest rival a competent engineer would write: the
//!   trigger draws a version from its own sequence (CACHE 1, after the row lock, as
//!   vset does), the relay and the readers' fills (`SELECT v, nextval(..) ... FOR
//!   SHARE`) store `{v: version, d: value}` in a hash through a Lua script that
//!   stores only if the version is newer (the script `make bench-redis` measures);
//! - `vset`: `VSET key version value`, fills through `vset.fill` + `VSET`.
//!
//! The Lua rival refuses every late or replayed write vset refuses *while the
//! cache entry exists*: its version lives in the entry. When the entry is evicted
//! (or Redis restarts empty) the version is forgotten with it, and a late older
//! write is stored; vset's floors remember (the `eviction, then a late retry`
//! fault). Its versions are also compared as doubles, wrong above 2^53.
//!
//! Two relays (A and B) share the queue with `FOR UPDATE SKIP LOCKED`. The faults:
//! - crash: relay A applies a batch and dies before COMMIT; its session lingers
//!   (holding the rows) while the second write is delivered by relay B; then the
//!   session is ended (as `idle_in_transaction_session_timeout` would), the rows
//!   come back and relay B delivers them again, after the newer one;
//! - outage: the cache is unreachable when the relay applies the second write; it
//!   rolls back and delivers after the outage;
//! - late retry: relay A's apply of the first write times out, it rolls back, relay
//!   B delivers both writes, then A's original command reaches Redis;
//! - fill race: a reader misses and reads the row (vset: `vset.fill`, which also
//!   returns a version), the second write commits and is delivered, and the
//!   reader's cache write lands before or after the relay's.

use std::time::{Duration, Instant};

use postgres::Client;

use super::{EpisodeResult, Hardening, Strategy};
use crate::cache_conn::CacheConn;
use crate::proxy::FaultProxy;
use crate::schedule::Fault;
use crate::LabError;

/// Which relayed strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    OutboxSet,
    OutboxLuaCas,
    Vset,
}

impl RelayKind {
    pub fn name(self) -> &'static str {
        match self {
            RelayKind::OutboxSet => "outbox-set",
            RelayKind::OutboxLuaCas => "outbox-lua-cas",
            RelayKind::Vset => "vset",
        }
    }

    fn table(self) -> &'static str {
        match self {
            RelayKind::OutboxSet => "lab_outbox_set",
            RelayKind::OutboxLuaCas => "lab_outbox_cas",
            RelayKind::Vset => "lab_vset",
        }
    }
}

/// Store `{v: version, d: value}` only if the version is newer than the stored one,
/// with a TTL of ARGV[3] ms (0: none). `tonumber` makes doubles of both versions:
/// the comparison is exact only below 2^53.
const LUA_CAS: &str = r#"local cur = redis.call("HGET", KEYS[1], "v")
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call("HSET", KEYS[1], "v", ARGV[1], "d", ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call("PEXPIRE", KEYS[1], ARGV[3]) end
return 1"#;

/// One outbox row as a relay sees it.
#[derive(Debug, Clone)]
struct Change {
    key: String,
    op: String,
    version: i64,
    payload: Option<String>,
}

pub struct RelayedStrategy {
    kind: RelayKind,
    pg_url: String,
    app: Client,
    relay_a: Client,
    relay_b: Client,
    cache_a: CacheConn,
    cache_b: CacheConn,
    reader: CacheConn,
    proxy: FaultProxy,
    table: &'static str,
    /// TTL of the hand-written relays' cache writes (vset's never expire).
    ttl_ms: u64,
    /// How long the relays stay down in a relay-outage episode.
    outage: Duration,
}

impl RelayedStrategy {
    pub fn new(
        kind: RelayKind,
        pg_url: &str,
        proxy: &FaultProxy,
        keys: i32,
        hardening: Hardening,
        outage: Duration,
    ) -> Result<Self, LabError> {
        let mut app = Client::connect(pg_url, postgres::NoTls)?;
        let table = kind.table();
        // vset refuses to drop a tracked table: a previous trial's is untracked
        // first, and its records (including untrack's dels) go with it.
        app.batch_execute(&format!(
            "DO $$ BEGIN
               IF to_regclass('vset.tracked') IS NOT NULL
                  AND EXISTS (SELECT 1 FROM vset.tracked WHERE tbl = to_regclass('{table}')) THEN
                 PERFORM vset.untrack('{table}');
                 DELETE FROM vset.outbox WHERE tbl = '{table}'::regclass;
               END IF;
             END $$;
             DROP TABLE IF EXISTS {table};
             CREATE TABLE {table}(id int PRIMARY KEY, v text NOT NULL);
             INSERT INTO {table} SELECT i, 'k' || i || '-w0' FROM generate_series(1, {keys}) i;"
        ))?;
        match kind {
            RelayKind::Vset => app.batch_execute(
                "CREATE EXTENSION IF NOT EXISTS vset; SELECT vset.track('lab_vset');",
            )?,
            RelayKind::OutboxLuaCas => app.batch_execute(
                "DROP TABLE IF EXISTS lab_cas_q;
                 DROP SEQUENCE IF EXISTS lab_cas_seq;
                 CREATE SEQUENCE lab_cas_seq CACHE 1;
                 CREATE TABLE lab_cas_q(id bigserial PRIMARY KEY, cache_key text NOT NULL, version bigint NOT NULL, payload text NOT NULL);
                 CREATE OR REPLACE FUNCTION lab_cas_capture() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   -- Drawn in the AFTER ROW trigger, after the row lock: commit order per key.
                   INSERT INTO lab_cas_q(cache_key, version, payload)
                     VALUES ('lab:outbox-cas:' || NEW.id, nextval('lab_cas_seq'), NEW.v);
                   RETURN NULL;
                 END $$;
                 CREATE TRIGGER lab_cas_capture AFTER INSERT OR UPDATE ON lab_outbox_cas
                   FOR EACH ROW EXECUTE FUNCTION lab_cas_capture();",
            )?,
            RelayKind::OutboxSet => app.batch_execute(
                "DROP TABLE IF EXISTS lab_outbox_q;
                 CREATE TABLE lab_outbox_q(id bigserial PRIMARY KEY, cache_key text NOT NULL, payload text NOT NULL);
                 CREATE OR REPLACE FUNCTION lab_outbox_capture() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   INSERT INTO lab_outbox_q(cache_key, payload) VALUES ('lab:outbox-set:' || NEW.id, NEW.v);
                   RETURN NULL;
                 END $$;
                 CREATE TRIGGER lab_outbox_capture AFTER INSERT OR UPDATE ON lab_outbox_set
                   FOR EACH ROW EXECUTE FUNCTION lab_outbox_capture();",
            )?,
        }
        let mut s = Self {
            kind,
            pg_url: pg_url.to_string(),
            relay_a: Client::connect(pg_url, postgres::NoTls)?,
            relay_b: Client::connect(pg_url, postgres::NoTls)?,
            app,
            cache_a: CacheConn::new(&proxy.url()),
            cache_b: CacheConn::new(&proxy.url()),
            reader: CacheConn::new(&proxy.url()),
            proxy: proxy.clone(),
            table,
            ttl_ms: if kind == RelayKind::Vset {
                0
            } else {
                hardening.ttl_ms
            },
            outage,
        };
        if kind == RelayKind::Vset {
            // A relay connecting to a cold module sets the floor first (invariant 4).
            let v: i64 = s
                .app
                .query_one("SELECT vset.current_version()", &[])?
                .try_get(0)?;
            s.cache_a.run::<()>(redis::cmd("VFLOOR").arg(v.max(0)))?;
        }
        Ok(s)
    }

    fn key(&self, key: i32) -> String {
        match self.kind {
            RelayKind::Vset => format!("public.lab_vset:{key}"),
            RelayKind::OutboxLuaCas => format!("lab:outbox-cas:{key}"),
            RelayKind::OutboxSet => format!("lab:outbox-set:{key}"),
        }
    }

    fn commit_write(
        &mut self,
        key: i32,
        ordinal: u64,
        r: &mut EpisodeResult,
    ) -> Result<(), LabError> {
        let v = super::value_of(key, ordinal);
        let started = Instant::now();
        self.app.execute(
            &format!("UPDATE {} SET v = $2 WHERE id = $1", self.table),
            &[&key, &v],
        )?;
        r.write_us.push(started.elapsed().as_micros() as u64);
        r.last_acked = ordinal;
        Ok(())
    }

    /// BEGIN and claim (the transaction stays open on `relay`).
    fn claim(kind: RelayKind, relay: &mut Client) -> Result<Vec<Change>, LabError> {
        relay.batch_execute("BEGIN")?;
        let rows = match kind {
            RelayKind::Vset => relay.query(
                "SELECT cache_key, op, version, payload FROM vset.claim(100)",
                &[],
            )?,
            // The hand-written queues: the Lua rival's rows carry a version, the
            // plain outbox's id stands in for one (it is never compared).
            RelayKind::OutboxLuaCas | RelayKind::OutboxSet => {
                let (queue, version) = match kind {
                    RelayKind::OutboxLuaCas => ("lab_cas_q", "version"),
                    _ => ("lab_outbox_q", "id"),
                };
                relay.query(
                    &format!(
                        "DELETE FROM {queue} WHERE id IN
                           (SELECT id FROM {queue} ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
                         RETURNING cache_key, 'set'::text, {version}, payload"
                    ),
                    &[],
                )?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(Change {
                key: row.try_get(0)?,
                op: row.try_get(1)?,
                version: row.try_get(2)?,
                payload: row.try_get(3)?,
            });
        }
        // Claim order is id order; apply in the same order.
        Ok(out)
    }

    fn command(kind: RelayKind, ttl_ms: u64, c: &Change) -> redis::Cmd {
        let mut cmd;
        if kind == RelayKind::OutboxLuaCas {
            cmd = redis::cmd("EVAL");
            cmd.arg(LUA_CAS)
                .arg(1)
                .arg(&c.key)
                .arg(c.version)
                .arg(c.payload.as_deref().unwrap_or(""))
                .arg(ttl_ms);
        } else if kind == RelayKind::Vset {
            if c.op == "del" {
                cmd = redis::cmd("VDEL");
                cmd.arg(&c.key).arg(c.version);
            } else {
                cmd = redis::cmd("VSET");
                cmd.arg(&c.key)
                    .arg(c.version)
                    .arg(c.payload.as_deref().unwrap_or(""));
            }
        } else if c.op == "del" {
            cmd = redis::cmd("DEL");
            cmd.arg(&c.key);
        } else {
            cmd = redis::cmd("SET");
            cmd.arg(&c.key).arg(c.payload.as_deref().unwrap_or(""));
            if ttl_ms > 0 {
                cmd.arg("PX").arg(ttl_ms);
            }
        }
        cmd
    }

    /// Applies `changes` through `cache`; false on the first cache error.
    fn apply(kind: RelayKind, ttl_ms: u64, cache: &mut CacheConn, changes: &[Change]) -> bool {
        changes.iter().all(|c| {
            cache
                .run::<redis::Value>(&Self::command(kind, ttl_ms, c))
                .is_ok()
        })
    }

    /// Relay A (`use_b` false) or B drains the queue; false if the cache failed
    /// (the batch is rolled back and stays queued).
    fn drain(&mut self, use_b: bool) -> Result<bool, LabError> {
        loop {
            let (relay, cache) = if use_b {
                (&mut self.relay_b, &mut self.cache_b)
            } else {
                (&mut self.relay_a, &mut self.cache_a)
            };
            let batch = Self::claim(self.kind, relay)?;
            if batch.is_empty() {
                relay.batch_execute("COMMIT")?;
                return Ok(true);
            }
            if Self::apply(self.kind, self.ttl_ms, cache, &batch) {
                relay.batch_execute("COMMIT")?;
            } else {
                relay.batch_execute("ROLLBACK")?;
                return Ok(false);
            }
        }
    }

    /// Ends relay A's session from outside, as the idle-in-transaction timeout
    /// would, waits until the server has rolled it back, and reconnects A.
    fn end_relay_a_session(&mut self) -> Result<(), LabError> {
        let pid: i32 = self
            .relay_a
            .query_one("SELECT pg_backend_pid()", &[])
            .map_or(Ok(-1), |r| r.try_get(0))?;
        self.app
            .execute("SELECT pg_terminate_backend($1)", &[&pid])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let n: i64 = self
                .app
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )?
                .try_get(0)?;
            if n == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.relay_a = Client::connect(&self.pg_url, postgres::NoTls)?;
        Ok(())
    }

    /// A reader's miss: what it read from the database, ready to be written.
    fn read_for_fill(&mut self, key: i32) -> Result<Option<redis::Cmd>, LabError> {
        if self.kind == RelayKind::OutboxLuaCas {
            // The version is drawn while the row is share-locked, as vset.fill does.
            let row = self.app.query_opt(
                "SELECT v, nextval('lab_cas_seq') FROM lab_outbox_cas WHERE id = $1 FOR SHARE",
                &[&key],
            )?;
            let k = self.key(key);
            return Ok(match row {
                Some(r) => {
                    let mut cmd = redis::cmd("EVAL");
                    cmd.arg(LUA_CAS)
                        .arg(1)
                        .arg(k)
                        .arg(r.try_get::<_, i64>(1)?)
                        .arg(r.try_get::<_, String>(0)?)
                        .arg(self.ttl_ms);
                    Some(cmd)
                }
                None => None,
            });
        }
        if self.kind == RelayKind::Vset {
            let row = self.app.query_opt(
                "SELECT cache_key, version, payload FROM vset.fill('lab_vset'::regclass, $1::text)",
                &[&key.to_string()],
            )?;
            Ok(match row {
                Some(r) => {
                    let mut cmd = redis::cmd("VSET");
                    cmd.arg(r.try_get::<_, String>(0)?)
                        .arg(r.try_get::<_, i64>(1)?)
                        .arg(r.try_get::<_, String>(2)?);
                    Some(cmd)
                }
                None => None,
            })
        } else {
            let ttl_ms = self.ttl_ms;
            Ok(self.stored(key)?.map(|v| {
                let mut cmd = redis::cmd("SET");
                cmd.arg(self.key(key)).arg(v);
                if ttl_ms > 0 {
                    cmd.arg("PX").arg(ttl_ms);
                }
                cmd
            }))
        }
    }

    fn fill(&mut self, cmd: Option<redis::Cmd>) {
        if let Some(cmd) = cmd {
            let _ = self.reader.run::<redis::Value>(&cmd);
        }
    }
}

impl Strategy for RelayedStrategy {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn episode(
        &mut self,
        key: i32,
        w1: u64,
        w2: u64,
        fault: Fault,
        fill_early: bool,
    ) -> Result<EpisodeResult, LabError> {
        let mut r = EpisodeResult::default();
        match fault {
            Fault::None => {
                self.commit_write(key, w1, &mut r)?;
                self.drain(false)?;
                self.read(key)?;
                self.commit_write(key, w2, &mut r)?;
                self.drain(false)?;
            }
            Fault::Crash => {
                self.commit_write(key, w1, &mut r)?;
                let batch = Self::claim(self.kind, &mut self.relay_a)?;
                Self::apply(self.kind, self.ttl_ms, &mut self.cache_a, &batch);
                // Relay A dies here, before COMMIT; its session still holds the rows.
                self.commit_write(key, w2, &mut r)?;
                self.drain(true)?;
                self.end_relay_a_session()?;
                self.drain(true)?;
            }
            Fault::RelayOutage => {
                self.commit_write(key, w1, &mut r)?;
                self.drain(false)?;
                self.read(key)?;
                self.commit_write(key, w2, &mut r)?;
                // The caller was told "done"; readers get w1 until a relay is back.
                let told = Instant::now();
                std::thread::sleep(self.outage);
                self.drain(false)?;
                r.stale_us = told.elapsed().as_micros() as u64;
            }
            Fault::Outage => {
                self.commit_write(key, w1, &mut r)?;
                self.drain(false)?;
                self.read(key)?;
                self.proxy.cut();
                self.commit_write(key, w2, &mut r)?;
                let delivered = self.drain(false);
                self.proxy.restore();
                delivered?;
            }
            Fault::LateRetry | Fault::EvictThenLate => {
                self.commit_write(key, w1, &mut r)?;
                let held = Self::claim(self.kind, &mut self.relay_a)?;
                // The apply timed out from relay A's point of view: roll back.
                self.relay_a.batch_execute("ROLLBACK")?;
                self.commit_write(key, w2, &mut r)?;
                self.drain(true)?;
                if fault == Fault::EvictThenLate {
                    // Memory pressure evicts the key (a DEL: to the vset module, the
                    // same forgetting as an eviction, so it raises the key's floor).
                    let k = self.key(key);
                    let _ = self.reader.run::<i64>(redis::cmd("DEL").arg(&k));
                }
                // Relay A's original commands reach Redis only now.
                Self::apply(self.kind, self.ttl_ms, &mut self.cache_a, &held);
            }
            Fault::FillRace => {
                self.commit_write(key, w1, &mut r)?;
                self.drain(false)?;
                let k = self.key(key);
                let _ = self.reader.run::<i64>(redis::cmd("DEL").arg(&k));
                let fill = self.read_for_fill(key)?;
                self.commit_write(key, w2, &mut r)?;
                if fill_early {
                    self.fill(fill.clone());
                }
                self.drain(false)?;
                if !fill_early {
                    self.fill(fill);
                }
            }
        }
        // Settle: whatever is still queued is delivered.
        while !self.drain(false)? {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(r)
    }

    fn read(&mut self, key: i32) -> Result<bool, LabError> {
        if self.cached(key)?.is_some() {
            return Ok(true);
        }
        let fill = self.read_for_fill(key)?;
        self.fill(fill);
        Ok(false)
    }

    fn cached(&mut self, key: i32) -> Result<Option<String>, LabError> {
        let k = self.key(key);
        if self.kind == RelayKind::OutboxLuaCas {
            return Ok(self.reader.run(redis::cmd("HGET").arg(&k).arg("d"))?);
        }
        if self.kind == RelayKind::Vset {
            let v: Option<String> = self.reader.run(redis::cmd("VGET").arg(&k))?;
            // vset caches the row as JSON; the lab compares the `v` column.
            Ok(match v {
                Some(json) => serde_json::from_str::<serde_json::Value>(&json)
                    .ok()
                    .and_then(|j| j.get("v").and_then(|x| x.as_str()).map(str::to_string))
                    .or(Some(json)),
                None => None,
            })
        } else {
            Ok(self.reader.run(redis::cmd("GET").arg(&k))?)
        }
    }

    fn stored(&mut self, key: i32) -> Result<Option<String>, LabError> {
        super::committed_value(&mut self.app, self.table, key)
    }
}
