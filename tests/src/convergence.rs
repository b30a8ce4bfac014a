//! "Redis equals the database" (design invariant 7), checked key by key.
//!
//! The expected state comes from PostgreSQL: for every key ever written, the
//! row's current payload (`row_to_json(row)::text`, what the extension captures)
//! and the version of its *last* committed change. That version is recorded by a
//! test-only audit trigger ([`install_audit`]) that fires after vset's capture
//! trigger in the same transaction and stores `currval('vset.version_seq')`, i.e.
//! the version the capture just drew for this row. Rolled-back work leaves no
//! audit row, exactly like it leaves no outbox row.
//!
//! Each key is then read with `VGET key WITHVERSION` and classified:
//! - **exact**: live row, Redis holds its payload at its last version;
//! - **deleted**: row gone, Redis has nothing or a tombstone;
//! - **miss**: live row, Redis has nothing (safe, but only allowed where the test
//!   says so, e.g. at or below the floor set after a cold start);
//! - **stale**: anything else (a wrong payload, a wrong version, a resurrected
//!   row). Always a failure.

use std::time::{Duration, Instant};

use redis::Value;

use crate::HarnessError;

fn cmd_err(what: &str) -> impl Fn(postgres::Error) -> HarnessError + '_ {
    move |e| HarnessError::Command {
        what: what.to_string(),
        detail: match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        },
    }
}

fn redis_err(what: &str) -> impl Fn(redis::RedisError) -> HarnessError + '_ {
    move |e| HarnessError::Command {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

/// Installs the audit trigger on `table` (`schema.name`), whose cache keys are
/// `<table>:<key_column>` (vset's default key template). Call after
/// `vset.track(table)` and before any write that should be checked.
pub fn install_audit(
    client: &mut postgres::Client,
    table: &str,
    key_column: &str,
) -> Result<(), HarnessError> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS public.vset_e2e_audit (
                 cache_key text NOT NULL, version bigint NOT NULL);
             CREATE INDEX IF NOT EXISTS vset_e2e_audit_key ON public.vset_e2e_audit (cache_key, version);
             CREATE OR REPLACE FUNCTION public.vset_e2e_audit() RETURNS trigger
             LANGUAGE plpgsql AS $$
             DECLARE
                 k text;
             BEGIN
                 IF TG_OP = 'DELETE' THEN
                     k := TG_ARGV[0] || ':' || (to_jsonb(OLD) ->> TG_ARGV[1]);
                 ELSE
                     k := TG_ARGV[0] || ':' || (to_jsonb(NEW) ->> TG_ARGV[1]);
                 END IF;
                 -- currval: the version vset's capture trigger (which fires first,
                 -- triggers run in name order) drew for this very row change.
                 INSERT INTO public.vset_e2e_audit VALUES (k, currval('vset.version_seq'));
                 RETURN NULL;
             END $$;
             CREATE TRIGGER zz_vset_e2e_audit AFTER INSERT OR UPDATE OR DELETE ON {table}
                 FOR EACH ROW EXECUTE FUNCTION public.vset_e2e_audit('{table}', '{key_column}');"
        ))
        .map_err(cmd_err("installing the audit trigger"))
}

/// What the database says one key must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub cache_key: String,
    /// Version of the last committed change of this key.
    pub version: u64,
    /// The live row's payload, `None` when the row is deleted.
    pub payload: Option<String>,
}

/// Reads the expected state of every audited key of `table`.
pub fn expected_state(
    client: &mut postgres::Client,
    table: &str,
    key_column: &str,
) -> Result<Vec<Expected>, HarnessError> {
    let rows = client
        .query(
            &format!(
                "SELECT a.cache_key, a.version, row_to_json(t)::text
                   FROM (SELECT cache_key, max(version) AS version
                           FROM public.vset_e2e_audit GROUP BY cache_key) a
                   LEFT JOIN {table} t ON '{table}:' || t.{key_column}::text = a.cache_key
                  ORDER BY a.cache_key"
            ),
            &[],
        )
        .map_err(cmd_err("reading the expected state"))?;
    Ok(rows
        .iter()
        .map(|r| Expected {
            cache_key: r.get(0),
            version: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            payload: r.get(2),
        })
        .collect())
}

/// Rows waiting in `vset.outbox`.
pub fn outbox_len(client: &mut postgres::Client) -> Result<i64, HarnessError> {
    client
        .query_one("SELECT count(*) FROM vset.outbox", &[])
        .map(|r| r.get(0))
        .map_err(cmd_err("counting vset.outbox"))
}

