//! What a cell's verdict is checked against, beyond `vset-verify`'s payload
//! comparison:
//! - an **audit** of every captured change with the version vset drew for it (a
//!   test-only AFTER ROW trigger that fires after `vset_capture`, in trigger-name
//!   order, and reads `currval` of the version sequence in the same row event), so
//!   the end state is checked against the exact version, not only the payload;
//! - the **exact end state**: every key is either cached with exactly its last
//!   committed payload and version, or (when the cell allows it) a miss, and every
//!   deleted row is absent or a tombstone; anything else is wrong;
//! - the **module's counters** (`INFO vset`), so a cell counts the refusals its
//!   fault is named for.

use std::collections::HashMap;

use super::world::World;
use super::ChaosError;
use crate::convergence::CacheReader;
use crate::redis::parse_info_field;
use vset_verify::compare::same_payload;

/// Installs the audit on `chaos` (before any row is written, so every key has one).
pub fn install_audit(pg: &crate::postgres::PgCluster) -> Result<(), ChaosError> {
    pg.execute(
        "CREATE TABLE chaos_audit(id int NOT NULL, version bigint NOT NULL, op text NOT NULL);
         CREATE INDEX ON chaos_audit(id, version);
         CREATE FUNCTION chaos_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           -- Fires after vset_capture for the same row event (AFTER ROW triggers run in
           -- name order), so currval is the version vset just drew for this change.
           -- vset captures nothing for an UPDATE that changes nothing: neither do we.
           IF TG_OP = 'UPDATE' AND OLD IS NOT DISTINCT FROM NEW THEN
             RETURN NULL;
           END IF;
           IF TG_OP = 'DELETE' THEN
             INSERT INTO chaos_audit VALUES (OLD.id, currval('vset.version_seq'), 'del');
           ELSE
             INSERT INTO chaos_audit VALUES (NEW.id, currval('vset.version_seq'), 'set');
           END IF;
           RETURN NULL;
         END $$;
         CREATE TRIGGER zz_chaos_audit AFTER INSERT OR UPDATE OR DELETE ON chaos
           FOR EACH ROW EXECUTE FUNCTION chaos_audit();",
    )?;
    Ok(())
}

/// The cache key of row `id`.
pub fn cache_key(id: i32) -> String {
    format!("public.chaos:{id}")
}

/// How the end state compares with the last committed change of every key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactState {
    /// Keys looked at (every row ever written).
    pub keys: u64,
    /// Live rows cached with exactly their payload, at their last change's version
    /// (or above it: the version a read-miss fill drew for the same row image).
    pub exact: u64,
    /// Live rows not cached (or cached as an older tombstone): a miss, safe.
    pub missing: u64,
    /// Deleted rows absent or tombstoned.
    pub deleted: u64,
    /// Anything else: a value older or newer than the last change, a payload that
    /// differs at the right version, a value for a deleted row.
    pub wrong: u64,
    /// The first few wrong keys, for the failure message.
    pub examples: Vec<String>,
}

/// Reads every key's last audited change (ids up to `max_id`, default all) and
/// compares it with the cache.
pub fn exact_state(world: &World, max_id: Option<i32>) -> Result<ExactState, ChaosError> {
    let mut c = world.pg.client()?;
    let rows = c.query(
        "SELECT DISTINCT ON (a.id) a.id, a.version, a.op, row_to_json(t)::text
           FROM chaos_audit a LEFT JOIN chaos t ON t.id = a.id
          WHERE a.id <= $1
          ORDER BY a.id, a.version DESC",
        &[&max_id.unwrap_or(i32::MAX)],
    )?;
    let ids: Vec<i32> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let cached = cached_versions(world, &ids)?;
    let mut out = ExactState::default();
    for r in &rows {
        let id: i32 = r.try_get(0)?;
        let (value, version) = cached[&id].clone();
        let want_version: i64 = r.try_get(1)?;
        let op: String = r.try_get(2)?;
        let row: Option<String> = r.try_get(3)?;
        out.keys += 1;
        let want_version = want_version as u64;
        let verdict = match (op.as_str(), &row, &value) {
            // A read-miss fill draws a fresh version for the same row image, so
            // a version above the last change's is exact when the payload is.
            ("set", Some(row), Some(v)) if version >= want_version && same_payload(row, v) => {
                Some(&mut out.exact)
            }
            ("set", Some(_), None) if version < want_version => Some(&mut out.missing),
            ("del", None, None) => Some(&mut out.deleted),
            _ => None,
        };
        match verdict {
            Some(n) => *n += 1,
            None => {
                out.wrong += 1;
                if out.examples.len() < 5 {
                    out.examples.push(format!(
                        "{}: last change {op} v{want_version} (row {}), cache {} v{version}",
                        cache_key(id),
                        row.as_deref().unwrap_or("absent"),
                        value.as_deref().unwrap_or("nil"),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The module's refusal counters (`INFO vset`); they restart at 0 with Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    pub stale: u64,
    pub floor: u64,
    pub cold: u64,
    /// Not a refusal: values and tombstones stored (to count every write that came).
    pub applied: u64,
}

impl Refusals {
    pub fn read(world: &World) -> Result<Self, ChaosError> {
        let info: String = redis::cmd("INFO")
            .arg("vset")
            .query(&mut world.redis.client()?)?;
        let field = |name: &str| -> u64 {
            parse_info_field(&info, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Self {
            stale: field("vset_rejected_stale"),
            floor: field("vset_rejected_floor"),
            cold: field("vset_rejected_cold"),
            applied: field("vset_stored") + field("vset_tombstones_written"),
        })
    }

    /// What happened between `before` and `self` (saturating: a restart resets).
    pub fn since(self, before: Refusals) -> Refusals {
        Refusals {
            stale: self.stale.saturating_sub(before.stale),
            floor: self.floor.saturating_sub(before.floor),
            cold: self.cold.saturating_sub(before.cold),
            applied: self.applied.saturating_sub(before.applied),
        }
    }
}

/// `VGET key WITHVERSION` for each id: the cached payload (None: nil) and version.
pub fn cached_versions(
    world: &World,
    ids: &[i32],
) -> Result<HashMap<i32, (Option<String>, u64)>, ChaosError> {
    let keys: Vec<String> = ids.iter().map(|id| cache_key(*id)).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = CacheReader::standalone(&world.redis.url())?.vget_many(&keys)?;
    Ok(ids.iter().copied().zip(values).collect())
}
