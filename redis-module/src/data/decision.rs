//! The order-safety rule (DESIGN.md invariants 3 and 4) as one pure function, so the
//! command layer cannot get the order of the checks wrong.

/// What to do with an incoming `VSET`/`VDEL` from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Store it: newer than the stored version and above the bucket's floor.
    Apply,
    /// The module is cold (no saved state, no `VFLOOR` yet): store nothing.
    Cold,
    /// Not newer than the version already stored (equal versions included).
    Stale,
    /// Newer than what is stored but at or below the floor: store nothing, and
    /// remove the stored value (it is older than a write we had to refuse).
    BelowFloor,
}

/// Decides a client write of `incoming` against the key's `stored` version (None
/// when the key is missing), its bucket's `floor`, and the cold state. Version 0 is
/// never newer than anything (0 is what "unknown" reads as).
pub fn decide(incoming: u64, stored: Option<u64>, floor: u64, cold: bool) -> Decision {
    if cold {
        return Decision::Cold;
    }
    if let Some(stored) = stored {
        if incoming <= stored {
            return Decision::Stale;
        }
    }
    if incoming <= floor {
        return Decision::BelowFloor;
    }
    Decision::Apply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_wins_equal_and_older_lose() {
        assert_eq!(decide(5, None, 0, false), Decision::Apply);
        assert_eq!(decide(6, Some(5), 0, false), Decision::Apply);
        assert_eq!(decide(5, Some(5), 0, false), Decision::Stale);
        assert_eq!(decide(4, Some(5), 0, false), Decision::Stale);
        assert_eq!(
            decide(9_007_199_254_740_993, Some(9_007_199_254_740_992), 0, false),
            Decision::Apply
        );
        assert_eq!(
            decide(u64::MAX, Some(u64::MAX - 1), 0, false),
            Decision::Apply
        );
    }

    #[test]
    fn floor_blocks_at_and_below() {
        assert_eq!(decide(10, None, 10, false), Decision::BelowFloor);
        assert_eq!(decide(9, None, 10, false), Decision::BelowFloor);
        assert_eq!(decide(11, None, 10, false), Decision::Apply);
        assert_eq!(decide(8, Some(3), 10, false), Decision::BelowFloor);
        assert_eq!(decide(0, None, 0, false), Decision::BelowFloor);
    }

    #[test]
    fn cold_refuses_everything() {
        assert_eq!(decide(u64::MAX, None, 0, true), Decision::Cold);
        assert_eq!(decide(1, Some(5), 0, true), Decision::Cold);
    }
}
