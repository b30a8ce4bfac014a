//! One claimed outbox row, and what it means for Redis.
//!
//! Rows come from `vset.claim()`: `op` is `'set'` (with a JSON `payload`) or
//! `'del'`, `version` a positive bigint from the extension's sequence. The relay
//! never trusts that blindly: a row it cannot apply as written is still turned into
//! something *safe* (a cache miss) rather than blocking the queue or leaving the old
//! value in place. See [`Change::from_row`].

use std::time::SystemTime;

/// What to do with a cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `VSET key version payload`: store if newer.
    Set { payload: String },
    /// `VDEL key version`: leave a versioned tombstone if newer.
    Delete,
    /// The row was malformed (unknown op, `set` without payload): write a tombstone
    /// at its version, so readers miss and refill from the database.
    TombstoneMalformed { reason: String },
}

/// A change ready to be applied to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub cache_key: String,
    pub version: u64,
    pub action: Action,
    /// When the row was written (the outbox's `created_at`); the lag metric is
    /// measured from here.
    pub created_at: Option<SystemTime>,
}

/// A row that cannot even be tombstoned (no usable version). It is logged, counted
/// and handled by deleting the key (`DEL`), which makes the module raise the key's
/// floor: a miss, never a stale value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unversioned {
    pub id: i64,
    pub cache_key: String,
    pub reason: String,
}

/// A claimed row: a proper change, an unversioned one, or one without a cache key
/// (nothing can be sent for it; it is logged, counted and acked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    Change(Change),
    Unversioned(Unversioned),
    Keyless { id: i64 },
}

impl Change {
    /// Interprets the raw columns of one outbox row.
    pub fn from_row(
        id: i64,
        cache_key: Option<String>,
        op: Option<String>,
        version: Option<i64>,
        payload: Option<String>,
        created_at: Option<SystemTime>,
    ) -> Claimed {
        let Some(cache_key) = cache_key else {
            return Claimed::Keyless { id };
        };
        let version = match version.map(u64::try_from) {
            Some(Ok(v)) if v > 0 => v,
            other => {
                return Claimed::Unversioned(Unversioned {
                    id,
                    cache_key,
                    reason: format!("unusable version {other:?}"),
                })
            }
        };
        let action = match (op.as_deref(), payload) {
            (Some("set"), Some(payload)) => Action::Set { payload },
            (Some("del"), _) => Action::Delete,
            (Some("set"), None) => Action::TombstoneMalformed {
                reason: "op 'set' without payload".into(),
            },
            (other, _) => Action::TombstoneMalformed {
                reason: format!("unknown op {other:?}"),
            },
        };
        Claimed::Change(Change {
            id,
            cache_key,
            version,
            action,
            created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(op: Option<&str>, version: Option<i64>, payload: Option<&str>) -> Claimed {
        Change::from_row(
            7,
            Some("public.users:1".into()),
            op.map(str::to_string),
            version,
            payload.map(str::to_string),
            None,
        )
    }

    #[test]
    fn set_and_del_rows_map_to_vset_and_vdel() {
        match row(Some("set"), Some(42), Some("{}")) {
            Claimed::Change(c) => {
                assert_eq!(c.version, 42);
                assert_eq!(
                    c.action,
                    Action::Set {
                        payload: "{}".into()
                    }
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match row(Some("del"), Some(43), None) {
            Claimed::Change(c) => assert_eq!(c.action, Action::Delete),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_rows_become_tombstones_at_their_version() {
        for (op, payload) in [
            (Some("set"), None),
            (Some("upsert"), Some("{}")),
            (None, None),
        ] {
            match row(op, Some(9), payload) {
                Claimed::Change(c) => {
                    assert_eq!(c.version, 9);
                    assert!(matches!(c.action, Action::TombstoneMalformed { .. }));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn rows_without_a_cache_key_are_keyless() {
        let c = Change::from_row(
            3,
            None,
            Some("set".into()),
            Some(1),
            Some("{}".into()),
            None,
        );
        assert_eq!(c, Claimed::Keyless { id: 3 });
    }

    #[test]
    fn rows_without_a_positive_version_are_unversioned() {
        for v in [None, Some(0), Some(-5)] {
            assert!(matches!(
                row(Some("set"), v, Some("{}")),
                Claimed::Unversioned(_)
            ));
        }
    }
}