/// Waits until the outbox is empty (every committed change applied and acked).
/// Returns how long it took.
pub fn wait_drained(conninfo: &str, timeout: Duration) -> Result<Duration, HarnessError> {
    let started = Instant::now();
    let mut last = -1;
    while started.elapsed() < timeout {
        if let Ok(mut c) = postgres::Client::connect(conninfo, postgres::NoTls) {
            while started.elapsed() < timeout {
                match outbox_len(&mut c) {
                    Ok(0) => return Ok(started.elapsed()),
                    Ok(n) => last = n,
                    Err(_) => break,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(HarnessError::Command {
        what: "waiting for the relays to drain vset.outbox".into(),
        detail: format!("{last} rows still waiting after {}s", timeout.as_secs()),
    })
}

/// A connection that can read vset keys, standalone or cluster.
pub enum CacheReader {
    Standalone(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl CacheReader {
    pub fn standalone(url: &str) -> Result<Self, HarnessError> {
        let client = redis::Client::open(url).map_err(redis_err("redis url"))?;
        Ok(Self::Standalone(
            client
                .get_connection()
                .map_err(redis_err("connecting to redis"))?,
        ))
    }

    pub fn cluster(urls: &[String]) -> Result<Self, HarnessError> {
        let client =
            redis::cluster::ClusterClient::new(urls.to_vec()).map_err(redis_err("cluster urls"))?;
        Ok(Self::Cluster(Box::new(
            client
                .get_connection()
                .map_err(redis_err("connecting to the cluster"))?,
        )))
    }

    /// `VGET key WITHVERSION` for every key: `(payload or None, version)`.
    pub fn vget_many(&mut self, keys: &[&str]) -> Result<Vec<(Option<String>, u64)>, HarnessError> {
        let replies: Vec<Value> = match self {
            CacheReader::Standalone(con) => {
                let mut out = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for k in chunk {
                        pipe.cmd("VGET").arg(*k).arg("WITHVERSION");
                    }
                    let part: Vec<Value> = pipe.query(con).map_err(redis_err("VGET pipeline"))?;
                    out.extend(part);
                }
                out
            }
            CacheReader::Cluster(con) => keys
                .iter()
                .map(|k| {
                    redis::cmd("VGET")
                        .arg(*k)
                        .arg("WITHVERSION")
                        .query::<Value>(con.as_mut())
                        .map_err(redis_err("VGET"))
                })
                .collect::<Result<_, _>>()?,
        };
        replies.iter().map(parse_vget).collect()
    }
}

/// Reads a `VGET key WITHVERSION` reply: `[payload-or-nil, version]`.
pub fn parse_vget(reply: &Value) -> Result<(Option<String>, u64), HarnessError> {
    let bad = || HarnessError::Command {
        what: "VGET WITHVERSION".into(),
        detail: format!("unexpected reply {reply:?}"),
    };
    let Value::Array(items) = reply else {
        return Err(bad());
    };
    let [payload, version] = items.as_slice() else {
        return Err(bad());
    };
    let payload = match payload {
        Value::Nil => None,
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => return Err(bad()),
    };
    let version = match version {
        Value::Int(i) => u64::try_from(*i).map_err(|_| bad())?,
        Value::BulkString(b) => String::from_utf8_lossy(b).parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    Ok((payload, version))
}

/// One key that is not as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: Expected,
    pub got_payload: Option<String>,
    pub got_version: u64,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Convergence {
    pub checked: usize,
    pub exact: usize,
    pub deleted: usize,
    /// Live rows Redis has no value for.
    pub misses: Vec<Mismatch>,
    /// Wrong payload/version or resurrected rows: always a bug.
    pub stale: Vec<Mismatch>,
}

impl Convergence {
    /// Compares every expected key with Redis.
    pub fn check(expected: &[Expected], cache: &mut CacheReader) -> Result<Self, HarnessError> {
        let keys: Vec<&str> = expected.iter().map(|e| e.cache_key.as_str()).collect();
        let got = cache.vget_many(&keys)?;
        let mut report = Convergence {
            checked: expected.len(),
            ..Default::default()
        };
        for (e, (payload, version)) in expected.iter().zip(got) {
            let mismatch = || Mismatch {
                expected: e.clone(),
                got_payload: payload.clone(),
                got_version: version,
            };
            match (&e.payload, &payload) {
                (Some(want), Some(have)) if want == have && version == e.version => {
                    report.exact += 1
                }
                (Some(_), None) => report.misses.push(mismatch()),
                (None, None) => report.deleted += 1,
                _ => report.stale.push(mismatch()),
            }
        }
        Ok(report)
    }

    /// One line for logs: `checked N: exact X, deleted Y, missing Z, stale W`.
    pub fn summary(&self) -> String {
        format!(
            "checked {}: exact {}, deleted {}, missing {}, stale {}",
            self.checked,
            self.exact,
            self.deleted,
            self.misses.len(),
            self.stale.len()
        )
    }

    /// Every key exact or deleted: nothing stale, nothing missing.
    pub fn assert_exact(&self, context: &str) {
        assert!(
            self.stale.is_empty() && self.misses.is_empty(),
            "{context}: Redis differs from PostgreSQL: {} stale, {} missing of {} keys; first stale: {:#?}; first missing: {:#?}",
            self.stale.len(),
            self.misses.len(),
            self.checked,
            self.stale.first(),
            self.misses.first(),
        );
        assert_eq!(
            self.exact + self.deleted,
            self.checked,
            "{context}: accounting"
        );
    }

    /// Nothing stale; misses only for keys whose last change is at or below
    /// `floor` (a cold start made those a miss on purpose).
    pub fn assert_no_stale_misses_below(&self, floor: u64, context: &str) {
        assert!(
            self.stale.is_empty(),
            "{context}: {} stale keys of {}; first: {:#?}",
            self.stale.len(),
            self.checked,
            self.stale.first()
        );
        let bad: Vec<&Mismatch> = self
            .misses
            .iter()
            .filter(|m| m.expected.version > floor)
            .collect();
        assert!(
            bad.is_empty(),
            "{context}: {} keys changed after the floor {floor} are missing; first: {:#?}",
            bad.len(),
            bad.first()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vget_replies_parse_with_integer_or_string_versions() {
        let r = Value::Array(vec![Value::BulkString(b"{}".to_vec()), Value::Int(7)]);
        assert_eq!(parse_vget(&r).ok(), Some((Some("{}".into()), 7)));
        let r = Value::Array(vec![
            Value::Nil,
            Value::BulkString(b"18446744073709551615".to_vec()),
        ]);
        assert_eq!(parse_vget(&r).ok(), Some((None, u64::MAX)));
        assert!(parse_vget(&Value::Nil).is_err());
    }
}
