//! The verdict for one cache key: what the database says it should hold against
//! what Redis holds.

use crate::cache::Cached;

/// Result of comparing one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Redis holds exactly the current row's payload.
    Matched,
    /// The row exists, Redis holds nothing (or a tombstone): a reader misses and
    /// fills, which is safe.
    Missing,
    /// The row exists and Redis holds something else: a reader would be served
    /// wrong data. Stale only if it is still so after the grace period.
    Stale,
    /// The row does not exist and Redis still holds a value for it.
    Orphaned,
    /// The row does not exist and Redis holds nothing: as it should be.
    Absent,
}

impl Verdict {
    /// Stale and orphaned entries are the bugs; everything else is consistent.
    pub fn is_bad(self) -> bool {
        matches!(self, Verdict::Stale | Verdict::Orphaned)
    }
}

/// `expected` is the row's payload, `None` when the row does not exist.
pub fn judge(expected: Option<&str>, cached: &Cached) -> Verdict {
    match (expected, cached) {
        (Some(want), Cached::Value { value, .. }) => {
            if same_payload(want, value) {
                Verdict::Matched
            } else {
                Verdict::Stale
            }
        }
        (Some(_), Cached::Absent { .. }) => Verdict::Missing,
        (Some(_), Cached::Foreign { .. }) => Verdict::Stale,
        (None, Cached::Value { .. }) | (None, Cached::Foreign { .. }) => Verdict::Orphaned,
        (None, Cached::Absent { .. }) => Verdict::Absent,
    }
}

/// Two payloads are the same when their text is, or when they parse to the same
/// JSON (object key order and whitespace do not matter: the trigger and
/// `row_to_json` may format differently).
pub fn same_payload(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Cached {
        Cached::Value {
            value: s.into(),
            version: 3,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            judge(Some(r#"{"a":1}"#), &val(r#"{"a": 1}"#)),
            Verdict::Matched
        );
        assert_eq!(
            judge(Some(r#"{"a":1,"b":2}"#), &val(r#"{"b":2,"a":1}"#)),
            Verdict::Matched
        );
        assert_eq!(
            judge(Some(r#"{"a":1}"#), &val(r#"{"a":2}"#)),
            Verdict::Stale
        );
        assert_eq!(
            judge(Some(r#"{"a":1}"#), &Cached::Absent { version: 0 }),
            Verdict::Missing
        );
        assert_eq!(judge(None, &val("{}")), Verdict::Orphaned);
        assert_eq!(judge(None, &Cached::Absent { version: 9 }), Verdict::Absent);
        assert_eq!(
            judge(
                Some("{}"),
                &Cached::Foreign {
                    detail: String::new()
                }
            ),
            Verdict::Stale
        );
        assert!(!same_payload("not json", "not  json"));
    }
}
